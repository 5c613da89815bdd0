"""What an editor does to a run's reviews: edits, approvals, and reviews set aside to be
regenerated. None of it writes over what a model wrote.

- An edit is an editor's value for one field of a review (`EDIT_FIELDS`, or `answers.<key>`),
  stored beside the review; the latest edit of a field wins, and an edit to None goes back
  to the model's text.
- Approving a review and editing its verdict also write an editor's label (`labels.py`), in
  the same transaction.
- An approval is a yes or no on a review; the latest wins. It is of the text an editor saw:
  an edit to an approved review takes the approval back (a "no" row whose reason is
  'edited'), in the same transaction as the edit.
- `archive_review` copies a review whole into `review_history` (with its tokens and cost,
  when, why and by whom) and frees its cell for a new review. Its edits and approvals go
  with it, so the new review starts unedited and unapproved; when the review set aside was
  approved, its cell gets a "no" row whose reason is 'regenerated', so the page can say the
  approval was taken back. Every other reader (records, agreement,
  resume) reads the `reviews` table, which holds only the current review of each cell.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from ..errors import UserError, shown
from .labels import Labels
from .rows import CellKey, ReviewRow, review_row

__all__ = ["EDIT_FIELDS", "ApprovalRow", "EditRow", "Edits", "HistoryRow"]

#: the fields of a review an editor may change, besides `answers.<question key>`
EDIT_FIELDS = ("verdict", "verdict_note", "review")
_ANSWER = "answers."
_CELL = "run_id = ? AND tool_id = ? AND persona_id = ? AND member = ? AND repeat = ?"


@dataclass(frozen=True)
class EditRow:
    """An editor's value for one field of a review."""

    key: CellKey
    field: str
    value: str
    editor: str | None
    created_at: float


@dataclass(frozen=True)
class ApprovalRow:
    key: CellKey
    approved: bool
    editor: str | None
    created_at: float
    #: why a change took the approval back ('edited', 'regenerated'); None for an editor's own
    reason: str | None = None


@dataclass(frozen=True)
class HistoryRow:
    """A review set aside: as the model wrote it, with the edits and approval it had then."""

    id: int
    review: ReviewRow
    #: when the model's review was stored, and when it was set aside
    created_at: float
    archived_at: float
    reason: str
    edits: list[EditRow]
    approval: ApprovalRow | None
    #: the editor who set it aside, when one gave a name
    editor: str | None = None


def _cell(key: CellKey) -> str:
    repeat = f" (repeat {key.repeat})" if key.repeat else ""
    return f"{key.tool_id} by {key.persona_id} on {key.member}{repeat}"


class Edits(Labels):
    def edit_review(
        self, run_id: str, key: CellKey, field: str, value: str | None, editor: str | None = None
    ) -> None:
        """Store an editor's value for one field of a review (None: back to the model's text);
        an approval in force is taken back, since it approved other words.

        Raises UserError, one line, for a review that is missing or failed, an unknown field
        or question, a verdict the persona does not give, or empty text.
        """
        review = self._current(run_id, key)
        if value is not None:
            value = value.strip()
            if not value:
                raise UserError(f"{field} of {_cell(key)}: give some text, or None for the model's own")
        persona = self._persona(run_id, key.persona_id)
        if field == "verdict":
            verdicts = persona.get("verdicts") or ["ship", "skip"]
            if value is not None and value not in verdicts:
                raise UserError(f"verdict {shown(value)} of {_cell(key)}: use one of {', '.join(verdicts)}")
        elif field.startswith(_ANSWER):
            keys = [str(q["key"]) for q in persona.get("questions", [])]
            if field[len(_ANSWER) :] not in keys:
                raise UserError(
                    f"{shown(field)} of {_cell(key)}: the persona asks "
                    + ", ".join(_ANSWER + k for k in keys)
                )
        elif field not in EDIT_FIELDS:
            raise UserError(
                f"cannot edit {shown(field)} of a review: "
                f"edit one of {', '.join(EDIT_FIELDS)} or answers.<key>"
            )
        if not review.valid:
            raise UserError(f"the review of {_cell(key)} failed: regenerate it rather than edit it")
        approval = self.approvals(run_id).get(key)
        with self.transaction() as db:
            db.execute(
                """INSERT INTO review_edits (run_id, tool_id, persona_id, member, repeat, field,
                       value, editor, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (run_id, *key, field, value, editor, time.time()),
            )
            if field == "verdict":  # the verdict the editor now stands behind: a label
                self._label_review(run_id, key, editor, "edit")
            if approval is not None and approval.approved:
                self._withdraw(run_id, key, editor, "edited")

    @property
    def _editor_tables(self) -> bool:
        """Whether the store has the editor's tables (a store read before its migration has not)."""
        return self.has_table("review_edits")

    def edits(self, run_id: str) -> list[EditRow]:
        """The editor's values in force on a run's current reviews: the latest of each field,
        leaving out fields sent back to the model's text. Ordered by cell, then field."""
        if not self._editor_tables:
            return []
        rows = self.db.execute(
            """SELECT e.* FROM review_edits e
               WHERE e.run_id = ? AND e.history_id IS NULL AND e.id = (
                   SELECT MAX(l.id) FROM review_edits l WHERE l.run_id = e.run_id
                     AND l.tool_id = e.tool_id AND l.persona_id = e.persona_id
                     AND l.member = e.member AND l.repeat = e.repeat AND l.field = e.field
                     AND l.history_id IS NULL)
               ORDER BY e.tool_id, e.persona_id, e.member, e.repeat, e.field""",
            (run_id,),
        )
        return [_edit(r) for r in rows if r["value"] is not None]

    def approve(
        self,
        run_id: str,
        key: CellKey,
        approved: bool = True,
        editor: str | None = None,
        *,
        bulk: bool = False,
    ) -> None:
        """Approve a review (or take the approval back); the latest call wins.

        An approval is also a label (`labels.py`): the editor stands behind the review's
        verdict in force, written in the same transaction. One of many approved at once
        (`bulk`: the app's "Approve all") is written as an "approve_all" label, which is
        history, not a judgement of that review. Taking an approval in force back writes a
        "withdraw" label, which takes that review's approval label back.
        """
        self._current(run_id, key)
        before = None if approved else self.approvals(run_id).get(key)
        with self.transaction() as db:
            db.execute(
                """INSERT INTO review_approvals (run_id, tool_id, persona_id, member, repeat,
                       approved, editor, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                (run_id, *key, int(approved), editor, time.time()),
            )
            if approved:
                self._label_review(run_id, key, editor, "approve_all" if bulk else "approve")
            elif before is not None and before.approved:
                self._label_review(run_id, key, editor, "withdraw")

    def _withdraw(self, run_id: str, key: CellKey, editor: str | None, reason: str) -> None:
        """A "no" row for a cell whose approval a change took back (inside a transaction)."""
        self.db.execute(
            """INSERT INTO review_approvals (run_id, tool_id, persona_id, member, repeat,
                   approved, editor, created_at, reason) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)""",
            (run_id, *key, editor, time.time(), reason),
        )

    def approvals(self, run_id: str) -> dict[CellKey, ApprovalRow]:
        """The latest approval (yes or no) of each current review that has one."""
        if not self._editor_tables:
            return {}
        rows = self.db.execute(
            """SELECT * FROM review_approvals WHERE run_id = ? AND history_id IS NULL ORDER BY id""",
            (run_id,),
        )
        found = {}
        for r in rows:
            row = _approval(r)
            found[row.key] = row
        return found

    def archive_review(self, run_id: str, key: CellKey, reason: str, editor: str | None = None) -> int:
        """Set a review aside before it is regenerated (by `editor`); returns its history id.

        The review is copied whole into the history (with its tokens and cost), its edits and
        approvals go with it, and its cell is left empty for the new review (so a resume, too,
        reviews it again). An approval it had is taken back in the cell, saying so.
        """
        if not reason.strip():
            raise UserError(f"say why the review of {_cell(key)} is set aside")
        review = self._current(run_id, key)
        approval = self.approvals(run_id).get(key)
        with self.transaction() as db:
            last = db.execute(f"SELECT COALESCE(MAX(id), 0) FROM requests WHERE {_CELL}", (run_id, *key))
            cur = db.execute(
                f"""INSERT INTO review_history (run_id, tool_id, persona_id, member, repeat,
                       review_id, backend, model, valid, verdict, verdict_note, data, error,
                       raw_reply, request_id, asks, fingerprint, copied_from, enforced, created_at,
                       input_tokens, output_tokens, latency_s, cost_usd, last_request,
                       archived_at, reason, editor)
                   SELECT run_id, tool_id, persona_id, member, repeat, id, backend, model, valid,
                       verdict, verdict_note, data, error, raw_reply, request_id, asks,
                       fingerprint, copied_from, enforced, created_at, ?, ?, ?, ?, ?, ?, ?, ?
                   FROM reviews WHERE {_CELL}""",
                (
                    review.input_tokens,
                    review.output_tokens,
                    review.latency_s,
                    review.cost_usd,
                    int(last.fetchone()[0]),
                    time.time(),
                    reason.strip(),
                    editor,
                    run_id,
                    *key,
                ),
            )
            history_id = cur.lastrowid
            assert history_id is not None
            for table in ("review_edits", "review_approvals"):
                db.execute(
                    f"UPDATE {table} SET history_id = ? WHERE {_CELL} AND history_id IS NULL",
                    (history_id, run_id, *key),
                )
            if approval is not None and approval.approved:
                self._withdraw(run_id, key, editor, "regenerated")
            db.execute(f"DELETE FROM reviews WHERE {_CELL}", (run_id, *key))
            # Its rebuttal answered the review set aside: a resumed rebuttal run answers anew.
            db.execute(f"DELETE FROM rebuttals WHERE {_CELL}", (run_id, *key))
        return history_id

    def generations(self, run_id: str) -> dict[CellKey, int]:
        """How many reviews of each cell of a run were set aside (cells with none left out):
        a cell's next review is made with a seed moved on by as many steps."""
        if not self._editor_tables:
            return {}
        rows = self.db.execute(
            """SELECT tool_id, persona_id, member, repeat, COUNT(*) AS n FROM review_history
               WHERE run_id = ? GROUP BY tool_id, persona_id, member, repeat""",
            (run_id,),
        )
        return {_key(r): int(r["n"]) for r in rows}

    def review_history(self, run_id: str, key: CellKey) -> list[HistoryRow]:
        """The reviews of a cell set aside so far, oldest first (the current one is not here)."""
        if not self._editor_tables:
            return []
        rows = self.db.execute(f"SELECT * FROM review_history WHERE {_CELL} ORDER BY id", (run_id, *key))
        out = []
        for r in rows.fetchall():
            edits = self.db.execute(
                "SELECT * FROM review_edits WHERE history_id = ? ORDER BY id", (r["id"],)
            ).fetchall()
            latest: dict[str, Any] = {}
            for e in edits:
                latest[e["field"]] = e
            approvals = self.db.execute(
                "SELECT * FROM review_approvals WHERE history_id = ? ORDER BY id DESC LIMIT 1", (r["id"],)
            ).fetchone()
            out.append(
                HistoryRow(
                    id=r["id"],
                    review=review_row(r),
                    created_at=r["created_at"],
                    archived_at=r["archived_at"],
                    reason=r["reason"],
                    edits=[_edit(e) for e in latest.values() if e["value"] is not None],
                    approval=None if approvals is None else _approval(approvals),
                    editor=_column(r, "editor"),
                )
            )
        return out

    def _current(self, run_id: str, key: CellKey) -> ReviewRow:
        review = self.review(run_id, key)
        if review is None:
            raise UserError(f"no review of {_cell(key)} in run '{run_id}'")
        return review

    def _persona(self, run_id: str, persona_id: str) -> dict[str, Any]:
        row = self.db.execute(
            "SELECT data FROM run_personas WHERE run_id = ? AND persona_id = ?", (run_id, persona_id)
        ).fetchone()
        return {} if row is None else dict(json.loads(row[0]))


def _key(r: Any) -> CellKey:
    return CellKey(r["tool_id"], r["persona_id"], r["member"], r["repeat"])


def _edit(r: Any) -> EditRow:
    return EditRow(_key(r), r["field"], r["value"], r["editor"], r["created_at"])


def _approval(r: Any) -> ApprovalRow:
    return ApprovalRow(_key(r), bool(r["approved"]), r["editor"], r["created_at"], _column(r, "reason"))


def _column(r: Any, name: str) -> Any:
    """A column a store read before its migration may not have yet (None then)."""
    return r[name] if name in r.keys() else None  # noqa: SIM118 (`in` on a sqlite3.Row reads values)  # noqa: SIM118 (a sqlite3.Row has no `in` by name)
