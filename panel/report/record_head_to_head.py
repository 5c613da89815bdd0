"""Head-to-head judgements, as the comparison record holds them (record 1.9): each pair of tools
asked in both orders, every judge's two answers and what they make, the pair's tally, and each
judge's consistency under swap and position bias. Built by :mod:`panel.report.head_to_head`;
re-exported by :mod:`panel.report.record`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .record_base import RecordModel

__all__ = [
    "HeadToHeadAnswer",
    "HeadToHeadJudge",
    "HeadToHeadJudgement",
    "HeadToHeadPair",
    "HeadToHeadRate",
    "HeadToHeadSection",
]

HeadToHeadOutcome = Literal["consistent", "first-shown", "second-shown", "failed"]


class HeadToHeadAnswer(RecordModel):
    """One ask: the judge read `shown_first` then `shown_second` and picked one, or failed."""

    shown_first: str = Field(description="The id of the tool shown first (as Tool A).")
    shown_second: str = Field(description="The id of the tool shown second (as Tool B).")
    picked: str | None = Field(description="The id of the tool it would ship with; null when it failed.")
    reason: str | None = Field(description="Its one-sentence reason, as the model wrote it.")
    error: str | None = Field(description="Why the answer failed, when it did.")


class HeadToHeadJudgement(RecordModel):
    """One judge (persona on member) on one pair: both orders' answers and what they make."""

    persona_id: str
    member: str
    rater: str = Field(description="The persona's name, with the member when the panel has several.")
    outcome: HeadToHeadOutcome = Field(
        description="consistent: the same tool both times (it wins); first-shown or second-shown: "
        "a pick by position, so a tie; failed: an answer failed or is missing."
    )
    winner: str | None = Field(description="The tool picked both times; null unless consistent.")
    forward: HeadToHeadAnswer | None = Field(
        description="The pair shown in its order; null if never answered."
    )
    swapped: HeadToHeadAnswer | None = Field(description="The pair shown swapped; null if never answered.")


class HeadToHeadPair(RecordModel):
    """One pair of tools over every judge."""

    tools: list[str] = Field(min_length=2, max_length=2, description="The two tool ids, in the pair's order.")
    names: list[str] = Field(min_length=2, max_length=2, description="Their names, in the same order.")
    wins: list[int] = Field(
        min_length=2, max_length=2, description="Each tool's consistent wins, in the same order."
    )
    ties: int = Field(ge=0, description="Judges that picked by position (first-shown or second-shown).")
    failed: int = Field(ge=0, description="Judges with an answer failed or missing; never dropped.")
    leader: str | None = Field(description="The tool with more wins; null when level.")
    summary: str
    judgements: list[HeadToHeadJudgement]


class HeadToHeadRate(RecordModel):
    """`count` of `n` pairs, with Wilson's 95% interval; null below `minimum` pairs, and `note` says so."""

    count: int = Field(ge=0)
    n: int = Field(ge=0)
    value: float | None = Field(ge=0, le=1, description="count / n; null when n is below `minimum`.")
    low: float | None = Field(ge=0, le=1, description="Wilson's 95% interval, lower end; null with `value`.")
    high: float | None = Field(ge=0, le=1, description="Wilson's 95% interval, upper end; null with `value`.")
    minimum: int = Field(ge=1, description="The fewest pairs a rate is given from.")
    note: str | None = Field(description="Why there is no value, e.g. 'too few: 2 of 3 pairs (10 needed)'.")
    display: str = Field(description="The rate as the page shows it, or the note.")


class HeadToHeadJudge(RecordModel):
    """One judge's behaviour under swap, over every pair it was asked."""

    persona_id: str
    member: str
    rater: str = Field(description="The persona's name, with the member when the panel has several.")
    pairs: int = Field(ge=0)
    consistent: int = Field(ge=0)
    first_shown: int = Field(ge=0)
    second_shown: int = Field(ge=0)
    failed: int = Field(ge=0)
    consistency: HeadToHeadRate = Field(description="Consistent pairs among the pairs with both answers.")
    position_bias: HeadToHeadRate = Field(
        description="First-shown picks among the inconsistent pairs (0.5: no lean either way; "
        "null when there are too few inconsistent pairs, none at all for a consistent judge)."
    )


class HeadToHeadSection(RecordModel):
    """The run's head-to-head judgements: every pair asked, and every judge."""

    pairs: list[HeadToHeadPair]
    judges: list[HeadToHeadJudge]
    summary: str
