"""The seeded bootstrap over items, drawn as multiplicity weights so statistics vectorise.

A resample of ``n`` items drawn with replacement is the same thing as a vector of weights:
how many times each item was drawn. Any statistic that is a sum (or a ratio of sums) over
items is then one matrix product for a whole chunk of resamples, instead of a Python call
per resample. :func:`bootstrap` runs any number of such statistics on one set of draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Estimate", "Progress", "Weighted", "bootstrap", "percentile", "resample_weights"]

FloatArray = npt.NDArray[np.float64]
Weighted = Callable[[FloatArray], FloatArray]
"""A statistic of weighted items: ``(b, n)`` multiplicities in, ``(b,)`` values out (``nan`` = undefined)."""
Progress = Callable[[int, int], None]
"""Told ``(resamples done, resamples in all)`` after each chunk."""

# Keep one chunk of weights (b x n float64) near 16 MB whatever the number of items.
_CHUNK_CELLS = 2_000_000


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its bootstrap percentile interval.

    ``resamples_used`` is how many resamples the interval rests on: those where the
    statistic was defined. Far fewer than were drawn means the interval describes only
    the resamples that happened to keep the statistic defined.
    """

    point: float
    low: float
    high: float
    resamples_used: int


def resample_weights(n_items: int, n_resamples: int, seed: int) -> Iterator[FloatArray]:
    """Chunks of ``(b, n_items)`` multiplicities, ``n_resamples`` rows in all, seeded.

    Each row counts how often each item was drawn when ``n_items`` items are drawn with
    replacement. The same seed gives the same rows in the same order, so every statistic
    bootstrapped with one seed sees the same resamples.
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    rng = np.random.default_rng(seed)
    size = max(1, _CHUNK_CELLS // max(n_items, 1))
    done = 0
    while done < n_resamples:
        b = min(size, n_resamples - done)
        draws = rng.integers(0, n_items, size=(b, n_items))
        # Offset each row into its own block of n_items bins: one bincount counts all rows.
        flat = (draws + (np.arange(b) * n_items)[:, None]).ravel()
        yield np.bincount(flat, minlength=b * n_items).reshape(b, n_items).astype(np.float64)
        done += b


def percentile(point: float, values: FloatArray, level: float = 0.95) -> Estimate:
    """``point`` with the percentile interval of the defined ``values`` (Efron & Tibshirani 1993)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be strictly between 0 and 1, got {level}")
    point = float(point)
    defined = values[~np.isnan(values)]
    if math.isnan(point) or defined.size == 0:
        return Estimate(point, math.nan, math.nan, 0)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(defined, [tail, 1.0 - tail])
    return Estimate(point, float(low), float(high), int(defined.size))


def bootstrap(
    stats: Mapping[str, tuple[float, Weighted]],
    n_items: int,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    progress: Progress | None = None,
) -> dict[str, Estimate]:
    """Percentile intervals of every named ``(point, statistic)`` on one set of resamples.

    Items are resampled with replacement. Resamples on which a statistic is ``nan`` are
    skipped and not counted in ``resamples_used``. With fewer than two items, or a ``nan``
    point, the bounds are ``nan``.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be strictly between 0 and 1, got {level}")
    if n_items < 2:
        return {name: Estimate(point, math.nan, math.nan, 0) for name, (point, _) in stats.items()}
    live = {name: fn for name, (point, fn) in stats.items() if not math.isnan(point)}
    values: dict[str, list[FloatArray]] = {name: [] for name in live}
    done = 0
    for weights in resample_weights(n_items, n_resamples, seed):
        for name, fn in live.items():
            values[name].append(np.asarray(fn(weights), dtype=np.float64))
        done += len(weights)
        if progress is not None:
            progress(done, n_resamples)
    return {
        name: percentile(point, np.concatenate(values[name]) if name in live else np.empty(0), level)
        for name, (point, _) in stats.items()
    }
