"""What an editor's form says it saw: a version of each review, so a form opened before the
review changed (regenerated, edited in another tab, answered again after rebuttal) is
refused instead of writing its stale text over the new one.

A review's version is a hash of what the page showed of it: the model's reply, the round-2
verdict in force, and the editor's edits in force. A page's version is the hash of the
versions of the reviews it offers to approve all at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

from ..store import CellKey, EditRow, RebuttalRow, ReviewRow, Store

__all__ = ["page_version", "review_version", "run_versions"]


def review_version(review: ReviewRow, edits: Iterable[EditRow], rebuttal: RebuttalRow | None) -> str:
    after = rebuttal.verdict_after if rebuttal is not None and rebuttal.valid else None
    material = [
        review.valid,
        review.verdict,
        review.verdict_note,
        review.data,
        review.raw_reply,
        after,
        sorted((e.field, e.value or "") for e in edits),
    ]
    text = json.dumps(material, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_versions(store: Store, run_id: str, tool_id: str | None = None) -> dict[CellKey, str]:
    """The version of every current review of a run (of one tool), read in three queries."""
    edits: dict[CellKey, list[EditRow]] = {}
    for edit in store.edits(run_id):
        edits.setdefault(edit.key, []).append(edit)
    rebuttals = {r.key: r for r in store.rebuttals(run_id, tool_id)}
    return {
        r.key: review_version(r, edits.get(r.key, ()), rebuttals.get(r.key))
        for r in store.reviews(run_id, tool_id)
    }


def page_version(versions: Mapping[CellKey, str], tool_id: str | None = None) -> str:
    """The version of the panel's valid-or-not first readings (repeat 0) a page shows."""
    shown = sorted(
        (list(k), v) for k, v in versions.items() if k.repeat == 0 and tool_id in (None, k.tool_id)
    )
    return hashlib.sha256(json.dumps(shown).encode()).hexdigest()[:16]
