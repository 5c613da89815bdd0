"""The fitted methods of :mod:`panel.report.confidence`: Dawid-Skene on the run, and the
judges' reliabilities counted against editor labels. Needs the ``analysis`` extra (numpy,
scipy); importing this module without them raises ImportError, which the caller turns into
the vote share and says why.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..analysis.judges import judgments
from ..analysis.latent import dawid_skene as fit_dawid_skene
from ..analysis.latent_posteriors import posterior_intervals
from .confidence_types import LEVEL, RESAMPLES, Confusion, Estimate, Fitted, Judge, ToolVotes
from .pooled import NOT_SHIP, SHIP, binary

__all__ = ["dawid_skene", "editors"]

_TAIL = (1.0 - LEVEL) / 2.0


def dawid_skene(judged: Mapping[str, ToolVotes]) -> Fitted:
    """One Dawid-Skene fit on every judged tool, each tool's posterior of ship, and its
    bootstrap interval over tools."""
    rows = (
        {
            "tool": t,
            "persona": p,
            "member": m,
            "verdict": binary(v),
        }
        for t, tool in judged.items()
        for (p, m), v in tool.votes.items()
    )
    panel = judgments(rows, categories=(SHIP, NOT_SHIP), order={"tool": list(judged)})
    model = fit_dawid_skene(panel.codes, panel.categories)
    low, high = posterior_intervals(panel.codes, model, 0, n_resamples=RESAMPLES)
    estimates = {
        t: Estimate(float(model.posterior[i, 0]), float(low[i]), float(high[i]))
        for i, t in enumerate(panel.tools)
    }
    accuracy = {
        (panel.personas[p], panel.members[m]): float(model.accuracy[j])
        for j, (p, m) in enumerate(zip(panel.persona_of, panel.member_of, strict=True))
        if not np.isnan(model.accuracy[j])
    }
    interval = (
        f"interval from {RESAMPLES} refits on tools drawn with replacement"
        if model.converged
        else f"the judges' reliabilities did not settle in {model.iterations} iterations (judges near "
        "chance, or too few), so every interval is 0 to 1"
    )
    basis = (
        f"Dawid–Skene on {panel.n_tools} tools and {panel.n_judges} judges, each judge weighed by its "
        f"estimated reliability; {interval}"
    )
    return Fitted("dawid-skene", basis, panel.n_tools, estimates, accuracy)


def editors(judged: Mapping[str, ToolVotes], reliabilities: Mapping[Judge, Confusion]) -> Fitted:
    """Each tool's posterior of ship from the judges' confusions counted on editor labels
    (one pseudo-count per cell, as ``fit_on_labels``); the interval from drawing each judge's
    rates, and the prior, from their Beta posteriors. Judges without labels move nothing.
    ``reliabilities`` are 2 x 2, ship against not ship (``confidence.collapse``)."""
    covered = {j: np.asarray(c, dtype=np.float64).reshape(2, 2) for j, c in reliabilities.items()}
    labels = int(max((c.sum() for c in covered.values()), default=0))
    truth = max(covered.values(), key=lambda c: float(c.sum())).sum(axis=1) if covered else np.zeros(2)
    rng = np.random.default_rng(0)
    # P(judge says ship | truth ship), P(judge says ship | truth not): point and draws
    point = {
        j: ((c[0, 0] + 1) / (c[0].sum() + 2), (c[1, 0] + 1) / (c[1].sum() + 2)) for j, c in covered.items()
    }
    draws = {
        j: (rng.beta(c[0, 0] + 1, c[0, 1] + 1, RESAMPLES), rng.beta(c[1, 0] + 1, c[1, 1] + 1, RESAMPLES))
        for j, c in covered.items()
    }
    prior_point = (truth[0] + 1) / (truth.sum() + 2)
    prior_draws = rng.beta(truth[0] + 1, truth[1] + 1, RESAMPLES)
    accuracy = {j: float(prior_point * a + (1 - prior_point) * (1 - b)) for j, (a, b) in point.items()}
    cache: dict[tuple[tuple[Judge, bool], ...], Estimate] = {}
    estimates: dict[str, Estimate] = {}
    for tool_id, tool in judged.items():
        said = tuple(sorted((j, v == SHIP) for j, v in tool.valid.items() if j in covered))
        if not said:
            continue
        if said not in cache:
            cache[said] = _posterior(said, point, draws, prior_point, prior_draws)
        estimates[tool_id] = cache[said]
    basis = (
        f"judges' reliabilities counted on {labels} editor labels ({len(covered)} judges with labels; "
        f"others left out); interval from {RESAMPLES} draws of those reliabilities"
    )
    return Fitted("editors", basis, len(judged), estimates, accuracy, labels)


def _posterior(
    said: tuple[tuple[Judge, bool], ...],
    point: Mapping[Judge, tuple[float, float]],
    draws: Mapping[Judge, tuple[np.ndarray, np.ndarray]],
    prior_point: float,
    prior_draws: np.ndarray,
) -> Estimate:
    def ship_probability(prior: np.ndarray, rates: list[tuple[np.ndarray, np.ndarray, bool]]) -> np.ndarray:
        log_ship, log_not = np.log(prior), np.log1p(-prior)
        for a, b, says_ship in rates:
            log_ship = log_ship + np.log(a if says_ship else 1 - a)
            log_not = log_not + np.log(b if says_ship else 1 - b)
        out: np.ndarray = 1.0 / (1.0 + np.exp(log_not - log_ship))
        return out

    p = ship_probability(
        np.array([prior_point]), [(np.array([point[j][0]]), np.array([point[j][1]]), s) for j, s in said]
    )
    drawn = ship_probability(prior_draws, [(draws[j][0], draws[j][1], s) for j, s in said])
    low, high = np.quantile(drawn, [_TAIL, 1 - _TAIL])
    return Estimate(float(p[0]), float(low), float(high))
