"""Head-to-head judgements combined: each (persona, member, pair of tools) is asked twice, the
pair shown A-then-B and B-then-A, and the two answers make one result.

- consistent: the same tool both times; it wins the pair.
- first-shown: the tool shown first both times (so a different tool each time): the judge
  picked by position; the pair is a tie and counts toward its position bias.
- second-shown: the tool shown second both times: also a tie, the other way round.
- failed: either answer failed or is missing; never dropped, counted on its own.

Per judge (persona on member) the consistency rate (consistent pairs among the pairs with two
answers) and the share of first-shown picks among its inconsistent pairs, each with Wilson's
interval and the number of pairs it rests on, and "too few" below :data:`MIN_PAIRS`.
Pure logic: no store, no engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ..store import HeadToHeadRow
from .confidence import wilson
from .record_head_to_head import (
    HeadToHeadAnswer,
    HeadToHeadJudge,
    HeadToHeadJudgement,
    HeadToHeadPair,
    HeadToHeadRate,
    HeadToHeadSection,
)

__all__ = [
    "MIN_PAIRS",
    "Answer",
    "JudgeBias",
    "Outcome",
    "PairResult",
    "Rate",
    "Tally",
    "answers_from_store",
    "combine",
    "judge_bias",
    "pair_results",
    "section",
    "tally",
]

Outcome = Literal["consistent", "first-shown", "second-shown", "failed"]
Position = Literal["first", "second"]

#: the fewest pairs a judge's rate is read from; below it the rate is shown as "too few"
MIN_PAIRS = 10


@dataclass(frozen=True)
class Answer:
    """One ask: a persona on a member read `first` then `second` and picked one (None: failed)."""

    persona_id: str
    member: str
    first: str
    second: str
    picked: str | None
    reason: str | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        if self.first == self.second:
            raise ValueError(f"a head-to-head pair needs two tools, got {self.first!r} twice")
        if self.picked is not None and self.picked not in (self.first, self.second):
            raise ValueError(f"picked {self.picked!r}, which is neither {self.first!r} nor {self.second!r}")

    @property
    def judge(self) -> tuple[str, str]:
        return (self.persona_id, self.member)

    @property
    def position(self) -> Position | None:
        """Where the picked tool was shown; None for a failed answer."""
        if self.picked is None:
            return None
        return "first" if self.picked == self.first else "second"


def answers_from_store(rows: Iterable[HeadToHeadRow]) -> list[Answer]:
    """The stored answers (`Store.head_to_heads`) as this module reads them, failed ones too."""
    return [
        Answer(r.persona_id, r.member, r.first_tool, r.second_tool, r.picked, r.reason, r.error) for r in rows
    ]


@dataclass(frozen=True)
class PairResult:
    """The two orders of one pair for one judge, combined."""

    persona_id: str
    member: str
    #: the pair in its A-then-B order
    tools: tuple[str, str]
    outcome: Outcome
    #: the tool picked both times (consistent pairs only)
    winner: str | None
    #: the A-then-B and B-then-A answers (None: never answered)
    forward: Answer | None
    swapped: Answer | None

    @property
    def tie(self) -> bool:
        return self.outcome in ("first-shown", "second-shown")


def combine(
    persona_id: str, member: str, tools: tuple[str, str], forward: Answer | None, swapped: Answer | None
) -> PairResult:
    """One pair's result from its A-then-B answer and its B-then-A answer."""
    a, b = tools
    for answer, shown in ((forward, (a, b)), (swapped, (b, a))):
        if answer is not None and (answer.first, answer.second) != shown:
            raise ValueError(
                f"an answer shown {answer.first!r} then {answer.second!r} is not the order {shown}"
            )
    outcome: Outcome
    winner = None
    if forward is None or swapped is None or forward.picked is None or swapped.picked is None:
        outcome = "failed"
    elif forward.picked == swapped.picked:
        outcome, winner = "consistent", forward.picked
    else:
        outcome = "first-shown" if forward.position == "first" else "second-shown"
    return PairResult(persona_id, member, tools, outcome, winner, forward, swapped)


def pair_results(answers: Iterable[Answer]) -> list[PairResult]:
    """Every (judge, pair) asked, in the order first asked; a pair with one order missing is failed.

    The first answer seen of a pair sets its A-then-B order. Two answers for one order of one
    pair are an error: which one counts would be a guess."""
    orders: dict[tuple[str, str, frozenset[str]], tuple[tuple[str, str], dict[tuple[str, str], Answer]]] = {}
    for answer in answers:
        key = (answer.persona_id, answer.member, frozenset((answer.first, answer.second)))
        tools, seen = orders.setdefault(key, ((answer.first, answer.second), {}))
        shown = (answer.first, answer.second)
        if shown in seen:
            raise ValueError(
                f"{answer.persona_id} on {answer.member} answered {shown[0]!r} then {shown[1]!r} twice"
            )
        seen[shown] = answer
    results = []
    for (persona_id, member, _), (tools, seen) in orders.items():
        a, b = tools
        results.append(combine(persona_id, member, tools, seen.get((a, b)), seen.get((b, a))))
    return results


@dataclass(frozen=True)
class Rate:
    """`count` of `n` pairs, with Wilson's 95% interval (None when n is 0)."""

    count: int
    n: int
    minimum: int = MIN_PAIRS
    unit: str = "pairs"

    @property
    def value(self) -> float | None:
        return self.count / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.count, self.n) if self.n else None

    @property
    def enough(self) -> bool:
        return self.n >= self.minimum

    def text(self) -> str:
        """E.g. "0.65 (Wilson 0.52-0.76, 48 pairs)", or "too few: 2 of 3 pairs (10 needed)"."""
        if not self.enough or self.interval is None:
            return f"too few: {self.count} of {self.n} {self.unit} ({self.minimum} needed)"
        low, high = self.interval
        return f"{self.count / self.n:.2f} (Wilson {low:.2f}–{high:.2f}, {self.n} {self.unit})"


@dataclass(frozen=True)
class JudgeBias:
    """One judge's head-to-head behaviour under swap."""

    persona_id: str
    member: str
    pairs: int
    consistent: int
    first_shown: int
    second_shown: int
    failed: int

    @property
    def consistency(self) -> Rate:
        """Consistent pairs among the pairs with both answers."""
        return Rate(self.consistent, self.pairs - self.failed)

    @property
    def position_bias(self) -> Rate:
        """First-shown picks among the inconsistent pairs (0.5: no lean to either position)."""
        return Rate(self.first_shown, self.first_shown + self.second_shown)

    @property
    def first_picks(self) -> Rate:
        """Answers naming the first-shown tool among all answers of the pairs answered in both
        orders (a consistent pair gives one, a first-shown tie two, a second-shown tie none).
        0.5 is no lean. Unlike :attr:`position_bias` it grows with the size of the lean: a
        judge naming the first-shown tool with probability b, and otherwise picking on merit,
        gives (1 + b) / 2 whatever the tools, while its share of first-shown ties among the
        inconsistent pairs is near 1 for any b > 0 once the tools differ clearly."""
        answered = self.pairs - self.failed
        return Rate(self.consistent + 2 * self.first_shown, 2 * answered, 2 * MIN_PAIRS, "answers")

    def lean(self) -> tuple[float, float, float] | None:
        """The size of the lean, b = 2 x :attr:`first_picks` - 1 (first-shown ties minus
        second-shown ties over the pairs answered in both orders), with Wilson's interval on the
        share mapped the same way; + leans first, - second. None when no pair has both answers."""
        picks = self.first_picks
        if picks.value is None or picks.interval is None:
            return None
        low, high = picks.interval
        return 2 * picks.value - 1, 2 * low - 1, 2 * high - 1


def judge_bias(results: Sequence[PairResult]) -> list[JudgeBias]:
    """Per judge, in the order first seen: its pairs by outcome."""
    counts: dict[tuple[str, str], dict[Outcome, int]] = {}
    for r in results:
        judge = counts.setdefault((r.persona_id, r.member), dict.fromkeys(_OUTCOMES, 0))
        judge[r.outcome] += 1
    return [
        JudgeBias(
            persona_id,
            member,
            pairs=sum(c.values()),
            consistent=c["consistent"],
            first_shown=c["first-shown"],
            second_shown=c["second-shown"],
            failed=c["failed"],
        )
        for (persona_id, member), c in counts.items()
    ]


_OUTCOMES: tuple[Outcome, ...] = ("consistent", "first-shown", "second-shown", "failed")


@dataclass(frozen=True)
class Tally:
    """A pair of tools over every judge: each tool's consistent wins, the ties, the failures."""

    tools: tuple[str, str]
    wins: tuple[int, int]
    ties: int
    failed: int

    @property
    def leader(self) -> str | None:
        """The tool with more consistent wins; None when they are level."""
        if self.wins[0] == self.wins[1]:
            return None
        return self.tools[0] if self.wins[0] > self.wins[1] else self.tools[1]


def tally(results: Iterable[PairResult], tools: tuple[str, str]) -> Tally:
    """The head-to-head result of one pair across judges."""
    a, b = tools
    mine = [r for r in results if set(r.tools) == {a, b}]
    return Tally(
        tools,
        (sum(r.winner == a for r in mine), sum(r.winner == b for r in mine)),
        ties=sum(r.tie for r in mine),
        failed=sum(r.outcome == "failed" for r in mine),
    )


def section(
    answers: Iterable[Answer],
    names: Mapping[str, str],
    rater: Callable[[str, str], str],
    judged: Sequence[JudgeBias] | None = None,
) -> HeadToHeadSection | None:
    """The record's `head_to_head`: every pair asked, in the order first asked, with each
    judge's two answers, and every judge's rates; None when nothing was asked.

    `names` gives a tool's name by id (an id it lacks stands for itself); `rater(persona_id,
    member)` a judge's name as the record writes it. `judged`, when given, are the judges'
    rates to show (a review's tool record: `judge_bias` over every pair of the run, not only the
    tool's own, so that a judge's rates rest on all it answered); else they are read from
    `answers`."""
    results = pair_results(answers)
    if not results:
        return None
    by_pair: dict[frozenset[str], list[PairResult]] = {}
    for r in results:
        by_pair.setdefault(frozenset(r.tools), []).append(r)
    pairs = [_pair(mine[0].tools, mine, names, rater) for mine in by_pair.values()]
    rated = judge_bias(results) if judged is None else judged
    judges = [_judge(j, rater(j.persona_id, j.member)) for j in rated]
    ties = sum(p.ties for p in pairs)
    failed = sum(p.failed for p in pairs)
    # a recused member asks none of its maker's pairs: the judges per pair may differ
    fewest, most = min(len(p.judgements) for p in pairs), max(len(p.judgements) for p in pairs)
    asked = f"each asked of {most}" if fewest == most else f"asked of {fewest} to {most}"
    summary = (
        f"{len(pairs)} pair{'s' if len(pairs) != 1 else ''} of tools, {asked} "
        f"judge{'s' if most != 1 else ''} in both orders: {len(results)} judgements, "
        f"{ties} tied by a pick by position, {failed} failed."
    )
    return HeadToHeadSection(pairs=pairs, judges=judges, summary=summary)


def _stored(answer: Answer | None) -> HeadToHeadAnswer | None:
    if answer is None:
        return None
    return HeadToHeadAnswer(
        shown_first=answer.first,
        shown_second=answer.second,
        picked=answer.picked,
        reason=answer.reason,
        error=answer.error,
    )


def _pair(
    tools: tuple[str, str],
    results: Sequence[PairResult],
    names: Mapping[str, str],
    rater: Callable[[str, str], str],
) -> HeadToHeadPair:
    t = tally(results, tools)
    a, b = (names.get(tid, tid) for tid in tools)
    judgements = []
    for r in results:
        forward, swapped = (r.forward, r.swapped) if r.tools == tools else (r.swapped, r.forward)
        judgements.append(
            HeadToHeadJudgement(
                persona_id=r.persona_id,
                member=r.member,
                rater=rater(r.persona_id, r.member),
                outcome=r.outcome,
                winner=r.winner,
                forward=_stored(forward),
                swapped=_stored(swapped),
            )
        )
    summary = f"{a} {t.wins[0]}, {b} {t.wins[1]}; {t.ties} tied by position, {t.failed} failed."
    return HeadToHeadPair(
        tools=list(tools),
        names=[a, b],
        wins=list(t.wins),
        ties=t.ties,
        failed=t.failed,
        leader=t.leader,
        summary=summary,
        judgements=judgements,
    )


def _rate(rate: Rate) -> HeadToHeadRate:
    enough = rate.enough and rate.interval is not None
    low, high = rate.interval if enough and rate.interval is not None else (None, None)
    return HeadToHeadRate(
        count=rate.count,
        n=rate.n,
        value=rate.value if enough else None,
        low=low,
        high=high,
        minimum=rate.minimum,
        note=None if enough else rate.text(),
        display=rate.text(),
    )


def _judge(j: JudgeBias, rater: str) -> HeadToHeadJudge:
    return HeadToHeadJudge(
        persona_id=j.persona_id,
        member=j.member,
        rater=rater,
        pairs=j.pairs,
        consistent=j.consistent,
        first_shown=j.first_shown,
        second_shown=j.second_shown,
        failed=j.failed,
        consistency=_rate(j.consistency),
        position_bias=_rate(j.position_bias),
    )
