"""Bootstrap intervals over items, and every statistic of :mod:`panel.analysis.stats` at once.

An interval is a percentile bootstrap over items (rows of the ratings table), seeded, so
a report can be reproduced exactly. Resamples on which a statistic is undefined are
skipped, and each estimate says how many resamples it rests on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from .stats import (
    Ratings,
    as_table,
    cohen_matrix,
    effective_votes,
    encode,
    fleiss_kappa,
    krippendorff_alpha_nominal,
    name_raters,
    percent_agreement,
    ship_rate,
)

__all__ = ["Agreement", "Estimate", "agreement", "bootstrap_ci", "json_ready"]


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


def bootstrap_ci(
    stat_fn: Callable[[npt.NDArray[np.object_]], float],
    ratings: Ratings,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> Estimate:
    """The statistic and its percentile bootstrap interval, with the resamples it used.

    Items (rows) are resampled with replacement, raters kept; percentile interval of
    B. Efron & R. Tibshirani (1993), *An Introduction to the Bootstrap*. ``stat_fn`` gets
    a 2-D object array. Resamples where it is ``nan`` are skipped and not counted in
    ``resamples_used``, so the interval is conditional on the statistic being defined.
    Bounds are ``nan`` (and ``resamples_used`` 0) if the point is ``nan``, with fewer
    than two items, or if no resample is defined. A seed draws the same resamples for
    every statistic, so intervals of one summary are comparable.
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be strictly between 0 and 1, got {level}")
    table = as_table(ratings)
    point = float(stat_fn(table))
    n = table.shape[0]
    if math.isnan(point) or n < 2:
        return Estimate(point, math.nan, math.nan, 0)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_resamples, n))
    values = np.array([stat_fn(table[rows]) for rows in draws], dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return Estimate(point, math.nan, math.nan, 0)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return Estimate(point, float(low), float(high), int(values.size))


@dataclass(frozen=True)
class Agreement:
    """Every statistic of one ratings table; ``to_dict`` makes it JSON-ready."""

    n_items: int
    raters: list[str]
    categories: list[str]
    percent_agreement: Estimate
    fleiss_kappa: Estimate
    krippendorff_alpha: Estimate
    effective_votes: Estimate
    ship_rate: dict[str, float]
    cohen_kappa: list[list[float]]  # raters x raters, in the order of ``raters``
    positive: str
    n_resamples: int
    seed: int
    level: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts and lists, with ``nan`` as ``None`` so strict JSON accepts it."""
        result: dict[str, Any] = json_ready(asdict(self))
        return result


def json_ready(value: Any) -> Any:
    """Plain JSON values: nested dicts and lists, with ``nan`` as ``None``."""
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


def agreement(
    ratings: Ratings,
    rater_names: Sequence[str] | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
    *,
    positive: str = "ship",
    level: float = 0.95,
) -> Agreement:
    """Compute every statistic, with bootstrap intervals for the panel-wide ones."""
    table = as_table(ratings)
    names = name_raters(table.shape[1], rater_names)

    def ci(stat: Callable[[npt.NDArray[np.object_]], float]) -> Estimate:
        return bootstrap_ci(stat, table, n_resamples, seed, level)

    _, kappas = cohen_matrix(table, names)
    return Agreement(
        n_items=table.shape[0],
        raters=names,
        categories=[str(label) for label in encode(table)[1]],
        percent_agreement=ci(percent_agreement),
        fleiss_kappa=ci(fleiss_kappa),
        krippendorff_alpha=ci(krippendorff_alpha_nominal),
        effective_votes=ci(partial(effective_votes, positive=positive)),
        ship_rate=dict(zip(names, ship_rate(table, positive), strict=True)),
        cohen_kappa=kappas.tolist(),
        positive=positive,
        n_resamples=n_resamples,
        seed=seed,
        level=level,
    )
