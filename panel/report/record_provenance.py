"""Where a published record came from, as the comparison record holds it: the record's and
each tool card's :class:`Provenance` (who wrote, changed, approved and published each review,
and why any was regenerated). Set by :mod:`panel.report.publish`; re-exported by
:mod:`panel.report.record`."""

from __future__ import annotations

from pydantic import Field

from .record_base import RecordModel

__all__ = ["Provenance", "Regeneration", "ReviewProvenance"]


class Regeneration(RecordModel):
    """An earlier review of a cell set aside to be written again: why, by whom, when."""

    reason: str = Field(description="Why the review was regenerated, as the editor gave it.")
    by: str | None = Field(description="The editor who asked for it, when one gave a name.")
    at: str = Field(description="When the earlier review was set aside, ISO 8601 in UTC.")


class ReviewProvenance(RecordModel):
    """Who wrote one review of a published page, who changed it, and who approved it."""

    tool_id: str
    persona_id: str
    member: str
    repeat: int = Field(ge=0)
    model: str = Field(description="The model that wrote the review, as backend:model.")
    valid: bool
    edited_fields: list[str] = Field(description="The fields an editor changed (see edited_by_editor).")
    regenerated: int = Field(ge=0, description="Earlier reviews of this cell set aside for this one.")
    regenerations: list[Regeneration] = Field(
        default_factory=list, description="Each earlier review set aside, oldest first, with its reason."
    )
    approved: bool
    approved_by: str | None
    approved_at: str | None = Field(description="When it was approved, ISO 8601 in UTC.")


class Provenance(RecordModel):
    """Where a published record came from and who signed it off."""

    run_id: str
    published_at: str = Field(description="ISO 8601 in UTC.")
    published_by: str | None = Field(
        default=None, description="The editor who published it, by the name they gave; null when none was."
    )
    models: list[str] = Field(description="Every model that wrote a review on the page, as backend:model.")
    approved: int = Field(ge=0, description="Reviews of the panel approved by an editor.")
    reviews: list[ReviewProvenance]
    warnings: list[str] = Field(
        description="What was published without sign-off: unapproved, failed or missing reviews."
    )
