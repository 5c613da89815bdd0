"""How well each judge, each persona, each member and the whole panel agree with a reference.

For every group of judges the figures are accuracy (the share of its verdicts equal to the
reference verdict) and Cohen's kappa with the reference (J. Cohen 1960, Educational and
Psychological Measurement 20(1)), over the tools that have a reference. A persona pooled
over members treats each (tool, member) verdict as one rating of that tool, so a tool
counts once per member; the whole panel pools every judge the same way (the average judge,
not the panel's pooled verdict, which :mod:`panel.analysis.pooling` measures).

Intervals are percentile bootstraps over tools (:mod:`panel.analysis.bootstrap`): a tool's
verdicts move together, so tools, not reviews, are the unit resampled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from .bootstrap import Estimate, FloatArray, Progress, Weighted, bootstrap
from .judges import MISSING, Judgments

__all__ = [
    "Agreeing",
    "Compared",
    "GroupKind",
    "Sums",
    "agreement_features",
    "best",
    "compare",
    "kappa_from_sums",
    "with_reference",
]

IntArray = npt.NDArray[np.int64]
GroupKind = Literal["judge", "persona", "member", "panel"]


@dataclass(frozen=True)
class Agreeing:
    """One group's agreement with the reference: its accuracy and Cohen's kappa, with intervals."""

    kind: GroupKind
    name: str  # "persona / member", a persona, a member, or "all judges"
    n_tools: int  # tools where the group gave a verdict and the reference has one
    n_ratings: int  # verdicts compared (a pooled group rates a tool once per judge)
    accuracy: Estimate
    kappa: Estimate


def agreement_features(codes: IntArray, reference: IntArray, n_categories: int) -> FloatArray:
    """Per tool: ``[compared, agreeing, given_0..K-1, truth_0..K-1]`` summed over the columns of ``codes``.

    ``compared`` counts the verdicts of the tool that can be compared with its reference
    (the verdict is there and so is the reference), ``agreeing`` those equal to it,
    ``given_k`` those equal to ``k`` and ``truth_k`` the compared verdicts whose
    reference is ``k``. Every figure of this module is a ratio of weighted sums of them.
    """
    codes = codes.reshape(len(codes), -1)
    ref = reference[:, None]
    compared = (codes != MISSING) & (ref != MISSING)
    out = np.empty((len(codes), 2 + 2 * n_categories), dtype=np.float64)
    out[:, 0] = compared.sum(axis=1)
    out[:, 1] = (compared & (codes == ref)).sum(axis=1)
    for k in range(n_categories):
        out[:, 2 + k] = (compared & (codes == k)).sum(axis=1)
        out[:, 2 + n_categories + k] = compared.sum(axis=1) * (reference == k)
    return out


def kappa_from_sums(sums: FloatArray, n_categories: int) -> tuple[FloatArray, FloatArray]:
    """Accuracy and Cohen's kappa from summed features (last axis as :func:`agreement_features`).

    ``nan`` where nothing is compared (accuracy and kappa) or where chance agreement is 1
    (kappa: both sides used one and the same verdict throughout).
    """
    n = sums[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        p_o = sums[..., 1] / n
        given = sums[..., 2 : 2 + n_categories] / n[..., None]
        truth = sums[..., 2 + n_categories :] / n[..., None]
        p_e = (given * truth).sum(axis=-1)
        kappa = np.where(np.isclose(p_e, 1.0), np.nan, (p_o - p_e) / (1.0 - p_e))
    return p_o, kappa


class Sums:
    """``weights @ features`` for a chunk of resamples, worked out once however many statistics read it."""

    def __init__(self, features: FloatArray) -> None:
        self.features = features
        self._weights: FloatArray | None = None
        self._sums: FloatArray | None = None

    def __call__(self, weights: FloatArray) -> FloatArray:
        if self._weights is not weights or self._sums is None:
            self._weights, self._sums = weights, weights @ self.features
        return self._sums


def _groups(j: Judgments) -> list[tuple[GroupKind, str, list[int]]]:
    columns = range(j.n_judges)
    groups: list[tuple[GroupKind, str, list[int]]] = [("judge", name, [c]) for c, name in enumerate(j.judges)]
    for p, persona in enumerate(j.personas):
        groups.append(("persona", persona, [c for c in columns if j.persona_of[c] == p]))
    for m, member in enumerate(j.members):
        groups.append(("member", member, [c for c in columns if j.member_of[c] == m]))
    groups.append(("panel", "all judges", list(columns)))
    return [g for g in groups if g[2]]


@dataclass(frozen=True)
class Compared:
    """Verdicts set beside the reference: how many, and accuracy and kappa with intervals."""

    n_tools: int
    n_ratings: int
    accuracy: Estimate
    kappa: Estimate


def _reader(sums: Sums, cut: slice, k: int, which: int) -> Weighted:
    def read(weights: FloatArray) -> FloatArray:
        return kappa_from_sums(sums(weights)[:, cut], k)[which]

    return read


def compare(
    verdict_sets: Sequence[IntArray],
    reference: IntArray,
    n_categories: int,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    progress: Progress | None = None,
) -> list[Compared]:
    """Accuracy and kappa with ``reference`` of each ``(n,)`` or ``(n, c)`` set of verdict codes.

    A set with several columns is pooled: each column's verdict is one rating of the tool.
    Every interval comes from the same resamples of tools.
    """
    k = n_categories
    blocks = [agreement_features(v, reference, k) for v in verdict_sets]
    width = 2 + 2 * k
    sums = Sums(np.hstack(blocks) if blocks else np.zeros((len(reference), 0)))
    stats: dict[str, tuple[float, Weighted]] = {}
    for g, block in enumerate(blocks):
        acc, kap = kappa_from_sums(block.sum(axis=0), k)
        cut = slice(g * width, (g + 1) * width)
        stats[f"{g}:accuracy"] = (float(acc), _reader(sums, cut, k, 0))
        stats[f"{g}:kappa"] = (float(kap), _reader(sums, cut, k, 1))
    estimates = bootstrap(stats, len(reference), n_resamples, seed, level, progress)
    return [
        Compared(
            n_tools=int((block[:, 0] > 0).sum()),
            n_ratings=int(block[:, 0].sum()),
            accuracy=estimates[f"{g}:accuracy"],
            kappa=estimates[f"{g}:kappa"],
        )
        for g, block in enumerate(blocks)
    ]


def with_reference(
    j: Judgments,
    reference: IntArray,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    progress: Progress | None = None,
) -> list[Agreeing]:
    """Accuracy and kappa with ``reference`` (codes per tool, -1 = none) for every group.

    Groups, in order: each judge, each persona pooled over members, each member pooled
    over personas, and all judges pooled. Every interval comes from the same resamples.
    """
    groups = _groups(j)
    found = compare(
        [j.codes[:, cols] for _, _, cols in groups],
        reference,
        len(j.categories),
        n_resamples,
        seed,
        level,
        progress,
    )
    return [
        Agreeing(kind, name, c.n_tools, c.n_ratings, c.accuracy, c.kappa)
        for (kind, name, _), c in zip(groups, found, strict=True)
    ]


def best(rows: Sequence[Agreeing], kind: GroupKind = "judge") -> Agreeing | None:
    """The group of ``kind`` with the highest kappa (then accuracy), or None if none is defined."""
    ranked = [r for r in rows if r.kind == kind and not math.isnan(r.kappa.point)]
    return max(ranked, key=lambda r: (r.kappa.point, r.accuracy.point), default=None)
