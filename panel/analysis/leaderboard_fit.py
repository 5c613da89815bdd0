"""A leaderboard (`panel.report.leaderboard_file.Leaderboard`) from a ranking's judgements:
the Bradley-Terry fit with its bootstrap intervals, each tool's wins, losses, ties and failed
judgements, each judge's consistency under swap and position bias. Pure: no store."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ..report.head_to_head import JudgeBias, PairResult, Rate, judge_bias
from ..report.leaderboard_file import JudgeLine, Judgements, Leaderboard, LeaderTool, Stopped
from .bradley_terry import ALPHA, MIN_JUDGEMENTS, Fit, fit

__all__ = ["BoardInputs", "build_leaderboard", "judge_line"]

#: bootstrap resamples behind the board's intervals
RESAMPLES = 200


@dataclass(frozen=True)
class BoardInputs:
    """What the board says about how it was made, besides the judgements."""

    run_id: str
    category: str | None
    #: tool id -> name, in the ranking's tools' order
    names: Mapping[str, str]
    budget: str | None
    stopped: Stopped
    asks: int
    cost_usd: float | None
    seed: int = 0
    level: float = 0.95
    resamples: int = RESAMPLES


def build_leaderboard(inputs: BoardInputs, results: Sequence[PairResult]) -> Leaderboard:
    tools = list(inputs.names)
    found = fit(tools, results, resamples=inputs.resamples, level=inputs.level, seed=inputs.seed)
    n = len(tools)
    pairs = {frozenset(r.tools) for r in results}
    what = inputs.category or f"{n} tools"
    return Leaderboard(
        run_id=inputs.run_id,
        title=f"{what}: which one should you ship with?",
        category=inputs.category,
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
        method=(
            f"Bradley–Terry strengths fit by choix (iterative Luce spectral ranking, alpha {ALPHA:g}) "
            "from head-to-head judgements, each pair asked in both orders (a pick by position is a "
            "tie, half a win each way); pairs chosen adaptively (a random cycle, then the pairs "
            f"whose order is least settled); {inputs.level:.0%} intervals from {found.resamples} "
            "bootstrap resamples over judgements."
        ),
        level=inputs.level,
        resamples=found.resamples,
        tools=_tool_lines(found, results, inputs.names),
        judges=[judge_line(j) for j in judge_bias(results)],
        judgements=Judgements(
            consistent=sum(r.outcome == "consistent" for r in results),
            ties=sum(r.tie for r in results),
            failed=sum(r.outcome == "failed" for r in results),
        ),
        pairs_asked=len(pairs),
        pairs_possible=n * (n - 1) // 2,
        asks=inputs.asks,
        budget=inputs.budget,
        stopped=inputs.stopped,
        cost_usd=inputs.cost_usd,
        note=_note(found),
    )


def _tool_lines(found: Fit, results: Sequence[PairResult], names: Mapping[str, str]) -> list[LeaderTool]:
    lines = []
    for rank, i in enumerate(found.order(), start=1):
        tool = found.tools[i]
        mine = [r for r in results if tool in r.tools]
        interval, ranks = found.interval(i), found.rank_interval(i)
        lines.append(
            LeaderTool(
                rank=rank,
                tool_id=tool,
                name=names[tool],
                strength=round(float(found.strength[i]), 4),
                low=round(interval[0], 4) if interval else None,
                high=round(interval[1], 4) if interval else None,
                rank_low=ranks[0] if ranks else None,
                rank_high=ranks[1] if ranks else None,
                wins=sum(r.winner == tool for r in mine),
                losses=sum(r.outcome == "consistent" and r.winner != tool for r in mine),
                ties=sum(r.tie for r in mine),
                failed=sum(r.outcome == "failed" for r in mine),
                opponents=len({t for r in mine for t in r.tools} - {tool}),
            )
        )
    return lines


def judge_line(judge: JudgeBias) -> JudgeLine:
    """A judge's line of the board: its pairs by outcome and its two rates (null below the minimum)."""
    consistency, position = judge.consistency, judge.position_bias
    low, high = _ends(consistency)
    p_low, p_high = _ends(position)
    short = [
        f"{what} {rate.text()}"
        for what, rate in (("consistency", consistency), ("position bias", position))
        if not rate.enough
    ]
    return JudgeLine(
        persona_id=judge.persona_id,
        member=judge.member,
        pairs=judge.pairs - judge.failed,
        consistent=judge.consistent,
        first_shown=judge.first_shown,
        second_shown=judge.second_shown,
        failed=judge.failed,
        consistency=consistency.value if consistency.enough else None,
        consistency_low=low,
        consistency_high=high,
        position_bias=position.value if position.enough else None,
        position_low=p_low,
        position_high=p_high,
        note="; ".join(short) or None,
    )


def _ends(rate: Rate) -> tuple[float | None, float | None]:
    if not rate.enough or rate.interval is None:
        return None, None
    return rate.interval


def _note(found: Fit) -> str | None:
    """What the board cannot tell at its size, in one sentence."""
    few = sum(not found.enough(i) for i in range(len(found.tools)))
    if few:
        return (
            f"{few} of {len(found.tools)} tools rest on fewer than {MIN_JUDGEMENTS} judgements, or on "
            "ties alone: "
            "their intervals are left out (too few), and their places are a rough guess."
        )
    # The stop rule's own test ("settled"): is the stronger of two neighbours ahead in at
    # least `level` of the resamples? (Their two-sided rank intervals may still share a place.)
    order = found.order()
    beats = found.beats()
    unsettled = sum(beats[a, b] < found.level for a, b in itertools.pairwise(order))
    if unsettled:
        return (
            f"{unsettled} of {len(order) - 1} neighbouring places are not settled (the stronger is "
            f"ahead in fewer than {found.level:.0%} of the resamples): those tools are not told apart "
            "at this size."
        )
    return None
