"""Test-retest, as the comparison record holds it: the record's :class:`SelfConsistency`
(later repeats of a cell against repeat 0, per rater and per cell), never part of the panel's
figures. Built by :mod:`panel.report.repeats`; re-exported by :mod:`panel.report.record`."""

from __future__ import annotations

from pydantic import Field

from .record_base import RecordModel

__all__ = ["RaterConsistency", "RepeatCell", "SelfConsistency"]


class RepeatCell(RecordModel):
    """One tool, persona and member, read once per repeat."""

    tool_id: str
    persona_id: str
    rater: str = Field(description="The persona's name, with the member when the panel has several.")
    member: str
    verdicts: list[str | None] = Field(
        description="The verdict of repeat k at index k; null where that repeat failed or is missing."
    )
    agree: int = Field(ge=0, description="Later repeats whose verdict is repeat 0's.")
    compared: int = Field(
        ge=0, description="Later repeats with a verdict, counted only when repeat 0 has one."
    )
    stable: bool | None = Field(
        description="True when every compared repeat agrees with repeat 0; null when none compared."
    )


class RaterConsistency(RecordModel):
    """How often one rater's later repeats give its repeat-0 verdict again."""

    persona_id: str
    member: str
    rater: str
    agree: int = Field(ge=0)
    compared: int = Field(ge=0)
    pct: float | None = Field(description="100 * agree / compared, or null when nothing compared.")
    display: str


class SelfConsistency(RecordModel):
    """Test-retest: later repeats against repeat 0. Never part of the panel's figures or split."""

    repeats: int = Field(ge=2, description="Repeats per cell in the run's plan.")
    agree: int = Field(ge=0)
    compared: int = Field(ge=0)
    pct: float | None
    display: str
    raters: list[RaterConsistency]
    cells: list[RepeatCell]
    summary: str
