"""Which pairs a ranking asks next: a connected start, then the pairs whose order is still the
most uncertain, round by round, until the order settles, the budget is spent, or every pair
is asked.

- First round: a random cycle through the tools (every tool in two pairs, so the design is
  connected and each tool has a strength to start from).
- Each later round: refit with a few bootstrap resamples; a pair's order is settled when one
  tool is the stronger in at least `level` of the resamples (and both rest on enough
  judgements). If every two neighbours of the current ranking are settled and were compared
  head to head, stop ("settled"). Otherwise ask pairs not yet asked: unsettled ones first,
  neighbours in the current ranking first among them, then the closest in strength (the
  largest p(1 - p)), each tool at most once a round.
- The pairs cap (`--budget N pairs`, or by default N log2 N, the comparisons a sort needs)
  stops it at "budget"; when none is left to ask, "all-pairs".

Each pair is asked in both orders by every judge; a pair counts once, asked or failed. Pure:
the caller asks the pairs and hands back every judgement so far.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..report.head_to_head import PairResult
from ..report.leaderboard_file import Stopped
from .bradley_terry import Fit, fit
from .leaderboard_fit import RESAMPLES

__all__ = ["Pair", "Ranker", "all_pairs", "default_budget", "first_pairs", "pairs_asked"]

Pair = tuple[str, str]


def all_pairs(n: int) -> int:
    return n * (n - 1) // 2


def default_budget(n: int) -> int:
    """The pairs a ranking of n tools asks at most when no budget is given: N log2 N (what a
    sort by comparisons needs), never more than every pair."""
    if n < 2:
        return 0
    return min(all_pairs(n), math.ceil(n * math.log2(n)))


def first_pairs(tools: Sequence[str], seed: int) -> list[Pair]:
    """A random cycle through the tools: every tool compared, the design connected."""
    order = list(tools)
    random.Random(seed).shuffle(order)
    if len(order) < 3:
        return [(order[0], order[1])] if len(order) == 2 else []
    return [(order[i], order[(i + 1) % len(order)]) for i in range(len(order))]


def pairs_asked(results: Sequence[PairResult]) -> set[frozenset[str]]:
    """The distinct pairs in the judgements, failed ones included (they were asked)."""
    return {frozenset(r.tools) for r in results}


@dataclass
class Ranker:
    """The adaptive pair choice of one ranking."""

    tools: tuple[str, ...]
    #: the most distinct pairs to ask
    max_pairs: int
    seed: int = 0
    level: float = 0.95
    #: bootstrap resamples behind each round's choice (the final board uses more)
    round_resamples: int = 50
    #: resamples of the fit that confirms "settled": the board's own (same seed), so a board
    #: that stopped settled never says its neighbours are not told apart
    confirm_resamples: int = RESAMPLES
    #: the pairs proposed so far (never proposed twice)
    proposed: set[frozenset[str]] = field(default_factory=set)
    #: whether some judge may answer a pair (not every member recuses from a tool of it);
    #: a pair none may answer is never proposed, nor counted against the cap
    judgeable: Callable[[str, str], bool] = lambda a, b: True

    def __post_init__(self) -> None:
        #: the pairs no judge may answer
        self.barred = {frozenset(p) for p in itertools.combinations(self.tools, 2) if not self.judgeable(*p)}

    def propose(self, results: Sequence[PairResult]) -> list[Pair] | Stopped:
        """The next round's pairs (none asked before), or why the asking stops."""
        step = self._propose(results)
        if isinstance(step, list):
            self.proposed |= {frozenset(p) for p in step}
        return step

    def _propose(self, results: Sequence[PairResult]) -> list[Pair] | Stopped:
        asked = pairs_asked(results) | self.proposed
        room = self.max_pairs - len(asked)
        if not asked:
            first = [p for p in first_pairs(self.tools, self.seed) if frozenset(p) not in self.barred]
            return first[: max(room, 0)] or ("budget" if first else "all-pairs")
        current = fit(self.tools, results, resamples=self.round_resamples, level=self.level, seed=self.seed)
        if settled(current, pairs_asked(results)) and settled(
            fit(self.tools, results, resamples=self.confirm_resamples, level=self.level, seed=self.seed),
            pairs_asked(results),
        ):
            return "settled"
        if len(asked) >= all_pairs(len(self.tools)) - len(self.barred):
            return "all-pairs"
        if room <= 0:
            return "budget"
        return self._closest_unsettled(current, asked | self.barred, room) or "all-pairs"

    def _closest_unsettled(self, current: Fit, asked: set[frozenset[str]], room: int) -> list[Pair]:
        beats = current.beats()
        s = current.strength
        n = len(self.tools)
        enough = np.array([current.enough(i) for i in range(n)])
        order = current.order()
        neighbours = {frozenset(p) for p in itertools.pairwise(order)}
        candidates = []
        for i in range(n):
            for j in range(i + 1, n):
                if frozenset((self.tools[i], self.tools[j])) in asked:
                    continue
                p = 1 / (1 + math.exp(s[j] - s[i]))
                share = max(beats[i, j], beats[j, i])
                unsettled = share < self.level or not (enough[i] and enough[j])
                candidates.append((not unsettled, frozenset((i, j)) not in neighbours, -p * (1 - p), i, j))
        candidates.sort()
        size = min(room, max(1, math.ceil(n / 4)))
        used: set[int] = set()
        chosen: list[Pair] = []
        for *_, i, j in candidates:
            if i in used or j in used:
                continue
            chosen.append((self.tools[i], self.tools[j]))
            used |= {i, j}
            if len(chosen) == size:
                break
        return chosen


def settled(current: Fit, asked: set[frozenset[str]]) -> bool:
    """Whether every two neighbours of the ranking are in a settled order: each tool rests
    on enough judgements, the two were compared head to head, and the stronger wins in at
    least `level` of the resamples. (Without the pair asked, the order of two tools that
    each won or lost every judgement comes from the design, and every resample repeats it.)"""
    order = current.order()
    if not all(current.enough(i) for i in order):
        return False
    beats = current.beats()
    tools = current.tools
    return all(
        beats[a, b] >= current.level and frozenset((tools[a], tools[b])) in asked
        for a, b in itertools.pairwise(order)
    )
