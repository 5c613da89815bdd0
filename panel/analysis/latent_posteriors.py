"""Two more uses of the latent-truth model of :mod:`panel.analysis.latent`: its confusions
and priors counted on labelled tools instead of fitted by EM (:func:`fit_on_labels`), and each
tool's bootstrap interval for its posterior (:func:`posterior_intervals`).

Both run on :mod:`~panel.analysis.latent`'s internal interface (``_checked``, ``_rows``,
``_e_step``, ``_em``, ``_accuracy``), read from that module when called, not copied.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from . import latent as _model
from .bootstrap import resample_weights
from .judges import MISSING
from .latent import FloatArray, IntArray

__all__ = ["fit_on_labels", "posterior_intervals"]


def fit_on_labels(
    codes: IntArray,
    labels: IntArray,
    categories: Sequence[str],
    *,
    smoothing: float = 1.0,
) -> _model.LatentModel:
    """The same model with its confusions and priors counted on labelled tools, not fitted by EM.

    ``labels[i]`` is the index of tool ``i``'s reference verdict (an editor's, a labels
    file's), ``-1`` when it has none. Each judge's confusion row for true class ``k`` is
    the share of its verdicts on the tools labelled ``k``, after ``smoothing`` pseudo-counts
    per cell (1.0, Laplace's rule: a judge seen on 30 labelled tools is not taken to be
    perfect because it never erred on them); the priors are the labels' class shares,
    smoothed alike. Every tool, labelled or not, then gets the posterior those
    reliabilities give its verdicts (a labelled tool's own label does not enter it, so its
    posterior can be scored against that label). A judge with no verdict on a labelled tool
    keeps uniform rows (its verdicts move no posterior) and ``nan`` accuracy.

    Raises ValueError when no tool is labelled or a label is not a category.
    """
    k = len(categories)
    codes = _model._checked(codes, k)
    labels = np.asarray(labels)
    if labels.shape != (codes.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {codes.shape[0]} integers, got shape {labels.shape}")
    if labels.size and (labels.min() < MISSING or labels.max() >= k):
        raise ValueError(f"labels must be -1 (none) or 0..{k - 1}")
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing}")
    known = labels != MISSING
    if not known.any():
        raise ValueError("no tool is labelled")
    said, truth = codes[known], labels[known].astype(np.int64)
    j = codes.shape[1]
    counts = np.zeros((j, k, k))
    for c in range(j):
        seen = said[:, c] != MISSING
        np.add.at(counts[c], (truth[seen], said[seen, c]), 1.0)
    labelled = counts.sum(axis=(1, 2)) > 0
    counts += smoothing
    totals = counts.sum(axis=2, keepdims=True)
    confusion = np.divide(counts, totals, out=np.full_like(counts, 1.0 / k), where=totals > 0)
    confusion[~labelled] = 1.0 / k
    prior_mass = np.bincount(truth, minlength=k).astype(np.float64) + smoothing
    priors = prior_mass / prior_mass.sum()
    rows = _model._rows(codes, k)
    post, row_ll = _model._e_step(rows, confusion[None], priors[None])
    accuracy = _model._accuracy(confusion, priors)
    accuracy[~labelled] = math.nan
    return _model.LatentModel(
        categories=list(categories),
        confusion=confusion,
        priors=priors,
        posterior=post[:, :, 0][rows.inverse],
        accuracy=accuracy,
        iterations=0,
        converged=True,
        log_likelihood=float(rows.judged @ (rows.per_row(np.ones((1, codes.shape[0])))[0] * row_ll[:, 0])),
        smoothing=smoothing,
        judged=rows.judged[rows.inverse],
    )


def posterior_intervals(
    codes: IntArray,
    model: _model.LatentModel,
    category: int = 0,
    n_resamples: int = 200,
    seed: int = 0,
    level: float = 0.95,
    *,
    max_iter: int = 200,
    tol: float = 1e-4,
) -> tuple[FloatArray, FloatArray]:
    """Each tool's percentile bootstrap interval (lows, highs) for its posterior of ``category``.

    The resamples are those of :func:`~panel.analysis.latent.accuracy_intervals` (tools drawn
    with replacement, refitted at once on the distinct rows, warm-started from ``model``); each
    refit gives every distinct row of verdicts a posterior, so one pass scores every tool: the
    interval says how far the posterior moves with the judges' estimated reliabilities, not
    how likely the tool's true class is (that is the posterior itself). 200 resamples keep the
    draws of 10,000 distinct rows to 16 MB; with fewer than two tools both ends are the point.

    When ``model`` did not converge (EM ran out of iterations: judges near chance flatten the
    likelihood, or fewer than three judges leave the model unidentified), no refit runs and
    every interval is 0 to 1. The refits would roam the flat likelihood for their whole
    ``max_iter`` and their intervals widen towards 0 to 1 as they are let run longer (12
    judges at accuracy 0.50-0.55, median width: on 1,000 tools 0.68 at 50 iterations, 0.996
    at 200 and 1.0 at 1,000; on 10,000 tools 0.38 at 200 and 0.64 at 1,000, still widening).
    The full range never claims more than the data hold and costs nothing; capping the
    refits instead would narrow it (see bench/bench_latent.py ``--intervals``).
    """
    k = model.confusion.shape[1]
    codes = _model._checked(codes, k)
    n, j = codes.shape
    if model.confusion.shape != (j, k, k):
        raise ValueError(f"model has shape {model.confusion.shape}, codes need {(j, k, k)}")
    point = model.posterior[:, category]
    if n < 2:
        return point.copy(), point.copy()
    if not model.converged:
        return np.zeros(n), np.ones(n)
    rows = _model._rows(codes, k)
    start, _ = _model._e_step(rows, model.confusion[None], model.priors[None])
    drawn: list[FloatArray] = []
    for weights in resample_weights(n, n_resamples, seed):
        fit = _model._em(rows, rows.per_row(weights), start[:, :, 0], model.smoothing, max_iter, tol)
        drawn.append(fit.posterior[:, category, :])
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(np.concatenate(drawn, axis=1), [tail, 1.0 - tail], axis=1)
    return low[rows.inverse], high[rows.inverse]
