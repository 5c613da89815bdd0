"""The panel's pooled verdict, measured against a reference, and which smaller panels do as well.

Three ways to pool a tool's verdicts into one:

* **majority vote**: the verdict most judges gave. A tie goes to the verdict given most
  often in the whole run, so the rule is fixed before any tool is seen;
* **mean ship share**: ``ship`` when at least ``threshold`` of the tool's verdicts say
  ``ship`` (two verdicts only). The report also sweeps the threshold;
* **reliability-weighted**: the verdict with the highest posterior under the latent-truth
  model (:mod:`panel.analysis.latent`), which weighs each judge by the confusion matrix
  it estimates from the verdicts alone, with no reference.

Each pooled verdict is set beside the best single judge against the reference. Sub-panels:
every subset of judges is scored by its majority vote (in Gray-code order, so each step adds
or removes one judge's verdicts instead of recounting the sub-panel) while
``2**J`` stays within :data:`ENUMERATE_UP_TO` and, times the tools, within
:data:`ENUMERATE_CELLS`; past that, forward selection adds the judge that helps most at
each size. Choosing the best sub-panel on the same reference it is scored on flatters it;
the report says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from .accuracy import Compared, compare
from .bootstrap import Estimate, Progress
from .judges import MISSING, Judgments

__all__ = [
    "ENUMERATE_CELLS", "ENUMERATE_UP_TO", "Pooled", "PoolingReport", "SubPanel", "majority", "pooling",
    "ship_share", "sub_panels",
]  # fmt: skip

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Weighted = Callable[[Sequence[int]], IntArray]
"""Pooled verdict codes per tool from the judges at the given columns, weighted by reliability."""
ENUMERATE_UP_TO = 1 << 14
ENUMERATE_CELLS = 60_000_000  # sub-panels x tools: 4,096 x 10,000 tools take about 2 s
THRESHOLDS = tuple(round(0.1 * t, 1) for t in range(1, 10))


@dataclass(frozen=True)
class Pooled:
    """One pooled (or single-judge) verdict against the reference, and what it costs per tool."""

    method: str
    judges: list[str]
    n_tools: int
    accuracy: Estimate
    kappa: Estimate
    cost_per_tool: float


@dataclass(frozen=True)
class SubPanel:
    """The best sub-panel of ``k`` judges by the kappa of its majority vote with the reference."""

    k: int
    judges: list[str]
    accuracy: float
    kappa: float
    cost_per_tool: float


@dataclass(frozen=True)
class PoolingReport:
    pooled: list[Pooled]  # majority, mean ship share, reliability-weighted; then the best single judge
    thresholds: list[dict[str, float]]  # mean ship share at each threshold: accuracy and kappa
    by_size: list[SubPanel]  # the best sub-panel of each size
    by_cost: list[SubPanel]  # sub-panels no cheaper one beats: the cost frontier
    search: Literal["every sub-panel", "forward selection"]
    notes: list[str] = field(default_factory=list)


def _tiebreak(codes: IntArray, n_categories: int) -> FloatArray:
    """A bonus under 1/2 per category, larger for verdicts given more often in the whole run."""
    given = np.bincount(codes[codes != MISSING], minlength=n_categories)
    rank = np.argsort(np.argsort(given, kind="stable"), kind="stable")
    return rank.astype(np.float64) / (2.0 * max(n_categories, 1))


def _vote(counts: FloatArray, bonus: FloatArray) -> IntArray:
    pooled: IntArray = np.argmax(counts + bonus, axis=1).astype(np.int64)
    pooled[counts.sum(axis=1) == 0] = MISSING
    return pooled


def _counts(codes: IntArray, n_categories: int) -> FloatArray:
    return np.stack([(codes == k).sum(axis=1) for k in range(n_categories)], axis=1).astype(np.float64)


def majority(j: Judgments, columns: Sequence[int] | None = None) -> IntArray:
    """Each tool's majority verdict among the judges at ``columns`` (all by default); -1 if none."""
    cols = list(range(j.n_judges)) if columns is None else list(columns)
    k = len(j.categories)
    return _vote(_counts(j.codes[:, cols], k), _tiebreak(j.codes, k))


def ship_share(j: Judgments, positive: int, threshold: float) -> IntArray:
    """``positive`` where at least ``threshold`` of a tool's verdicts say it, else the other verdict."""
    if len(j.categories) != 2:
        raise ValueError("a ship share needs exactly two verdicts")
    given = (j.codes != MISSING).sum(axis=1)
    hits = (j.codes == positive).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = hits / given
    pooled = np.where(share >= threshold - 1e-12, positive, 1 - positive).astype(np.int64)
    pooled[given == 0] = MISSING
    return pooled


def _kappa_point(pooled: IntArray, reference: IntArray, n_categories: int) -> tuple[float, float]:
    keep = (pooled != MISSING) & (reference != MISSING)
    n = int(keep.sum())
    if n == 0:
        return math.nan, math.nan
    a, b = pooled[keep], reference[keep]
    p_o = float((a == b).mean())
    p_e = float(np.bincount(a, minlength=n_categories) @ np.bincount(b, minlength=n_categories)) / (n * n)
    return p_o, (math.nan if math.isclose(p_e, 1.0) else (p_o - p_e) / (1.0 - p_e))


def _cost(j: Judgments, cols: Sequence[int]) -> float:
    """USD per tool, rounded to 1e-12 so that equal spends summed in another order compare equal."""
    return round(float(j.cost[:, list(cols)].sum()) / max(j.n_tools, 1), 12)


def _gray_subsets(j: Judgments, reference: IntArray, bonus: FloatArray) -> list[tuple[float, float, int]]:
    """(kappa, accuracy, mask) of the majority vote of every non-empty subset of judges."""
    k = len(j.categories)
    onehot = np.stack([(j.codes == c) for c in range(k)], axis=2).astype(np.float64)  # n x J x K
    counts = np.zeros((j.n_tools, k))
    mask, out = 0, []
    for step in range(1, 1 << j.n_judges):
        bit = (step & -step).bit_length() - 1  # the judge that flips between Gray codes step-1 and step
        mask ^= 1 << bit
        counts += onehot[:, bit] if mask >> bit & 1 else -onehot[:, bit]
        acc, kap = _kappa_point(_vote(counts, bonus), reference, k)
        out.append((kap, acc, mask))
    return out


def _forward(j: Judgments, reference: IntArray, bonus: FloatArray) -> list[tuple[float, float, int]]:
    """Forward selection: at each size the judge whose addition gives the highest kappa."""
    k = len(j.categories)
    chosen: list[int] = []
    out = []
    while len(chosen) < j.n_judges:
        trials = []
        for c in (c for c in range(j.n_judges) if c not in chosen):
            cols = [*chosen, c]
            acc, kap = _kappa_point(_vote(_counts(j.codes[:, cols], k), bonus), reference, k)
            trials.append((-math.inf if math.isnan(kap) else kap, acc, c))
        kap, acc, c = max(trials)
        chosen.append(c)
        out.append((kap, acc, sum(1 << x for x in chosen)))
    return out


def sub_panels(
    j: Judgments, reference: IntArray
) -> tuple[list[SubPanel], list[SubPanel], Literal["every sub-panel", "forward selection"]]:
    """The best sub-panel of each size, the cost frontier, and how they were searched."""
    bonus = _tiebreak(j.codes, len(j.categories))
    subsets = 1 << j.n_judges
    enumerate_all = subsets <= ENUMERATE_UP_TO and subsets * j.n_tools <= ENUMERATE_CELLS
    found = _gray_subsets(j, reference, bonus) if enumerate_all else _forward(j, reference, bonus)
    names = j.judges

    def panel(kap: float, acc: float, mask: int) -> SubPanel:
        cols = [c for c in range(j.n_judges) if mask >> c & 1]
        return SubPanel(len(cols), [names[c] for c in cols], acc, kap, _cost(j, cols))

    scored = [panel(kap, acc, mask) for kap, acc, mask in found if not math.isnan(kap)]
    by_size: dict[int, SubPanel] = {}
    for p in scored:
        held = by_size.get(p.k)
        if held is None or (p.kappa, -p.cost_per_tool) > (held.kappa, -held.cost_per_tool):
            by_size[p.k] = p
    frontier: list[SubPanel] = []
    for p in sorted(scored, key=lambda p: (p.cost_per_tool, -p.kappa, p.k)):
        if not frontier or p.kappa > frontier[-1].kappa:
            frontier.append(p)
    search: Literal["every sub-panel", "forward selection"] = (
        "every sub-panel" if enumerate_all else "forward selection"
    )
    return [by_size[k] for k in sorted(by_size)], frontier, search


def _pooled(method: str, judges: list[str], c: Compared, cost: float) -> Pooled:
    return Pooled(method, judges, c.n_tools, c.accuracy, c.kappa, cost)


def pooling(
    j: Judgments,
    reference: IntArray,
    *,
    positive: int | None,
    threshold: float = 0.5,
    weighted: Weighted | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    progress: Progress | None = None,
) -> PoolingReport:
    """Pooled verdicts of the whole panel against ``reference``, the best judge, and sub-panels."""
    k = len(j.categories)
    every = list(range(j.n_judges))
    notes = [
        "The best single judge and the best sub-panels are chosen on the reference they are "
        "scored against, which flatters them; the pooled verdicts of the whole panel are not chosen.",
        "Cost per tool is the stored spend of the judges pooled, divided by the run's tools.",
    ]
    methods: list[tuple[str, IntArray]] = [("majority vote", majority(j))]
    binary = positive is not None and k == 2
    if binary and positive is not None:
        methods.append(
            (f"{j.categories[positive]} share >= {threshold:g}", ship_share(j, positive, threshold))
        )
    else:
        notes.append(
            "The ship share is left out: no judge gave the ship verdict."
            if positive is None
            else f"The ship share is left out: it sets ship against one other verdict, and there are {k}."
        )
    if weighted is not None:
        methods.append(("reliability-weighted (Dawid-Skene)", weighted(every)))
    singles = [_kappa_point(j.codes[:, c], reference, k) for c in every]
    ranked = [c for c in every if not math.isnan(singles[c][1])]
    best = max(ranked, key=lambda c: (singles[c][1], singles[c][0]), default=None)
    sets = [v for _, v in methods] + ([j.codes[:, best]] if best is not None else [])
    found = compare(sets, reference, k, n_resamples, seed, level, progress)
    pooled = [
        _pooled(name, j.judges, c, _cost(j, every)) for (name, _), c in zip(methods, found, strict=False)
    ]
    if best is not None:
        pooled.append(_pooled("best single judge", [j.judges[best]], found[-1], _cost(j, [best])))
    thresholds = []
    if binary and positive is not None:
        for t in THRESHOLDS:
            acc, kap = _kappa_point(ship_share(j, positive, t), reference, k)
            thresholds.append({"threshold": t, "accuracy": acc, "kappa": kap})
    by_size, by_cost, search = sub_panels(j, reference)
    if search == "forward selection":
        notes.append(
            f"{j.n_judges} judges on {j.n_tools} tools make too many sub-panels to try each: "
            "each size adds the judge that helps most."
        )
    if not j.cost.any():
        notes.append("No spend is stored for this run (a local or fake backend): every cost is 0.")
    return PoolingReport(pooled, thresholds, by_size, by_cost, search, notes)
