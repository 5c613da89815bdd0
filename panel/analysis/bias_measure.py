"""One measured bias, as the Biases section shows it: its method, its estimate with an interval,
what and how many items it rests on, its minimum, and a sentence on what the data can tell.

Below its minimum a measure gives no number: its `sample` says why (the count it would have
rested on and the minimum), and its reading says the sample is too small. A measure the runs
hold no data for at all (no rebuttal round, no head-to-head asks) is `absent`, with the reason.
The within-group least-squares slope the measures use is here too, as a statistic of tool
multiplicities for :func:`.bootstrap.bootstrap`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .bootstrap import Estimate, FloatArray, Weighted, bootstrap
from .intervals import json_ready

__all__ = ["Measure", "Small", "Sums", "absent", "reading", "too_small", "within_slope"]


@dataclass(frozen=True)
class Small:
    """Why a figure is not given: ``n`` ``unit`` (tools, pairs, answers) is under ``minimum``."""

    n: int
    unit: str
    minimum: int
    reason: str


@dataclass(frozen=True)
class Measure:
    """One bias: ``estimate`` is None when ``sample`` (too few) or ``absent`` (no data) says why."""

    key: str
    title: str
    method: str
    #: what the figure measures, e.g. "in the share of ship verdicts per doubling of the entry's length"
    unit: str
    #: what the items are, e.g. "valid reviews (repeat 0)"
    items: str
    n_items: int
    n_tools: int
    #: the fewest it is read from, in words
    minimum: str
    reading: str
    estimate: Estimate | None = None
    sample: Small | None = None
    absent: str | None = None
    #: the figures beside the estimate (e.g. each rate of a difference), JSON-ready
    details: dict[str, Any] = field(default_factory=dict)
    #: what one item is called in a count ("reviews", "pairs", "answers")
    noun: str = "items"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.estimate is not None:
            e = self.estimate
            data["estimate"] = {
                "point": e.point,
                "low": e.low,
                "high": e.high,
                "resamples_used": e.resamples_used,
            }
        result: dict[str, Any] = json_ready(data)
        return result


def too_small(n: int, minimum: int, unit: str, what: str) -> Small | None:
    """A :class:`Small` when ``n`` ``unit`` is below ``minimum``; ``what`` names the figure."""
    if n >= minimum:
        return None
    return Small(
        n, unit, minimum, f"{n} {unit} is too small a sample to read {what} (the minimum is {minimum})"
    )


def absent(key: str, title: str, method: str, unit: str, items: str, minimum: str, why: str) -> Measure:
    """A measure the runs hold no data for: why, in its reading."""
    return Measure(key, title, method, unit, items, 0, 0, minimum, why, absent=why)


def _signed(x: float) -> str:
    return f"{x:+.3f}"


def reading(
    estimate: Estimate | None,
    small: Small | None,
    n_tools: int,
    unit: str,
    caveat: str,
    undefined: str | None = None,
) -> str:
    """What the data can and cannot tell at this size, in one sentence; ``undefined`` says why
    the figure is undefined (:meth:`Sums.flat`), when it is."""
    if small is not None:
        return f"Too small a sample: {small.reason}; at this size the data cannot tell a bias from chance."
    if estimate is None or math.isnan(estimate.point) or math.isnan(estimate.low):
        why = undefined or "nothing varies to compare"
        return f"Over {n_tools} tools the figure is undefined ({why}); {caveat}"
    # a bound that is 0 but for rounding (a slope of sums that cancel) is 0
    low, high = (0.0 if abs(b) < 1e-9 else b for b in (estimate.low, estimate.high))
    if low > 0 or high < 0:
        way = "positive" if low > 0 else "negative"
        return (
            f"Over {n_tools} tools the interval ({_signed(low)} to {_signed(high)} {unit}) excludes 0: "
            f"the data show a {way} effect; {caveat}"
        )
    return (
        f"Over {n_tools} tools the data cannot tell a bias from none: anything from {_signed(low)} to "
        f"{_signed(high)} {unit} fits them; {caveat}"
    )


@dataclass(frozen=True)
class Sums:
    """Per tool (rows) and group (columns): the weight, and the weighted sums of x, y, x², xy, y²."""

    n: FloatArray
    x: FloatArray
    y: FloatArray
    xx: FloatArray
    xy: FloatArray
    yy: FloatArray

    def flat(self) -> str | None:
        """Why the slope of y on x within groups is undefined over all the items, or None: the
        outcome, or x, does not vary within any group."""
        with np.errstate(invalid="ignore", divide="ignore"):
            n = self.n.sum(axis=0)  # per group, over every tool

            def spread(sq: FloatArray, s: FloatArray) -> float:
                total = s.sum(axis=0)
                return float(np.where(n > 0, sq.sum(axis=0) - total * total / n, 0.0).sum())

            if spread(self.yy, self.y) <= 1e-12:
                return "every item has the same outcome within its group"
            if spread(self.xx, self.x) <= 1e-12:
                return "what is compared does not vary within any group"
        return None

    @classmethod
    def of(
        cls,
        tool: Sequence[int],
        group: Sequence[int],
        x: Sequence[float],
        y: Sequence[float],
        shape: tuple[int, int],
        weight: Sequence[float] | None = None,
    ) -> Sums:
        t, g = np.asarray(tool, dtype=np.int64), np.asarray(group, dtype=np.int64)
        xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        w = np.ones(len(xs)) if weight is None else np.asarray(weight, dtype=np.float64)

        def total(values: FloatArray) -> FloatArray:
            out = np.zeros(shape)
            np.add.at(out, (t, g), values)
            return out

        return cls(
            total(w), total(w * xs), total(w * ys), total(w * xs * xs), total(w * xs * ys), total(w * ys * ys)
        )


def within_slope(sums: Sums) -> tuple[float, Weighted]:
    """The least-squares slope of y on x with one intercept per group (fixed effects), and the
    same as a statistic of tool multiplicities (a resample of tools: every row of a tool
    counts as often as the tool was drawn). Over all the items it is undefined (``nan``) when
    :meth:`Sums.flat`: an outcome that never varies within a group gives a slope of 0 that says
    nothing of x."""

    def slope(weights: FloatArray) -> FloatArray:
        n, sx, sy = weights @ sums.n, weights @ sums.x, weights @ sums.y
        with np.errstate(invalid="ignore", divide="ignore"):
            cross = np.where(n > 0, weights @ sums.xy - sx * sy / n, 0.0).sum(axis=1)
            spread = np.where(n > 0, weights @ sums.xx - sx * sx / n, 0.0).sum(axis=1)
            out: FloatArray = np.where(spread > 1e-12, cross / spread, np.nan)
        return out

    point = math.nan if sums.flat() else float(slope(np.ones((1, sums.n.shape[0])))[0])
    return point, slope


def within_estimate(sums: Sums, n_resamples: int, seed: int) -> tuple[Estimate, str | None]:
    """The slope of :func:`within_slope` with its percentile bootstrap over tools (the rows of
    `sums`), and why it is undefined (:meth:`Sums.flat`) or None: what each bias measure reads."""
    point, statistic = within_slope(sums)
    estimate = bootstrap({"slope": (point, statistic)}, sums.n.shape[0], n_resamples, seed)["slope"]
    return estimate, sums.flat()
