"""How a comparison page was made, in sentences: the editorial internals a reader's page
leaves out (how each reply was held to its schema, re-asks, an editor's edits, regenerations
and why), gathered for the optional "How this page was made" section of the HTML and
Markdown pages. The JSON record keeps all of it in its own fields.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .record import ComparisonRecord, ReviewProvenance, ScorecardEntry

__all__ = ["HowMade", "ReviewNotes", "how_made_notes"]

_FIELDS = {"verdict": "the verdict", "verdict_note": "the verdict's line", "review": "the review"}


@dataclass(frozen=True)
class ReviewNotes:
    """What one review's making says: whose review, and one sentence per fact."""

    tool: str
    persona: str
    member: str
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HowMade:
    #: how the replies were held to their schema, each way with its count of reviews
    structure: list[tuple[str, int]]
    #: the reviews with something to say, in the page's order
    reviews: list[ReviewNotes]
    #: what an editor changed in a tool's ship share
    shares: list[str]


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _edited(entry: ScorecardEntry) -> str | None:
    if not entry.edited_by_editor:
        return None
    questions = {a.key: a.question for a in entry.answers}
    order = [*_FIELDS, *(f"answers.{key}" for key in questions)]  # the fields in the page's order
    names = []
    for mark in sorted(
        entry.edited_by_editor, key=lambda m: order.index(m.field) if m.field in order else len(order)
    ):
        key = mark.field.removeprefix("answers.")
        names.append(_FIELDS.get(mark.field) or f"the answer to “{questions.get(key, key)}”")
    editors = sorted({m.editor for m in entry.edited_by_editor if m.editor})
    who = ", ".join(editors) or "an editor"
    return f"Edited by {who}: {', '.join(names)}; the record keeps the model's own text."


def _regenerated(prov: ReviewProvenance | None) -> list[str]:
    if prov is None:
        return []
    notes = []
    for r in prov.regenerations:
        by = f" by {r.by}" if r.by else ""
        notes.append(f"Regenerated{by} ({r.at}): {r.reason}")
    if prov.regenerated > len(prov.regenerations):  # a record written before reasons were kept
        notes.append(f"Regenerated {_count(prov.regenerated, 'time')}.")
    return notes


def _notes(entry: ScorecardEntry, prov: ReviewProvenance | None) -> list[str]:
    notes = []
    if entry.valid and entry.asks > 1:
        notes.append("Valid on the second ask.")
    edited = _edited(entry)
    if edited:
        notes.append(edited)
    notes += _regenerated(prov)
    if entry.names_itself:
        notes.append(
            f"Its own text names its persona or model ({', '.join(entry.names_itself)}): "
            "the other reviewers could tell who wrote it."
        )
    return notes


def how_made_notes(record: ComparisonRecord) -> HowMade:
    """The record's internals as the section's sentences."""
    prov = record.provenance
    provenance = {(p.tool_id, p.persona_id, p.member): p for p in prov.reviews} if prov else {}
    structure: Counter[str] = Counter()
    reviews = []
    for persona in record.panel.personas:
        for tool in record.tools:
            for e in tool.scorecard:
                if e.persona_id != persona.id:
                    continue
                if e.valid:
                    structure[e.enforced or "not recorded"] += 1
                notes = _notes(e, provenance.get((tool.id, e.persona_id, e.member)))
                if notes:
                    reviews.append(ReviewNotes(tool.name, e.persona_name, e.member, notes))
    shares = [f"{t.name}: the ship share counts {t.panel.note}." for t in record.tools if t.panel.note]
    return HowMade(sorted(structure.items(), key=lambda kv: (-kv[1], kv[0])), reviews, shares)
