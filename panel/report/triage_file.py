"""The shape of ``triage.json`` (and of `panel triage --format json`), as models whose JSON
Schema is published beside the record's: ``schema/triage.schema.json`` (`panel schema
--triage`; `make schema` writes it again). docs/record.md says what each field means."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .record_confidence import ConfidenceMethod

__all__ = ["TRIAGE_VERSION", "RuleChosen", "RuleRefused", "TriageFile", "TriageRow", "triage_schema_text"]

TRIAGE_VERSION = "1.0"
Side = Literal["ship", "not ship"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TriageRow(_Model):
    """One tool, in doubt order."""

    rank: int = Field(ge=1)
    tool_id: str
    name: str
    doubt: float = Field(ge=0, le=1, description="0 certain ... 1 a coin toss; the order.")
    ship: float | None = Field(
        description="The panel's probability of ship; null when it cannot be estimated."
    )
    low: float | None
    high: float | None
    method: ConfidenceMethod
    reviews: int = Field(ge=0)
    contested: bool
    reasons: str = Field(description="The contested codes, ';'-separated.")
    why: str = Field(description="Their sentences.")
    verdict: Side | None = Field(description="The side the probability favours; null at 0.5 or without one.")
    decision: Literal["publish", "editor"] | None = Field(
        description="publish unread, or editor; null without a reference."
    )
    reference: Side | None = Field(
        description="The tool's reference, folded to ship / not ship; null if none."
    )


class RuleChosen(_Model):
    """A threshold that meets the target: every tool whose verdict's probability reaches it is
    published unread."""

    threshold: float
    target: float
    level: float
    bound: float = Field(
        description="One-sided Clopper-Pearson lower bound of the published labelled tools' agreement."
    )
    agreement: float
    agreeing: int
    published_labelled: int
    labels: int
    minimum: int
    coverage: float = Field(description="Share of all the run's tools published unread.")
    published: int
    tools: int
    tested: int
    guarantee: Literal[True]
    sentence: str


class RuleRefused(_Model):
    """No threshold can be promised: every tool goes to an editor."""

    code: Literal["too_few_labels", "target_not_met"]
    reason: str
    target: float
    level: float
    labels: int
    minimum: int
    tools: int
    best_bound: float | None
    guarantee: Literal[False]
    sentence: str


class AuditDraw(_Model):
    """`panel triage --audit N --seed S`: the tools listed are N drawn at random, not ranked."""

    tools: int = Field(ge=1, description="How many tools were drawn (N).")
    seed: int = Field(description="The seed of the draw: the same run and seed give the same tools.")


class TriageFile(_Model):
    """A run's triage: its tools most doubtful first and, against a reference, the rule."""

    version: Literal["1.0"]
    run: str
    reference: str | None = Field(description="editors, community, a labels file's path, or null.")
    method: str = Field(description="The confidence method(s) the rows rest on, '+'-joined.")
    rests_on: int = Field(ge=0, description="Editor labels of earlier runs the reliabilities rest on.")
    rule: RuleChosen | RuleRefused | None = Field(discriminator="guarantee", default=None)
    sentence: str
    notes: list[str]
    tools: list[TriageRow]
    audit: AuditDraw | None = Field(default=None, description="Set when the tools are an audit sample.")


def triage_schema_text() -> str:
    schema = TriageFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"urn:panel:triage:{TRIAGE_VERSION}"
    return json.dumps(schema, indent=2) + "\n"
