"""The shape of ``leaderboard.json`` (and of `panel rank --format json`): tools of a category
ranked from head-to-head judgements by a Bradley-Terry model, as models whose JSON Schema is
published beside the record's (``schema/leaderboard.schema.json``, `panel schema --leaderboard`).

Every judgement is accounted for: a judge (persona on member) that picked the same tool in both
orders gives a win; one that picked by position gives a tie; one whose answer failed is counted
as failed. None is dropped silently."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "LEADERBOARD_VERSION",
    "JudgeLine",
    "Judgements",
    "LeaderTool",
    "Leaderboard",
    "Stopped",
    "leaderboard_schema_text",
]

LEADERBOARD_VERSION: Literal["1.0"] = "1.0"

#: why the asking stopped: every two neighbours' order settled at the level, the budget ran out, every
#: possible pair was asked, or the run was interrupted (the board is what was asked so far)
Stopped = Literal["settled", "budget", "all-pairs", "interrupted"]


class _Model(BaseModel):
    # NaN and Infinity (and 1e999) are not numbers a board can hold: refused, not drawn as "nan"
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class LeaderTool(_Model):
    """One tool's line, in rank order."""

    rank: int = Field(ge=1, description="1 = strongest; equal strengths keep the order the tools were given.")
    tool_id: str
    name: str
    strength: float = Field(description="Bradley–Terry log-strength, the tools' mean being 0.")
    low: float | None = Field(
        description="Lower end of the strength's interval at `level`; null below the minimum."
    )
    high: float | None = Field(description="Upper end of the strength's interval at `level`.")
    rank_low: int | None = Field(ge=1, description="Best rank in the resamples' central `level`.")
    rank_high: int | None = Field(ge=1, description="Worst rank in the resamples' central `level`.")
    wins: int = Field(ge=0, description="Judgements this tool won (the same pick in both orders).")
    losses: int = Field(ge=0)
    ties: int = Field(ge=0, description="Judgements of its pairs where the judge picked by position.")
    failed: int = Field(ge=0, description="Judgements of its pairs with a failed or missing answer.")
    opponents: int = Field(ge=0, description="Distinct tools it was compared with.")


class JudgeLine(_Model):
    """One judge's (persona on member) consistency under swap and position bias."""

    persona_id: str
    member: str
    pairs: int = Field(ge=0, description="Pairs it answered in both orders (failed ones excluded).")
    consistent: int = Field(ge=0)
    first_shown: int = Field(ge=0, description="Pairs where it picked the first-shown tool both times.")
    second_shown: int = Field(ge=0)
    failed: int = Field(ge=0)
    consistency: float | None = Field(ge=0, le=1, description="consistent / pairs; null below the minimum.")
    consistency_low: float | None = Field(ge=0, le=1)
    consistency_high: float | None = Field(ge=0, le=1)
    position_bias: float | None = Field(
        ge=0, le=1, description="first_shown / (first_shown + second_shown); null below the minimum."
    )
    position_low: float | None = Field(ge=0, le=1)
    position_high: float | None = Field(ge=0, le=1)
    note: str | None = Field(description="Why a rate is missing, e.g. 'too few: 4 of 10 pairs needed'.")


class Judgements(_Model):
    """Every judgement of the board: judge x pair, the two orders combined."""

    consistent: int = Field(ge=0)
    ties: int = Field(ge=0, description="Picked by position (the same place both times).")
    failed: int = Field(ge=0)


class Leaderboard(_Model):
    """A category's tools ranked from head-to-head judgements."""

    version: Literal["1.0"] = LEADERBOARD_VERSION
    run_id: str
    title: str = Field(description="e.g. 'Observability: which one should you ship with?'")
    category: str | None = Field(description="The catalog category ranked; null for a list of tools.")
    generated: str = Field(description="When the board was computed, ISO 8601 UTC.")
    method: str = Field(description="One sentence: the model, how pairs were chosen, the interval.")
    level: float = Field(default=0.95, gt=0, lt=1)
    resamples: int = Field(ge=0, description="Bootstrap resamples over judgements behind the intervals.")
    tools: list[LeaderTool]
    judges: list[JudgeLine]
    judgements: Judgements
    pairs_asked: int = Field(ge=0, description="Distinct pairs asked (each in both orders).")
    pairs_possible: int = Field(ge=0, description="N × (N − 1) / 2 for N tools.")
    asks: int = Field(
        ge=0, description="Answers stored: pairs × 2 orders × judges, less the pairs a member recused from."
    )
    budget: str | None = Field(
        description="The cap: the one given ('60 pairs', '$0.50') or the default ('148 pairs (default)')."
    )
    stopped: Stopped
    cost_usd: float | None = Field(ge=0, description="Spent on the asks; null when unpriced (local).")
    note: str | None = Field(description="What the board cannot tell at this size, in one sentence.")


def leaderboard_schema_text() -> str:
    """The JSON Schema of leaderboard.json, as `panel schema --leaderboard` prints it."""
    return json.dumps(Leaderboard.model_json_schema(), indent=2) + "\n"
