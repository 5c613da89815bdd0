"""Bootstrap intervals over items, and every statistic of :mod:`panel.analysis.stats` at once.

An interval is a percentile bootstrap over items (rows of the ratings table), seeded, so
a report can be reproduced exactly. Resamples on which a statistic is undefined are
skipped, and each estimate says how many resamples it rests on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .bootstrap import Estimate, FloatArray, Progress, bootstrap
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
from .weighted import effective_votes_w, fleiss_kappa_w, krippendorff_alpha_w, percent_agreement_w

__all__ = ["Agreement", "Estimate", "agreement", "bootstrap_ci", "json_ready"]


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

    This calls ``stat_fn`` once per resample, on the resampled rows (grouped by item);
    the statistics of :func:`agreement` run on all resamples at once instead, with the
    same draws (:func:`panel.analysis.bootstrap.bootstrap`).
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    table = as_table(ratings)
    point = float(stat_fn(table))
    items = np.arange(table.shape[0])

    def each(weights: FloatArray) -> FloatArray:
        rows = (np.repeat(items, w.astype(np.int64)) for w in weights)
        return np.array([stat_fn(table[r]) for r in rows], dtype=np.float64)

    return bootstrap({"stat": (point, each)}, table.shape[0], n_resamples, seed, level)["stat"]


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
    progress: Progress | None = None,
) -> Agreement:
    """Compute every statistic, with bootstrap intervals for the panel-wide ones.

    The table is encoded once; the four interval statistics are bootstrapped together on
    one set of resamples as weighted sums over items (:mod:`panel.analysis.weighted`).
    Point estimates are those of :mod:`panel.analysis.stats`. ``progress`` is told
    ``(resamples done, resamples in all)``.
    """
    table = as_table(ratings)
    names = name_raters(table.shape[1], rater_names)
    codes, labels = encode(table)
    k = len(labels)
    estimates = bootstrap(
        {
            "percent_agreement": (percent_agreement(table), percent_agreement_w(codes, k)),
            "fleiss_kappa": (fleiss_kappa(table), fleiss_kappa_w(codes, k)),
            "krippendorff_alpha": (krippendorff_alpha_nominal(table), krippendorff_alpha_w(codes, k)),
            "effective_votes": (
                effective_votes(table, positive=positive),
                effective_votes_w(codes, labels, positive),
            ),
        },
        table.shape[0],
        n_resamples,
        seed,
        level,
        progress,
    )
    _, kappas = cohen_matrix(table, names)
    return Agreement(
        n_items=table.shape[0],
        raters=names,
        categories=[str(label) for label in labels],
        percent_agreement=estimates["percent_agreement"],
        fleiss_kappa=estimates["fleiss_kappa"],
        krippendorff_alpha=estimates["krippendorff_alpha"],
        effective_votes=estimates["effective_votes"],
        ship_rate=dict(zip(names, ship_rate(table, positive), strict=True)),
        cohen_kappa=kappas.tolist(),
        positive=positive,
        n_resamples=n_resamples,
        seed=seed,
        level=level,
    )
