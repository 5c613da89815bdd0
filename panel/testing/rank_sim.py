"""A simulated ranking: tools with planted Bradley-Terry strengths, judges that answer each
order of a pair from them (with a lean to the first-shown tool and some failures), and the
ranking loop run with no model, for the tests and `bench/bench_rank.py`.

Pair choice is the command's own (`panel.analysis.pair_choice.Ranker`); "all" asks every
pair, "random" asks random pairs up to the same budget."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..analysis.bradley_terry import Fit, fit
from ..analysis.pair_choice import Pair, Ranker, all_pairs, default_budget
from ..report.head_to_head import Answer, PairResult, pair_results
from ..report.leaderboard_file import Stopped

__all__ = ["Scheme", "SimulatedJudges", "Simulation", "planted_strengths", "simulate_ranking"]

Scheme = Literal["adaptive", "all", "random"]


def planted_strengths(n: int, seed: int, spread: float = 1.5) -> dict[str, float]:
    """n tools ("t00", "t01", ...) with log-strengths drawn from a normal of sd `spread`."""
    rng = random.Random(seed)
    return {f"t{i:02d}": rng.gauss(0.0, spread) for i in range(n)}


@dataclass
class SimulatedJudges:
    """`judges` judges; each order of a pair is answered from the planted strengths, the
    first-shown tool given `position` more log-odds, and `fail` of the answers failing."""

    strengths: dict[str, float]
    judges: int = 4
    position: float = 0.4
    fail: float = 0.0
    seed: int = 0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def answer(self, judge: int, first: str, second: str) -> Answer:
        if self.rng.random() < self.fail:
            return Answer("sim", f"judge{judge}", first, second, None, error="simulated failure")
        gap = self.strengths[first] - self.strengths[second] + self.position
        picked = first if self.rng.random() < 1 / (1 + math.exp(-gap)) else second
        return Answer("sim", f"judge{judge}", first, second, picked)

    def ask(self, pairs: Sequence[Pair]) -> list[Answer]:
        """Every judge answers each pair in both orders."""
        return [
            self.answer(j, *shown) for a, b in pairs for j in range(self.judges) for shown in ((a, b), (b, a))
        ]


@dataclass(frozen=True)
class Simulation:
    """What a simulated ranking asked, why it stopped, and the fit of its judgements."""

    pairs: int
    stopped: Stopped
    fit: Fit
    results: list[PairResult]

    def ranking(self) -> list[str]:
        return [self.fit.tools[i] for i in self.fit.order()]


def simulate_ranking(
    judges: SimulatedJudges,
    scheme: Scheme = "adaptive",
    *,
    budget: int | None = None,
    seed: int = 0,
    resamples: int = 100,
) -> Simulation:
    """Rank the judges' tools by `scheme`, asking at most `budget` distinct pairs (default:
    every pair for "all", else N log2 N as `panel rank` does)."""
    tools = tuple(judges.strengths)
    every = [(a, b) for i, a in enumerate(tools) for b in tools[i + 1 :]]
    if budget is not None:
        cap = budget
    else:  # the command's own default for the adaptive scheme
        cap = all_pairs(len(tools)) if scheme == "all" else default_budget(len(tools))
    answers: list[Answer] = []
    stopped: Stopped
    if scheme == "adaptive":
        ranker = Ranker(tools, cap, seed=seed)
        while True:
            step = ranker.propose(pair_results(answers))
            if isinstance(step, str):
                stopped = step
                break
            answers += judges.ask(step)
    else:
        chosen = every if scheme == "all" else random.Random(seed).sample(every, min(cap, len(every)))
        chosen = chosen[:cap]
        answers = judges.ask(chosen)
        stopped = "all-pairs" if len(chosen) == len(every) else "budget"
    results = pair_results(answers)
    asked = len({frozenset(r.tools) for r in results})
    return Simulation(asked, stopped, fit(tools, results, resamples=resamples, seed=seed), results)
