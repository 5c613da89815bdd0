"""Reliability without labels: the latent-truth model of Dawid & Skene (1979).

Each tool has one true class, unseen. Each judge ``j`` gives verdict ``l`` on a tool of
true class ``k`` with probability ``confusion[j, k, l]``, independently of the other
judges given the class; classes occur with probabilities ``priors``. EM fits both from
the verdicts alone and gives each tool a posterior over its true class.

How this fit behaves (every choice is one a caller can see in the result):

* **Start.** EM starts from the majority vote, as vote shares per tool (a tool with two
  "ship" and one "skip" starts at 2/3 ship), so class ``k`` of the fit is the class the
  majority calls ``k``.
* **Smoothing.** Every confusion cell and every prior gets ``smoothing`` pseudo-counts
  before it is normalised (the M step of a Dirichlet prior), so a judge that never gave a
  verdict to one class gets a small probability there, not a 0 whose logarithm would pin
  the posterior of any tool where that judge says otherwise. ``smoothing=0`` is the plain
  maximum-likelihood fit; probabilities are then floored at 1e-300 before their logarithm.
* **Label switching.** The likelihood does not change when the true classes are
  relabelled, so EM could end on a labelling where most judges are worse than chance.
  After the fit, if fewer than half of the judges with verdicts are better than chance
  (accuracy above that of a judge answering at random with its own verdict shares), the
  classes are relabelled by the assignment that maximises the judges' summed accuracy.
  When most judges are better than chance nothing is flipped. The model assumes this: a
  panel of mostly adversarial judges is indistinguishable from a good one.
* **Weights.** Tool weights are multiplicities: a tool of weight 3 counts as three tools
  in the M step. A bootstrap resample is then a weighted fit on the same rows.
* **Stopping.** EM stops when an M step moves no confusion or prior by more than ``tol``
  (``converged``), or after ``max_iter`` iterations; either way it ends on an E step, so
  the posteriors follow from the parameters returned. (The log-likelihood is a poor signal
  here: with weak judges it flattens while the confusions still drift by 0.01.)

Identical rows of verdicts get identical posteriors, so EM runs on the distinct rows,
weighted by how often each occurs, and the bootstrap of :func:`accuracy_intervals` runs
every resample of a chunk at once, each warm-started from the full fit.

The model counted on labelled tools instead of fitted, and each tool's posterior interval,
are in :mod:`panel.analysis.latent_posteriors`.

Degenerate panels give defined results: tools with no verdict have the priors as their
posterior and ``-1`` as verdict; a judge with no verdict has uniform confusion rows (its
silence moves no posterior) and ``nan`` accuracy. With fewer than three judges with
verdicts the model is not identified (any split of disagreement into error and truth fits
as well), so the fit stops after one iteration: confusions are each judge's rates against
the majority vote, posteriors follow from them, every accuracy is ``nan`` and
``converged`` is False. A panel that gave one verdict to every tool puts (nearly) all
prior on it, and every judge comes out (nearly) always right.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from .bootstrap import Estimate, Progress, percentile, resample_weights
from .judges import MISSING

__all__ = [
    "DEFAULT_RESAMPLES",
    "LatentModel",
    "accuracy_intervals",
    "dawid_skene",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

DEFAULT_RESAMPLES = 1000
"""Resamples for :func:`accuracy_intervals`: the usual minimum for a 95% percentile interval
(Efron & Tibshirani 1993, ch. 13). On 2,000 tools x 5 judges the ends then move by about
0.001 from one seed to another (an interval is about 0.045 wide); 1,000 refits of a
10,000-tool, 12-judge panel take about 2 s."""
_FLOOR = 1e-300
_IDENTIFIED = 3  # judges with verdicts the model needs before it can tell errors from truth


@dataclass(frozen=True)
class LatentModel:
    """A fitted Dawid-Skene model of ``J`` judges over ``n`` tools and ``K`` categories.

    ``confusion[j, k, l]`` is the probability that judge ``j`` says ``categories[l]`` when
    the truth is ``categories[k]`` (rows sum to 1). ``accuracy[j]`` is the probability that
    judge ``j``'s verdict is the true class, ``nan`` for a judge with no verdict.
    ``log_likelihood`` is the natural-log marginal likelihood of the (weighted) verdicts.
    ``judged[i]`` says tool ``i`` has at least one verdict; ``smoothing`` is the fit's
    pseudo-count, which :func:`accuracy_intervals` reuses for its refits.
    """

    categories: list[str]
    confusion: FloatArray
    priors: FloatArray
    posterior: FloatArray
    accuracy: FloatArray
    iterations: int
    converged: bool
    log_likelihood: float
    smoothing: float = 0.01
    judged: BoolArray | None = None

    def verdicts(self) -> IntArray:
        """The most probable class of each tool, ``-1`` where a tool has no verdict at all."""
        best: IntArray = np.argmax(self.posterior, axis=1).astype(np.int64)
        if self.judged is not None:
            best[~self.judged] = MISSING
        return best

    def posterior_for(self, codes: IntArray, columns: Sequence[int]) -> FloatArray:
        """``(m, K)`` posteriors from the verdicts of judges ``columns`` alone.

        ``codes`` is full width, ``(m, J)`` like the codes the model was fitted on (any
        tools); only its ``columns`` are read. The fitted confusions and priors weigh each
        verdict by its judge's reliability: the posterior of a sub-panel's vote. A tool
        with no verdict among ``columns`` gets the priors.
        """
        codes = _checked(codes, len(self.categories))
        if codes.shape[1] != self.confusion.shape[0]:
            raise ValueError(f"codes has {codes.shape[1]} judges, the model {self.confusion.shape[0]}")
        logits = np.repeat(np.log(np.maximum(self.priors, _FLOOR))[None, :], codes.shape[0], axis=0)
        log_conf = np.log(np.maximum(self.confusion, _FLOOR))
        for j in columns:
            seen = codes[:, j] != MISSING
            logits[seen] += log_conf[j][:, codes[seen, j]].T
        return _softmax(logits)


# The internal interface of the model, shared with panel.analysis.latent_posteriors (which
# reads these from this module when called): _checked (validates a codes matrix), _rows (its
# distinct rows), _e_step (posteriors of given confusions and priors), _em (a weighted fit
# from a start) and _accuracy (each judge's accuracy under a fit). Change them together.


def _checked(codes: IntArray, n_categories: int) -> IntArray:
    codes = np.asarray(codes)
    if codes.ndim != 2 or not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"codes must be a 2-D integer matrix, got {codes.dtype} of shape {codes.shape}")
    if codes.size and (codes.min() < MISSING or codes.max() >= n_categories):
        raise ValueError(f"codes must be -1 (missing) or 0..{n_categories - 1}")
    return codes.astype(np.int64, copy=False)


def _softmax(logits: FloatArray) -> FloatArray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    out: FloatArray = e / e.sum(axis=-1, keepdims=True)
    return out


@dataclass(frozen=True)
class _Rows:
    """The distinct rows of verdicts: one-hot ``(U, J*K)``, each tool's row, counts."""

    onehot: FloatArray
    inverse: IntArray
    order: IntArray  # tools sorted by row
    starts: IntArray  # where each row's tools begin in ``order``
    n_judges: int
    n_categories: int

    @property
    def judged(self) -> BoolArray:
        out: BoolArray = np.any(self.onehot, axis=1)
        return out

    def per_row(self, weights: FloatArray) -> FloatArray:
        """``(b, n)`` tool weights summed into ``(b, U)`` row weights."""
        out: FloatArray = np.add.reduceat(weights[:, self.order], self.starts, axis=1)
        return out


def _rows(codes: IntArray, n_categories: int) -> _Rows:
    unique, inverse, count = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    u, j = unique.shape
    onehot = np.zeros((u, j, n_categories))
    seen = unique != MISSING
    rows, cols = np.nonzero(seen)
    onehot[rows, cols, unique[seen]] = 1.0
    inverse = inverse.reshape(-1).astype(np.int64)
    starts = (np.cumsum(count) - count).astype(np.int64)
    return _Rows(onehot.reshape(u, j * n_categories), inverse, np.argsort(inverse, kind="stable"),
                 starts, j, n_categories)  # fmt: skip


def _m_step(
    rows: _Rows, weights: FloatArray, post: FloatArray, smoothing: float
) -> tuple[FloatArray, FloatArray]:
    """Confusions ``(b, J, K, K)`` and priors ``(b, K)`` from weighted posteriors ``(U, K, b)``."""
    j, k = rows.n_judges, rows.n_categories
    u, _, b = post.shape
    mass = (weights.T[:, None, :] * post).reshape(u, k * b)
    # One product for all b fits: counts[(judge, given), (true, fit)].
    counts = (rows.onehot.T @ mass).reshape(j, k, k, b).transpose(3, 0, 2, 1)
    counts += smoothing
    totals = counts.sum(axis=3, keepdims=True)
    confusion = np.divide(counts, totals, out=np.full_like(counts, 1.0 / k), where=totals > 0)
    prior_mass = (rows.judged.astype(np.float64) @ mass).reshape(k, b).T + smoothing
    total = prior_mass.sum(axis=1, keepdims=True)
    priors = np.divide(prior_mass, total, out=np.full_like(prior_mass, 1.0 / k), where=total > 0)
    return confusion, priors


def _e_step(rows: _Rows, confusion: FloatArray, priors: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Posteriors ``(U, K, b)`` and each row's log-likelihood ``(U, b)``."""
    j, k = rows.n_judges, rows.n_categories
    b = len(priors)
    # log_conf[(judge, given), (true, fit)], so one product scores every row under every fit.
    log_conf = np.log(np.maximum(confusion, _FLOOR)).transpose(1, 3, 2, 0).reshape(j * k, k * b)
    logits = (rows.onehot @ log_conf).reshape(-1, k, b) + np.log(np.maximum(priors, _FLOOR)).T
    top = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - top)
    total = e.sum(axis=1, keepdims=True)
    return e / total, (top + np.log(total))[:, 0, :]


@dataclass
class _Fit:
    confusion: FloatArray  # (b, J, K, K)
    priors: FloatArray  # (b, K)
    posterior: FloatArray  # (U, K, b)
    log_likelihood: FloatArray
    iterations: IntArray
    converged: BoolArray


def _em(
    rows: _Rows, weights: FloatArray, start: FloatArray, smoothing: float, max_iter: int, tol: float
) -> _Fit:
    """EM for ``b`` weightings of the same rows at once, each from posteriors ``start`` ``(U, K)``.

    A weighting has converged when an M step moves none of its probabilities (confusions,
    priors) by more than ``tol``; one more E step then makes its posteriors match them.
    """
    b = weights.shape[0]
    post = np.repeat(start[:, :, None], b, axis=2)
    confusion, priors = _m_step(rows, weights, post, smoothing)
    ll = np.zeros(b)
    iterations = np.zeros(b, dtype=np.int64)
    converged = np.zeros(b, dtype=np.bool_)
    pending: IntArray | slice = slice(None)  # the fits whose parameters changed last step
    for step in range(max_iter):
        post[:, :, pending], row_ll = _e_step(rows, confusion[pending], priors[pending])
        ll[pending] = rows.judged @ (weights[pending].T * row_ll)
        iterations[pending] += 1
        live = np.flatnonzero(~converged)
        if live.size == 0 or step == max_iter - 1:
            break  # every fit ends on an E step: its posteriors follow from its parameters
        every = live.size == b
        pending = slice(None) if every else live
        new_confusion, new_priors = _m_step(rows, weights[pending], post[:, :, pending], smoothing)
        moved = np.maximum(
            np.abs(new_confusion - confusion[pending]).max(axis=(1, 2, 3), initial=0.0),
            np.abs(new_priors - priors[pending]).max(axis=1),
        )
        confusion[pending], priors[pending] = new_confusion, new_priors
        converged[live[moved <= tol]] = True
    return _Fit(confusion, priors, post, ll, iterations, converged)


def _accuracy(confusion: FloatArray, priors: FloatArray) -> FloatArray:
    """``(..., J)`` probability that each judge's verdict is the true class."""
    diagonal = np.diagonal(confusion, axis1=-2, axis2=-1)
    out: FloatArray = (priors[..., None, :] * diagonal).sum(axis=-1)
    return out


def _relabelled(fit: _Fit, active: BoolArray) -> _Fit:
    """``fit`` with its classes relabelled if fewer than half of the ``active`` judges beat chance."""
    confusion, priors = fit.confusion[0], fit.priors[0]
    shares = priors @ confusion  # (J, K): how often each judge gives each verdict
    better = _accuracy(confusion, priors) > shares @ priors
    if 2 * int(better[active].sum()) >= int(active.sum()):
        return fit
    gain = (priors[:, None] * confusion[active].sum(axis=0)).T  # gain[l, k]: true k called l
    _, order = linear_sum_assignment(gain, maximize=True)  # new class l is old class order[l]
    return _Fit(fit.confusion[:, :, order, :], fit.priors[:, order], fit.posterior[:, order, :],
                fit.log_likelihood, fit.iterations, fit.converged)  # fmt: skip


def _vote_shares(rows: _Rows) -> FloatArray:
    k = rows.n_categories
    votes = rows.onehot.reshape(rows.onehot.shape[0], rows.n_judges, k).sum(axis=1)
    total = votes.sum(axis=1, keepdims=True)
    shares: FloatArray = np.divide(votes, total, out=np.full_like(votes, 1.0 / k), where=total > 0)
    return shares


def _fit(codes: IntArray, n_categories: int, *, max_iter: int, tol: float, smoothing: float,
         weights: FloatArray | None, start: FloatArray | None) -> tuple[_Rows, _Fit]:  # fmt: skip
    codes = _checked(codes, n_categories)
    if smoothing < 0 or max_iter < 1:
        raise ValueError(f"smoothing must be >= 0 and max_iter >= 1, got {smoothing} and {max_iter}")
    if weights is None:
        weights = np.ones(codes.shape[0])
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (codes.shape[0],) or (weights < 0).any():
        raise ValueError(f"weights must be {codes.shape[0]} non-negative numbers, got shape {weights.shape}")
    rows = _rows(codes, n_categories)
    initial = _vote_shares(rows) if start is None else start
    active = (codes != MISSING).any(axis=0)
    if active.sum() < _IDENTIFIED:
        max_iter, tol = 1, -1.0
    fit = _em(rows, rows.per_row(weights[None, :]), initial, smoothing, max_iter, tol)
    return rows, _relabelled(fit, active)


def dawid_skene(
    codes: IntArray,
    categories: Sequence[str],
    *,
    max_iter: int = 200,
    tol: float = 1e-6,
    smoothing: float = 0.01,
    weights: FloatArray | None = None,
) -> LatentModel:
    """Fit the Dawid-Skene model to ``codes`` (tools x judges, ``-1`` missing; see module notes).

    ``weights`` (one per tool, default 1) are multiplicities in the M step.
    """
    k = len(categories)
    if k < 1:
        raise ValueError("at least one category is needed")
    rows, fit = _fit(codes, k, max_iter=max_iter, tol=tol, smoothing=smoothing, weights=weights, start=None)
    accuracy = _accuracy(fit.confusion[0], fit.priors[0])
    active = (np.asarray(codes) != MISSING).any(axis=0)
    accuracy[~active if active.sum() >= _IDENTIFIED else slice(None)] = math.nan
    return LatentModel(
        categories=list(categories),
        confusion=fit.confusion[0],
        priors=fit.priors[0],
        posterior=fit.posterior[:, :, 0][rows.inverse],
        accuracy=accuracy,
        iterations=int(fit.iterations[0]),
        converged=bool(fit.converged[0]),
        log_likelihood=float(fit.log_likelihood[0]),
        smoothing=smoothing,
        judged=rows.judged[rows.inverse],
    )


def accuracy_intervals(
    codes: IntArray,
    categories: Sequence[str],
    model: LatentModel,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
    progress: Progress | None = None,
    *,
    max_iter: int = 200,
    tol: float = 1e-4,
) -> list[Estimate]:
    """Each judge's accuracy with its percentile bootstrap interval over tools.

    Every resample (``resample_weights``: tools drawn with replacement, as multiplicities)
    is a weighted refit with ``model``'s smoothing, started from ``model``'s posteriors, so
    it needs fewer iterations than a cold start and keeps ``model``'s labelling of the
    classes (no relabelling check runs per resample). Refits stop at ``tol`` 1e-4, not the
    point fit's 1e-6: on 10,000 tools x 12 judges that left every interval end the same to
    four decimals and took a third less time (see bench/bench_latent.py). A
    judge with no verdict in a resample is left out of that resample; a judge with no
    verdict at all, or fewer than two tools, gives ``nan`` bounds.
    """
    k = len(categories)
    codes = _checked(codes, k)
    n, j = codes.shape
    if model.confusion.shape != (j, k, k):
        raise ValueError(f"model has shape {model.confusion.shape}, codes need {(j, k, k)}")
    if n < 2 or np.isnan(model.accuracy).all():
        return [Estimate(float(a), math.nan, math.nan, 0) for a in model.accuracy]
    rows = _rows(codes, k)
    start, _ = _e_step(rows, model.confusion[None], model.priors[None])
    seen = rows.onehot.reshape(len(rows.onehot), j, k).sum(axis=2)  # (U, J): verdicts per judge per row
    values: list[FloatArray] = []
    done = 0
    for weights in resample_weights(n, n_resamples, seed):
        w = rows.per_row(weights)
        fit = _em(rows, w, start[:, :, 0], model.smoothing, max_iter, tol)
        acc = _accuracy(fit.confusion, fit.priors)
        acc[(w @ seen) == 0] = math.nan
        values.append(acc)
        done += len(weights)
        if progress is not None:
            progress(done, n_resamples)
    drawn = np.concatenate(values)
    return [percentile(float(model.accuracy[c]), drawn[:, c], level) for c in range(j)]
