"""The comparison record: what the panel produces, versioned, with a published JSON Schema.

`schema/comparison.schema.json` is generated from these models (`panel schema`); a test
keeps the published file and the models in step. Parts that stand apart live in modules of
their own and are re-exported here: each tool's confidence (`record_confidence`), the
test-retest figures (`record_consistency`), the head-to-head judgements (`record_head_to_head`)
and a published record's provenance (`record_provenance`), all on one base model (`record_base`).
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import Field

from .record_base import RecordModel as _Model
from .record_confidence import Confidence, Contested
from .record_consistency import RaterConsistency, RepeatCell, SelfConsistency
from .record_head_to_head import (
    HeadToHeadAnswer,
    HeadToHeadJudge,
    HeadToHeadJudgement,
    HeadToHeadPair,
    HeadToHeadRate,
    HeadToHeadSection,
)
from .record_provenance import Provenance, Regeneration, ReviewProvenance

__all__ = [
    "RECORD_VERSION",
    "Answer",
    "CommunityRead",
    "CommunityVsPanel",
    "ComparisonRecord",
    "Confidence",
    "Contested",
    "Counts",
    "EditMark",
    "Enforced",
    "EntryRead",
    "HeadToHeadAnswer",
    "HeadToHeadJudge",
    "HeadToHeadJudgement",
    "HeadToHeadPair",
    "HeadToHeadRate",
    "HeadToHeadSection",
    "Headline",
    "MemberDisagreement",
    "PanelInfo",
    "PersonaAcross",
    "PersonaInfo",
    "PricingSide",
    "Provenance",
    "RaterConsistency",
    "RebuttalMark",
    "RebuttalRound",
    "Recusal",
    "Regeneration",
    "RepeatCell",
    "ReviewProvenance",
    "ReviewerSplit",
    "RoundShare",
    "RunState",
    "ScorecardEntry",
    "SelfConsistency",
    "ShipShare",
    "ToolCard",
    "ToolSplit",
    "record_schema",
    "record_schema_text",
]

# 1.1: the panel is repeat 0 everywhere; later repeats go to `self_consistency`; `run` added.
# 1.2: each scorecard entry says how its structure was held (`enforced`).
# 1.3: an editor's text shows in place of the model's, which each entry keeps in
#      `edited_by_editor`; a ship share counts the verdicts an editor changed. Both are left
#      out of a record without edits, so such a record reads as 1.2 did. A published record
#      carries its `provenance`.
# 1.4: a run with a rebuttal round: each entry's `rebuttal` (keep or change, why, verdict
#      before and after) and `names_itself`; the verdict shown is the round-2 one when valid;
#      a ship share's `first_round` and `changed_after_rebuttal`; the record's `rebuttal`.
#      All left out of a record without a rebuttal round.
# 1.5: a published record's provenance names who published it (`published_by`).
# 1.6: a published review's provenance says why and by whom each earlier review of its cell
#      was set aside (`regenerations`); the count `regenerated` stays.
# 1.7: each tool's `confidence`: the panel's probability of ship with its interval, the
#      method it rests on, and whether the verdict is contested and why (null in a record
#      built without one).
# 1.8: `recusals`: each member that left out the tools its maker made (`recuse = "maker"`),
#      and each tool's `recused` members; the tool's shares are without them. Both are left
#      out of a record without a recusal.
# 1.9: `head_to_head`: each pair of tools asked in both orders, every judge's two answers and
#      what they make, each pair's tally, each judge's consistency under swap and position
#      bias; the headline's `head_to_head` result beside the verdict count, and `disagreement`
#      when the two favour different tools. All left out of a run without head-to-head asks.
RECORD_VERSION: Literal["1.9"] = "1.9"

Enforced = Literal["grammar", "provider schema", "tool", "validated after"]
EntryLabel = Literal["Free", "Freemium", "Paid", "Enterprise", "Unknown"]


class RoundShare(_Model):
    """Ship verdicts among valid reviews in round 1, before the rebuttal round."""

    ship: int = Field(ge=0)
    valid: int = Field(ge=0)
    pct: float | None = Field(description="100 * ship / valid, or null when no review is valid.")
    display: str


class ShipShare(_Model):
    """Ship verdicts among valid reviews. Failed reviews are counted apart and never in `pct`."""

    ship: int = Field(ge=0)
    valid: int = Field(ge=0)
    failed: int = Field(ge=0)
    pct: float | None = Field(description="100 * ship / valid, or null when no review is valid.")
    display: str = Field(description="The percentage as shown on the page, or an em dash.")
    changed_by_editor: int = Field(
        default=0,
        ge=0,
        exclude_if=lambda n: n == 0,
        description="Valid reviews whose verdict an editor changed; left out when none.",
    )
    note: str | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="Said beside the percentage, e.g. '1 verdict changed by an editor'; left out when none.",
    )
    first_round: RoundShare | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="The share in round 1, before the rebuttal round; left out of a run without one.",
    )
    changed_after_rebuttal: int = Field(
        default=0,
        ge=0,
        exclude_if=lambda n: n == 0,
        description="Valid reviews whose verdict changed in the rebuttal round; left out when none.",
    )


class CommunityRead(_Model):
    ship: int = Field(ge=0)
    skip: int = Field(ge=0)
    total: int = Field(ge=0)
    pct: float | None = Field(description="100 * ship / total, or null when nobody voted.")
    display: str


class EntryRead(_Model):
    """The pricing read: how a buyer gets in, and why."""

    label: EntryLabel
    pricing_model: Literal["free", "freemium", "paid", "enterprise", "unknown"]
    reason: str


class Answer(_Model):
    key: str
    question: str
    answer: str


class EditMark(_Model):
    """A field of a review an editor changed: the entry shows the editor's text, this keeps
    what the model wrote."""

    field: str = Field(description="verdict, verdict_note, review, or answers.<question key>.")
    original: str | None = Field(description="What the model wrote.")
    editor: str | None = Field(description="Who edited it, when the editor gave a name.")
    edited_at: str = Field(description="When, ISO 8601 in UTC.")


class RebuttalMark(_Model):
    """A review's rebuttal round: it read the other reviews of its tool and kept or changed."""

    valid: bool
    decision: Literal["keep", "change"] | None = Field(description="Null when the answer failed.")
    why: str | None
    verdict_before: str = Field(description="The round-1 verdict.")
    verdict_after: str | None = Field(description="The round-2 verdict; null when the answer failed.")
    changed: bool = Field(description="True when the round-2 verdict is valid and not the round-1 one.")
    others: int = Field(ge=0, description="How many other reviews it read.")
    error: str | None = Field(description="Why the answer failed, when it did.")
    asks: int = Field(ge=1)


class RebuttalRound(_Model):
    """The run's rebuttal round over the panel (repeat 0)."""

    answers: int = Field(ge=0, description="Reviews that took part: valid in round 1, with others to read.")
    valid: int = Field(ge=0)
    failed: int = Field(ge=0)
    changed: int = Field(ge=0)
    flip_pct: float | None = Field(description="100 * changed / valid, or null when none is valid.")
    display: str
    first_round: RoundShare = Field(description="The panel's ship share in round 1.")
    after_rebuttal: RoundShare = Field(description="The panel's ship share after the rebuttal round.")
    names_itself: int = Field(ge=0, description="Reviews whose own text names their persona or model.")
    summary: str


class ScorecardEntry(_Model):
    persona_id: str
    persona_name: str
    lens: str
    member: str = Field(
        description="The panel member that wrote the review: its name in panel.toml, else backend:model."
    )
    valid: bool
    verdict: str | None
    verdict_note: str | None
    review: str | None
    answers: list[Answer]
    error: str | None = Field(description="Why the review failed, when it did.")
    asks: int = Field(ge=1, description="1, or 2 when the reply had to be re-asked.")
    repeat: int = Field(
        default=0,
        ge=0,
        description="Always 0: the panel reads repeat 0; later repeats are in `self_consistency`.",
    )
    enforced: Enforced | None = Field(
        default=None,
        description=(
            "How the reply was held to the review schema: a grammar in decoding, the provider's "
            "own schema support, a forced tool call, or only validated after it came back. "
            "Null for reviews stored before this was recorded."
        ),
    )
    edited_by_editor: list[EditMark] = Field(
        default_factory=list,
        exclude_if=lambda marks: not marks,
        description=(
            "The fields an editor changed, each with the model's own text; the entry's fields "
            "show the editor's. Left out when nothing was edited."
        ),
    )
    rebuttal: RebuttalMark | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="Its rebuttal round, when it had one; `verdict` is then the round-2 verdict if valid.",
    )
    names_itself: list[str] = Field(
        default_factory=list,
        exclude_if=lambda found: not found,
        description=(
            "In a run with a rebuttal round: the names of its own persona or model that its own "
            "text gives (relabelling cannot hide them from the other reviewers). Left out when none."
        ),
    )


class ToolCard(_Model):
    id: str
    name: str
    category: str
    tagline: str
    description: str
    links: dict[str, str]
    facts: list[str]
    panel: ShipShare
    panel_by_member: dict[str, ShipShare]
    community: CommunityRead
    entry: EntryRead
    scorecard: list[ScorecardEntry]
    confidence: Confidence | None = Field(
        default=None, description="How far to trust the panel's verdict; null when not computed."
    )
    recused: list[str] = Field(
        default_factory=list,
        exclude_if=lambda v: not v,
        description='Members that did not review the tool, made by their maker (`recuse = "maker"`); '
        "its shares are without them. Left out when none.",
    )


class ToolSplit(_Model):
    """Who disagrees within one tool's panel."""

    tool_id: str
    unanimous: bool
    ship: list[str]
    skip: list[str]
    other: list[str] = Field(description="Raters with any other verdict a persona defines.")
    failed: list[str]
    summary: str


class PersonaAcross(_Model):
    """One rater's verdicts on every tool: does it tell them apart?"""

    persona_id: str
    persona_name: str
    member: str
    verdicts: dict[str, str | None]
    splits_tools: bool | None = Field(
        description="True when this rater gave the tools different verdicts; null if any failed."
    )


class MemberDisagreement(_Model):
    """A tool and persona on which the panel's models do not agree."""

    tool_id: str
    persona_id: str
    verdicts: dict[str, str | None]


class ReviewerSplit(_Model):
    within_tools: list[ToolSplit]
    across_tools: list[PersonaAcross]
    between_members: list[MemberDisagreement]
    summary: str


class PricingSide(_Model):
    tool_id: str
    name: str
    label: EntryLabel
    reason: str


class CommunityVsPanel(_Model):
    tool_id: str
    name: str
    community_pct: float | None
    community_votes: int
    panel_pct: float | None
    gap: float | None = Field(description="panel_pct - community_pct, in points.")
    note: str


class Headline(_Model):
    question: str
    pick: str | None = Field(
        description="The id of the tool the panel backs, or null for a tie or a partial run."
    )
    text: str = Field(description="The count of independent verdicts, in words.")
    head_to_head: str | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="The head-to-head result in words, beside the verdict count; left out of a "
        "run without head-to-head asks.",
    )
    head_to_head_pick: str | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="The tool that leads every one of its head-to-head pairs in consistent wins; "
        "left out when none does.",
    )
    disagreement: str | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="One sentence when the verdict count and the head-to-head favour different "
        "tools (or one favours a tool and the other none); left out when they agree.",
    )


class PersonaInfo(_Model):
    id: str
    name: str
    lens: str


class Recusal(_Model):
    """A member that left out the tools its maker made (`recuse = "maker"`)."""

    member: str
    maker: str = Field(description="The member's maker, as the run recorded it.")
    tool_ids: list[str] = Field(min_length=1, description="The tools of the record it did not review.")


class PanelInfo(_Model):
    members: list[str]
    personas: list[PersonaInfo]


class Counts(_Model):
    """The panel's reviews: repeat 0 of every cell that has one."""

    reviews: int
    valid: int
    failed: int


class RunState(_Model):
    """How far the run got when the record was built. A partial record is no final verdict."""

    status: str = Field(
        description="The run's status in the store: done, running, stopped, failed, interrupted, ..."
    )
    planned: int = Field(ge=0, description="Reviews planned: tools x personas x members x repeats.")
    stored: int = Field(ge=0, description="Reviews stored, valid or failed, over every repeat.")
    missing: int = Field(ge=0, description="planned - stored: cells with no review yet.")
    complete: bool = Field(description="True when status is done and no review is missing.")


class ComparisonRecord(_Model):
    version: Literal["1.9"] = RECORD_VERSION
    run_id: str
    created_at: str = Field(description="When the run started, ISO 8601 in UTC.")
    title: str
    tools: list[ToolCard] = Field(min_length=1)
    panel: PanelInfo
    headline: Headline
    split: ReviewerSplit
    pricing: list[PricingSide]
    community_vs_panel: list[CommunityVsPanel]
    counts: Counts
    run: RunState
    self_consistency: SelfConsistency | None = Field(
        default=None, description="Later repeats against repeat 0; null when the run has one repeat."
    )
    rebuttal: RebuttalRound | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="The rebuttal round's figures; left out of a run without one.",
    )
    recusals: list[Recusal] = Field(
        default_factory=list,
        exclude_if=lambda v: not v,
        description="Who recused from reviewing what; left out of a run without a recusal.",
    )
    head_to_head: HeadToHeadSection | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="The head-to-head judgements of pairs of the record's tools; left out of a "
        "run without them.",
    )
    provenance: Provenance | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="Set on a published record (`panel view`'s publish); left out otherwise.",
    )


def record_schema() -> dict[str, object]:
    schema = ComparisonRecord.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"urn:panel:comparison-record:{RECORD_VERSION}"
    return schema


def record_schema_text() -> str:
    return json.dumps(record_schema(), indent=2) + "\n"
