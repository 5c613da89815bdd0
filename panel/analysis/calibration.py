"""How far the panel's probability of ship can be taken at its word: the reliability diagram.

Tools are put in ``bins`` equal-width bins of their predicted probability of ship ([0, 0.1),
[0.1, 0.2), ... [0.9, 1.0], the last closed). For each bin: how many tools, their mean
predicted probability, and the share of them the reference calls ship. A calibrated panel
puts every bin on the diagonal. The **expected calibration error** (ECE) is the mean gap
|observed - predicted| over bins, weighted by each bin's count; 0 is perfect, and a panel
that says 0.7 for every tool whose reference ships 30% of the time has ECE 0.4.

Below :data:`MIN_TOOLS` tools (five per bin on average) the bins are too thin to read: the
bins are still given, with a :class:`~panel.analysis.sample.Sample` saying so, but the ECE is
None (``null`` in the JSON): a single number over a handful of tools would be read as a
finding.

Scoring a probability on the labels it was fitted on flatters it. :func:`cross_fitted`
gives each labelled tool the posterior of :func:`panel.analysis.latent_posteriors.fit_on_labels` fitted
on the labels of the *other* half of the labelled tools (two halves drawn at random,
seeded), so every tool is scored by a model that never saw its label.

No recalibration is done here (isotonic regression would need scikit-learn in the analysis
extra, and its map would itself have to be fitted on labels the diagram does not score).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .judges import MISSING
from .latent_posteriors import fit_on_labels
from .sample import Sample, sample

__all__ = ["MIN_TOOLS", "Bin", "Calibration", "calibration", "cross_fitted"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
#: the fewest tools a reliability diagram of the default 10 bins is read from (five a bin)
MIN_TOOLS = 50


@dataclass(frozen=True)
class Bin:
    low: float
    high: float
    count: int
    predicted: float | None  # mean predicted probability of ship; None in an empty bin
    observed: float | None  # the reference's share of ship; None in an empty bin


@dataclass(frozen=True)
class Calibration:
    """A reliability diagram and its expected calibration error over ``n`` tools."""

    probability: str  # which probability was scored, in words
    n: int
    ece: float | None  # None below the minimum of tools (see `sample`)
    bins: list[Bin]
    sample: Sample | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibration(
    probability: Sequence[float | None] | FloatArray,
    reference_ship: Sequence[bool | None] | npt.NDArray[np.bool_],
    bins: int = 10,
    *,
    name: str = "the panel's probability of ship",
    minimum: int = MIN_TOOLS,
) -> Calibration:
    """The reliability diagram of ``probability`` against ``reference_ship`` (True when the
    reference says ship). Tools with either one missing (None or nan) are left out."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    if len(probability) != len(reference_ship):
        raise ValueError(f"{len(probability)} probabilities but {len(reference_ship)} reference verdicts")
    p = np.array([math.nan if v is None else float(v) for v in probability], dtype=np.float64)
    known = np.array([r is not None for r in reference_ship], dtype=bool) & ~np.isnan(p)
    if ((p[known] < 0) | (p[known] > 1)).any():
        raise ValueError("a probability of ship must be between 0 and 1")
    ship = np.array([bool(r) for r, k in zip(reference_ship, known, strict=True) if k], dtype=np.float64)
    p = p[known]
    n = len(p)
    at = np.minimum((p * bins).astype(np.int64), bins - 1)
    count = np.bincount(at, minlength=bins)
    predicted = np.bincount(at, weights=p, minlength=bins)
    observed = np.bincount(at, weights=ship, minlength=bins)
    found = []
    gap = 0.0
    for b in range(bins):
        c = int(count[b])
        mean_p = float(predicted[b] / c) if c else None
        rate = float(observed[b] / c) if c else None
        if mean_p is not None and rate is not None:
            gap += c * abs(rate - mean_p)
        found.append(Bin(b / bins, (b + 1) / bins, c, mean_p, rate))
    small = sample(n, "a reliability diagram or its calibration error", minimum)
    return Calibration(name, n, gap / n if n and small is None else None, found, small)


def cross_fitted(
    codes: IntArray, labels: IntArray, categories: Sequence[str], *, seed: int = 0
) -> FloatArray:
    """``(n, K)`` posteriors of :func:`fit_on_labels` for every labelled tool, each fitted on
    the labels of the other half (halves drawn at random with ``seed``); unlabelled tools get
    ``nan`` rows. With fewer than two labelled tools every row is ``nan``."""
    labels = np.asarray(labels)
    out = np.full((len(labels), len(categories)), math.nan)
    known = np.flatnonzero(labels != MISSING)
    if len(known) < 2:
        return out
    order = np.random.default_rng([seed, 24]).permutation(known)
    halves = (order[: len(order) // 2], order[len(order) // 2 :])
    for scored, fitted in (halves, halves[::-1]):
        seen = np.full_like(labels, MISSING)
        seen[fitted] = labels[fitted]
        out[scored] = fit_on_labels(codes, seen, categories).posterior[scored]
    return out
