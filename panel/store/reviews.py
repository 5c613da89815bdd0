"""Reviews: one per cell of a run, valid or failed, with the tokens, cost and latency of its asks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from functools import cached_property
from typing import Any

from .connection import Connection
from .rows import CellKey, MemberForm, ReviewRow, review_row

__all__ = ["Reviews"]


class Reviews(Connection):
    def save_review(
        self,
        run_id: str,
        key: CellKey,
        backend: str,
        model: str,
        *,
        data: dict[str, Any] | None,
        error: str | None,
        raw_reply: str | None,
        request_id: int | None,
        asks: int,
        fingerprint: str | None = None,
        copied_from: str | None = None,
        enforced: str | None = None,
    ) -> None:
        self._hold()
        self.db.execute(
            """INSERT INTO reviews (run_id, tool_id, persona_id, member, repeat, backend, model,
                   valid, verdict, verdict_note, data, error, raw_reply, request_id, asks,
                   fingerprint, copied_from, created_at, enforced, requests_after)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                   -- a regenerated review counts only the requests after the one set aside
                   COALESCE((SELECT MAX(last_request) FROM review_history h WHERE h.run_id = ?
                       AND h.tool_id = ? AND h.persona_id = ? AND h.member = ? AND h.repeat = ?), 0))""",
            (
                run_id,
                key.tool_id,
                key.persona_id,
                key.member,
                key.repeat,
                backend,
                model,
                int(data is not None),
                data.get("verdict") if data else None,
                data.get("verdict_note") if data else None,
                json.dumps(data) if data is not None else None,
                error,
                raw_reply,
                request_id,
                asks,
                fingerprint,
                copied_from,
                time.time(),
                enforced,
                run_id,
                *key,
            ),
        )

    def member_form(self, form_key: str) -> MemberForm | None:
        """The structured-output form found earlier for a backend, with its string cap, if any."""
        row = self.db.execute(
            "SELECT form, max_length FROM member_forms WHERE form_key = ?", (form_key,)
        ).fetchone()
        return None if row is None else MemberForm(str(row[0]), None if row[1] is None else int(row[1]))

    def save_member_form(self, form_key: str, form: str, max_length: int | None = None) -> None:
        self._hold()
        self.db.execute(
            """INSERT INTO member_forms (form_key, form, max_length, updated_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (form_key) DO UPDATE SET form = excluded.form,
                   max_length = excluded.max_length, updated_at = excluded.updated_at""",
            (form_key, form, max_length, time.time()),
        )

    def review_counts(self, run_id: str) -> tuple[int, int]:
        """How many of a run's reviews are valid, and how many failed."""
        row = self.db.execute(
            "SELECT COALESCE(SUM(valid), 0), COUNT(*) - COALESCE(SUM(valid), 0) FROM reviews "
            "WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        return int(row[0]), int(row[1])

    def cell_verdicts(self, run_id: str) -> dict[CellKey, str | None]:
        """Every cell of a run with its verdict (None where the review failed)."""
        rows = self.db.execute(
            "SELECT tool_id, persona_id, member, repeat, verdict FROM reviews WHERE run_id = ?",
            (run_id,),
        )
        return {CellKey(r[0], r[1], r[2], r[3]): r[4] for r in rows}

    def has_review(self, run_id: str, key: CellKey) -> bool:
        row = self.db.execute(
            """SELECT 1 FROM reviews WHERE run_id = ? AND tool_id = ? AND persona_id = ?
                   AND member = ? AND repeat = ?""",
            (run_id, *key),
        ).fetchone()
        return row is not None

    def review(self, run_id: str, key: CellKey) -> ReviewRow | None:
        rows = self._reviews(
            "rv.run_id = ? AND rv.tool_id = ? AND rv.persona_id = ? AND rv.member = ? AND rv.repeat = ?",
            (run_id, *key),
        )
        return next(iter(rows), None)

    def reviews(self, run_id: str, tool_id: str | None = None) -> list[ReviewRow]:
        """A run's reviews (or one tool's), with the tokens, cost and latency of every ask."""
        if tool_id is None:
            return list(self._reviews("rv.run_id = ?", (run_id,)))
        return list(self._reviews("rv.run_id = ? AND rv.tool_id = ?", (run_id, tool_id)))

    def iter_reviews(self, run_id: str) -> Iterator[ReviewRow]:
        """A run's reviews one at a time, for runs too large to hold at once."""
        return self._reviews("rv.run_id = ?", (run_id,))

    @cached_property
    def _own_requests(self) -> str:
        # A review counts only its own requests, not those of a review set aside before it
        # (see Edits.archive_review); a store read before its migration has no such column.
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(reviews)")}
        own = " AND rq.id > rv.requests_after" if "requests_after" in columns else ""
        # ... nor those of its cell's rebuttal round (see Rebuttals).
        asked = {r[1] for r in self.db.execute("PRAGMA table_info(requests)")}
        return own + (" AND rq.round = 1" if "round" in asked else "")

    def _reviews(self, where: str, args: tuple[Any, ...]) -> Iterator[ReviewRow]:
        cursor = self.db.execute(
            f"""SELECT rv.*,
                   COALESCE(SUM(rp.input_tokens), 0) AS input_tokens,
                   COALESCE(SUM(rp.output_tokens), 0) AS output_tokens,
                   COALESCE(SUM(rp.latency_s), 0) AS latency_s,
                   COALESCE(SUM(rp.cost_usd), 0) AS cost_usd
               FROM reviews rv
               LEFT JOIN requests rq ON rq.run_id = rv.run_id AND rq.tool_id = rv.tool_id
                    AND rq.persona_id = rv.persona_id AND rq.member = rv.member
                    AND rq.repeat = rv.repeat{self._own_requests}
               LEFT JOIN replies rp ON rp.request_id = rq.id
               WHERE {where} GROUP BY rv.id ORDER BY rv.id""",
            args,
        )
        for r in cursor:
            yield review_row(r)
