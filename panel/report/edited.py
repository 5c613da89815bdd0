"""An editor's edits applied to a run's reviews: the editor's text in place of the model's,
and for each changed field a mark that keeps what the model wrote."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from ..store import CellKey, EditRow, ReviewRow
from .record import EditMark

__all__ = ["Marks", "apply_edits", "changed_note"]

#: each edited review's marks, by cell
Marks = dict[CellKey, list[EditMark]]

_ANSWER = "answers."


def _original(review: ReviewRow, field: str) -> str | None:
    data = review.data or {}
    if field.startswith(_ANSWER):
        value = (data.get("answers") or {}).get(field[len(_ANSWER) :])
    else:
        value = data.get(field)
    return None if value is None else str(value)


def apply_edits(reviews: Sequence[ReviewRow], edits: Iterable[EditRow]) -> tuple[list[ReviewRow], Marks]:
    """The reviews as the editor left them, and a mark per field whose text the editor changed.

    An edit that gives the model's own text back changes nothing and is not marked; an edit
    of a review that failed or is gone is ignored (the store refuses both).
    """
    by_key: dict[CellKey, list[EditRow]] = {}
    for edit in edits:
        by_key.setdefault(edit.key, []).append(edit)
    if not by_key:
        return list(reviews), {}
    out: list[ReviewRow] = []
    marks: Marks = {}
    for review in reviews:
        mine = by_key.get(review.key)
        if not mine or not review.valid or review.data is None:
            out.append(review)
            continue
        data = copy.deepcopy(review.data)
        for edit in mine:
            original = _original(review, edit.field)
            if edit.value == original:
                continue
            if edit.field.startswith(_ANSWER):
                data.setdefault("answers", {})[edit.field[len(_ANSWER) :]] = edit.value
            else:
                data[edit.field] = edit.value
            marks.setdefault(review.key, []).append(
                EditMark(
                    field=edit.field,
                    original=original,
                    editor=edit.editor,
                    edited_at=datetime.fromtimestamp(edit.created_at, UTC).isoformat(timespec="seconds"),
                )
            )
        verdict, note = data.get("verdict"), data.get("verdict_note")
        out.append(replace(review, data=data, verdict=verdict, verdict_note=note))
    return out, marks


def changed_note(changed: int) -> str | None:
    """What a ship share says when an editor changed some of its verdicts."""
    if not changed:
        return None
    return f"{changed} verdict{'' if changed == 1 else 's'} changed by an editor"
