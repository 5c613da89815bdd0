"""Publish a run's page: HTML, Markdown and JSON with the editor's edits and the record's
provenance (who wrote each review, what an editor changed, who approved it and when, who
published it). The three files are replaced as a set (`fileset.write_set`): a reader finds
the old three or the new three, even when the publish is killed halfway.

Publishing refuses, in one line, while any review of the panel is unapproved, failed or
missing, unless the caller allows it; then the files say so and the warnings come back.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from ..errors import UserError
from ..store import ApprovalRow, CellKey, ReviewRow, Store
from .files import check_writable
from .fileset import write_set
from .load import load_record
from .record import ComparisonRecord, Provenance, Regeneration, ReviewProvenance
from .render import FORMATS, render

__all__ = ["Published", "publish", "publish_record"]

#: names listed in one line before "and N more"
_SHOWN = 5


class Published(NamedTuple):
    """The files written, and what was published without sign-off (empty when all was)."""

    paths: list[Path]
    warnings: list[str]


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


def _cell(key: CellKey) -> str:
    return f"{key.tool_id}/{key.persona_id}/{key.member}"


def _some(what: str, keys: list[CellKey]) -> str:
    names = ", ".join(_cell(k) for k in keys[:_SHOWN])
    more = f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
    return f"{len(keys)} {what} ({names}{more})"


def publish_record(
    store: Store, run_id: str, *, now: float | None = None, editor: str | None = None
) -> tuple[ComparisonRecord, list[str]]:
    """The run's record with the editor's edits and its provenance (`editor` publishes it),
    and what stands in the way of publishing it: unapproved, failed and missing reviews of
    the panel (repeat 0)."""
    record = load_record(store, run_id)
    panel = [r for r in store.reviews(run_id) if r.repeat == 0]
    approvals = store.approvals(run_id)
    edited = {
        (t.id, e.persona_id, e.member): [m.field for m in e.edited_by_editor]
        for t in record.tools
        for e in t.scorecard
        if e.repeat == 0
    }
    failed = [r.key for r in panel if not r.valid]
    unapproved = [r.key for r in panel if r.valid and not _approved(approvals.get(r.key))]
    problems = []
    if unapproved:
        problems.append(_some("unapproved", unapproved))
    if failed:
        problems.append(_some("failed", failed))
    if record.run.missing:
        problems.append(f"{record.run.missing} missing (run {record.run.status})")
    provenance = Provenance(
        run_id=run_id,
        published_at=_iso(time.time() if now is None else now),
        published_by=editor,
        models=sorted({f"{r.backend}:{r.model}" for r in panel}),
        approved=sum(1 for r in panel if _approved(approvals.get(r.key))),
        reviews=[_review(store, run_id, r, approvals.get(r.key), edited) for r in panel],
        warnings=[f"published with {p}" for p in problems],
    )
    return record.model_copy(update={"provenance": provenance}), provenance.warnings


def _approved(approval: ApprovalRow | None) -> bool:
    return approval is not None and approval.approved


def _review(
    store: Store,
    run_id: str,
    r: ReviewRow,
    approval: ApprovalRow | None,
    edited: dict[tuple[str, str, str], list[str]],
) -> ReviewProvenance:
    ok = _approved(approval)
    history = store.review_history(run_id, r.key)
    return ReviewProvenance(
        tool_id=r.tool_id,
        persona_id=r.persona_id,
        member=r.member,
        repeat=r.repeat,
        model=f"{r.backend}:{r.model}",
        valid=r.valid,
        edited_fields=edited.get((r.tool_id, r.persona_id, r.member), []),
        regenerated=len(history),
        regenerations=[Regeneration(reason=h.reason, by=h.editor, at=_iso(h.archived_at)) for h in history],
        approved=ok,
        approved_by=approval.editor if approval and ok else None,
        approved_at=_iso(approval.created_at) if approval and ok else None,
    )


def publish(
    store: Store,
    run_id: str,
    folder: Path,
    *,
    allow_unapproved: bool = False,
    editor: str | None = None,
    how_made: bool = False,
) -> Published:
    """Write `comparison.html`, `.md` and `.json` of a run into `folder`, the three as one set,
    published by `editor` (their provenance names them). The pages are for readers: the
    editorial internals stay in the JSON, and in the pages' closing "How this page was made"
    section only with `how_made`.

    Refuses (UserError, one line naming what is unapproved, failed or missing) unless
    `allow_unapproved`; then the files are written, their provenance lists the same
    warnings, and so does the result.
    """
    record, warnings = publish_record(store, run_id, editor=editor)
    if warnings and not allow_unapproved:
        problems = "; ".join(w.removeprefix("published with ") for w in warnings)
        raise UserError(f"cannot publish run '{run_id}': {problems}; approve or regenerate them first")
    check_writable(folder, folder=True)
    paths = write_set(
        folder, {f"comparison.{fmt}": render(record, fmt, how_made=how_made) for fmt in FORMATS}
    )
    return Published(paths, warnings)
