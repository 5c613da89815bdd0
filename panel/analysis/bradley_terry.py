"""Bradley-Terry strengths of tools from head-to-head judgements, with bootstrap intervals.

A judgement is one judge's (persona on member) two orders of one pair, combined
(`panel.report.head_to_head.pair_results`):

- consistent: the tool picked both times wins, counted as two wins over the other;
- picked by position (a tie): one win each way, so a tie is half a win for each side;
- failed: counted per tool and shown, but it says nothing about which tool is stronger, so
  it adds nothing to the fit.

The fit is choix's iterative Luce spectral ranking with a small regularisation (`ALPHA`), so
a tool that won (or lost) every judgement, or a design not yet connected, still gets a finite
strength. Strengths are log-strengths whose mean over the tools is 0.

Intervals come from the bootstrap over judgements: resample the judgements with replacement,
refit, and read the central `level` of each tool's strength and of its rank. Below
`MIN_JUDGEMENTS` judgements (failed ones excluded), or with ties alone (no judge named the
same tool both times: every resample repeats the same half wins, and the interval would be a
precise 0 that nothing measured), a tool's intervals are missing and say so.
Pure: numpy and choix, no store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import choix
import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from ..report.head_to_head import PairResult

__all__ = ["ALPHA", "MIN_JUDGEMENTS", "Fit", "comparisons", "fit", "fit_strengths"]

#: the regularisation of the fit (a pseudo-comparison of this weight between every two tools)
ALPHA = 0.01
#: the fewest judgements (failed ones excluded) a tool's interval is read from
MIN_JUDGEMENTS = 6

#: (winner, loser) index pairs, as Python tuples: choix reads them one by one, and a tuple
#: of ints is read several times faster than a row of an array
_Comparisons = list[tuple[int, int]]


def comparisons(results: Sequence[PairResult], index: dict[str, int]) -> _Comparisons:
    """The (winner, loser) rows the fit reads: a consistent judgement twice, a tie once each
    way, a failed one not at all."""
    rows: list[tuple[int, int]] = []
    for r in results:
        a, b = index[r.tools[0]], index[r.tools[1]]
        if r.outcome == "consistent":
            w, lose = (a, b) if r.winner == r.tools[0] else (b, a)
            rows += [(w, lose), (w, lose)]
        elif r.tie:
            rows += [(a, b), (b, a)]
    return rows


#: the fit stops when no strength moves by more than this (far below any interval's width)
TOL = 1e-6


def fit_strengths(
    n: int, rows: _Comparisons, alpha: float = ALPHA, start: NDArray[np.float64] | None = None
) -> NDArray[np.float64]:
    """Log-strengths (mean 0) of `n` tools from (winner, loser) rows; all 0 without any.
    `start`: strengths to start from (a resample starts from the fit of all the data)."""
    if n == 0:
        return np.zeros(0)
    if len(rows) == 0:
        return np.zeros(n)
    params = choix.ilsr_pairwise(n, rows, alpha=alpha, initial_params=start, tol=TOL)
    return np.asarray(params - params.mean(), dtype=np.float64)


@dataclass(frozen=True)
class Fit:
    """Strengths of `tools` (in their given order) and the bootstrap resamples behind their
    intervals."""

    tools: tuple[str, ...]
    strength: NDArray[np.float64]
    #: resamples x tools: each resample's strengths (no rows without resamples)
    samples: NDArray[np.float64]
    #: per tool: judgements of its pairs with an answer in both orders
    judged: NDArray[np.int64]
    level: float = 0.95
    #: per tool: its consistent judgements (the judge named the same tool both times); None:
    #: as many as `judged`
    decided: NDArray[np.int64] | None = None

    @property
    def resamples(self) -> int:
        return int(self.samples.shape[0])

    def order(self) -> list[int]:
        """Tool indices, strongest first; equal strengths in the tools' order."""
        return sorted(range(len(self.tools)), key=lambda i: (-self.strength[i], i))

    def enough(self, i: int) -> bool:
        decided = self.decided[i] if self.decided is not None else self.judged[i]
        return bool(self.judged[i] >= MIN_JUDGEMENTS and decided > 0) and self.resamples > 0

    def _tails(self) -> tuple[float, float]:
        tail = (1 - self.level) / 2
        return tail, 1 - tail

    def interval(self, i: int) -> tuple[float, float] | None:
        """The central `level` of tool i's resampled strengths; None below the minimum."""
        if not self.enough(i):
            return None
        low, high = np.quantile(self.samples[:, i], self._tails())
        return float(low), float(high)

    def rank_interval(self, i: int) -> tuple[int, int] | None:
        """Best and worst rank (1 = strongest) in the central `level` of the resamples."""
        if not self.enough(i):
            return None
        lo_q, hi_q = self._tails()
        ranks = self.ranks()[:, i]
        return int(np.quantile(ranks, lo_q, method="lower")), int(np.quantile(ranks, hi_q, method="higher"))

    def ranks(self) -> NDArray[np.int64]:
        """resamples x tools: each tool's rank in each resample (1 = strongest)."""
        order = np.argsort(-self.samples, axis=1, kind="stable")
        ranks = np.empty_like(order)
        rows = np.arange(self.samples.shape[0])[:, None]
        ranks[rows, order] = np.arange(1, len(self.tools) + 1)
        return ranks

    def beats(self) -> NDArray[np.float64]:
        """tools x tools: the share of resamples in which tool i is stronger than tool j."""
        s = self.samples
        return np.asarray((s[:, :, None] > s[:, None, :]).mean(axis=0), dtype=np.float64)


def fit(
    tools: Sequence[str],
    results: Sequence[PairResult],
    *,
    resamples: int = 200,
    level: float = 0.95,
    seed: int = 0,
    alpha: float = ALPHA,
) -> Fit:
    """Fit strengths of `tools` from judgements, with `resamples` bootstrap refits over them."""
    index = {tool: i for i, tool in enumerate(tools)}
    n = len(tools)
    answered = [r for r in results if r.outcome != "failed"]
    judged = np.zeros(n, dtype=np.int64)
    decided = np.zeros(n, dtype=np.int64)
    for r in answered:
        for tool in r.tools:
            judged[index[tool]] += 1
            decided[index[tool]] += r.outcome == "consistent"
    # Each fit solves for the stationary distribution of an N x N chain: a matrix that small
    # is solved faster by one BLAS thread than by several (16 times, measured at N = 200 on
    # two busy cores), so the fits hold BLAS to one thread.
    with threadpool_limits(limits=1, user_api="blas"):
        strength = fit_strengths(n, comparisons(answered, index), alpha)
        per_judgement = [comparisons([r], index) for r in answered]
        rng = np.random.default_rng(seed)
        samples = np.zeros((resamples if answered else 0, n))
        for k in range(samples.shape[0]):
            picked = rng.integers(0, len(answered), size=len(answered))
            rows = [row for j in picked for row in per_judgement[j]]
            samples[k] = fit_strengths(n, rows, alpha, start=strength)
    return Fit(tuple(tools), strength, samples, judged, level, decided)
