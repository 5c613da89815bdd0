"""Head-to-head answers: one row per ask (a persona on a member read `first_tool` then
`second_tool`), the tool it picked and why, or why it failed. The two orders of a pair are two
rows; `panel.report.head_to_head` combines them. The asks' requests and replies are in
`requests` and `replies` with round 3 (see the migration `_m010_head_to_head`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, fields

from .connection import Connection

__all__ = ["HEAD_TO_HEAD_ROUND", "HeadToHeadRow", "HeadToHeads"]

#: the `requests.round` of a head-to-head ask
HEAD_TO_HEAD_ROUND = 3

_ASK = "run_id = ? AND persona_id = ? AND member = ?"


@dataclass(frozen=True)
class HeadToHeadRow:
    """One stored head-to-head ask."""

    persona_id: str
    member: str
    first_tool: str
    second_tool: str
    backend: str
    model: str
    valid: bool
    #: the tool it named (None when the answer failed)
    picked: str | None
    reason: str | None
    error: str | None
    raw_reply: str | None
    request_id: int | None
    asks: int
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class HeadToHeads(Connection):
    def save_head_to_head(
        self,
        run_id: str,
        persona_id: str,
        member: str,
        shown: tuple[str, str],
        backend: str,
        model: str,
        *,
        picked: str | None,
        reason: str | None,
        error: str | None,
        raw_reply: str | None,
        request_id: int | None,
        asks: int,
    ) -> None:
        """Store one ask's answer (`picked`, `reason`) or why it failed (`picked` None), with
        the tokens and cost of its requests (round 3, `shown` as tool_id then rival)."""
        self._hold()
        first, second = shown
        self.db.execute(
            f"""INSERT INTO head_to_head (run_id, persona_id, member, first_tool, second_tool,
                   backend, model, valid, picked, reason, error, raw_reply, request_id, asks,
                   created_at, input_tokens, output_tokens, cost_usd)
               SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                   COALESCE(SUM(rp.input_tokens), 0), COALESCE(SUM(rp.output_tokens), 0),
                   COALESCE(SUM(rp.cost_usd), 0)
               FROM (SELECT id FROM requests WHERE {_ASK} AND tool_id = ? AND rival = ?
                     AND round = {HEAD_TO_HEAD_ROUND}) rq
               LEFT JOIN replies rp ON rp.request_id = rq.id""",
            (
                run_id,
                persona_id,
                member,
                first,
                second,
                backend,
                model,
                int(picked is not None),
                picked,
                reason,
                error,
                raw_reply,
                request_id,
                asks,
                time.time(),
                run_id,
                persona_id,
                member,
                first,
                second,
            ),
        )

    def has_head_to_head(self, run_id: str, persona_id: str, member: str, shown: tuple[str, str]) -> bool:
        """Whether this order of a pair has its answer stored (a resume skips it)."""
        row = self.db.execute(
            f"SELECT 1 FROM head_to_head WHERE {_ASK} AND first_tool = ? AND second_tool = ?",
            (run_id, persona_id, member, *shown),
        ).fetchone()
        return row is not None

    def head_to_heads(self, run_id: str) -> list[HeadToHeadRow]:
        """A run's head-to-head answers in the order stored, failed ones included; none for a
        store made before there were any."""
        if not self.has_table("head_to_head"):
            return []
        rows = self.db.execute("SELECT * FROM head_to_head WHERE run_id = ? ORDER BY id", (run_id,))
        return [HeadToHeadRow(**{name: r[name] for name in _FIELDS}, valid=bool(r["valid"])) for r in rows]


#: the row's columns read as they are stored (`valid` is stored as 1 or 0)
_FIELDS = tuple(f.name for f in fields(HeadToHeadRow) if f.name != "valid")
