"""A ranking run: rounds of head-to-head asks chosen adaptively (`panel.analysis.pair_choice`),
each pair asked in both orders by every judge through the engine
(`panel.run.head_to_head_round`), until the order settles, the budget is spent or every pair
is asked; then the leaderboard is written before the run takes its status.

A resume first asks the orders a stopped process left unasked, then goes on choosing from
everything stored: stored asks are never sent again."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..analysis.pair_choice import Ranker, pairs_asked
from ..report.head_to_head import PairResult, answers_from_store, pair_results
from ..report.leaderboard_file import Stopped
from ..store import Store
from .ending import running
from .engine import Engine
from .events import Sink
from .head_to_head import HeadToHeadAsk
from .head_to_head_round import run_head_to_head
from .plan import Plan, RunOptions, plan_engine
from .pricing import charges, head_to_head_cost

__all__ = ["RankEstimate", "estimate_rank", "rank_rounds", "run_ranking", "stored_results"]


@dataclass(frozen=True)
class RankEstimate:
    """What a ranking will ask at most: pairs, asks (pairs x 2 orders x judges) and cost."""

    pairs: int
    pairs_possible: int
    judges: int
    #: expected and worst-case USD of the asks; None when a member has no price
    expected_usd: float | None
    worst_usd: float | None

    @property
    def asks(self) -> int:
        return self.pairs * 2 * self.judges


def estimate_rank(plan: Plan, pairs: int, sample: int = 12) -> RankEstimate:
    """The asks of `pairs` pairs and their cost, from a sample of the rendered asks (replies
    of half the ask's token limit expected, all of it at worst)."""
    judges = len(plan.personas) * len(plan.members)
    n = len(plan.tools)
    expected = worst = 0.0
    priced = charges(plan.members)
    shown = list(itertools.islice(itertools.permutations(plan.tools, 2), sample))
    for member in plan.members:
        asks = [HeadToHeadAsk(plan.personas[0], member.backend.label, a, b) for a, b in shown]
        more, most = head_to_head_cost(plan, member, asks, pairs * 2 * len(plan.personas))
        expected, worst = expected + more, worst + most
    return RankEstimate(
        pairs, n * (n - 1) // 2, judges, expected if priced else None, worst if priced else None
    )


def stored_results(store: Store, run_id: str) -> list[PairResult]:
    """Every judgement of the run so far (a pair with an order missing is failed)."""
    return pair_results(answers_from_store(store.head_to_heads(run_id)))


#: told after each round: (round number, judgements so far, the next pairs or why it stopped)
RoundSink = Callable[[int, Sequence[PairResult], "list[tuple[str, str]] | Stopped"], None]


async def rank_rounds(
    engine: Engine, plan: Plan, ranker: Ranker, on_round: RoundSink | None = None
) -> Stopped:
    """Ask rounds of pairs until the ranker stops; "budget" when the cost budget stopped the
    engine, "interrupted" when a member's server went away (a resume finishes)."""
    store, run_id = engine.store, engine.run_id
    begun = stored_results(store, run_id)
    if begun:  # a resume: the orders a stopped process left unasked, first
        pairs = [tuple(sorted(p)) for p in pairs_asked(begun)]
        await run_head_to_head(engine, plan.tools, plan.personas, [(a, b) for a, b in pairs])
    for round_no in itertools.count(1):
        if engine.stopping:
            return "budget"
        if any(m.watch.stopped is not None for m in engine.members):
            return "interrupted"
        results = stored_results(store, run_id)
        step = ranker.propose(results)
        if on_round is not None:
            on_round(round_no, results, step)
        if isinstance(step, str):
            return step
        await run_head_to_head(engine, plan.tools, plan.personas, step)
    raise AssertionError("unreachable")


async def run_ranking(
    plan: Plan,
    store: Store,
    run_id: str,
    ranker: Ranker,
    options: RunOptions,
    write: Callable[[str, Stopped], None],
    on_round: RoundSink | None = None,
    on_event: Sink | None = None,
) -> Stopped:
    """Run (or finish) the ranking `run_id`: its rounds, then `write(run_id, stopped)` (the
    leaderboard) before the run is marked done, or stopped when the cost budget or a member's
    server stopped it. `on_event`: the engine's events (each ask's progress)."""
    engine = plan_engine(plan, store, run_id, options, on_event)
    async with running(store, run_id, [m.backend for m in plan.members]) as end:
        # No review cells: this readies the engine as a run does (what a dead process left
        # unanswered, the spend so far, the members' output forms).
        await engine.run(lambda backend: iter(()), 0)
        stopped = await rank_rounds(engine, plan, ranker, on_round)
        # A cap of pairs reached is the ranking the user asked for; the cost budget or a
        # member's server going away leaves it to be finished with --resume.
        unfinished = engine.stopping or stopped == "interrupted"

        def written(rid: str, status: str) -> None:
            write(rid, stopped)

        end.finish("stopped" if unfinished else "done", written)
    return stopped
