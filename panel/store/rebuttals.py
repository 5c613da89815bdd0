"""The rebuttal round: each cell's round-2 answer (keep or change, why, the verdict after),
stored beside its round-1 review, which stays in `reviews` as the model wrote it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .connection import Connection
from .rows import CellKey

__all__ = ["RebuttalRow", "Rebuttals"]


@dataclass(frozen=True)
class RebuttalRow:
    """One cell's answer in the rebuttal round."""

    tool_id: str
    persona_id: str
    member: str
    repeat: int
    backend: str
    model: str
    valid: bool
    #: "keep" or "change"; None when the answer failed
    decision: str | None
    why: str | None
    #: the round-1 verdict it read again, and the verdict it gave (None when it failed)
    verdict_before: str | None
    verdict_after: str | None
    #: how many other reviews of the tool it read
    others: int
    error: str | None
    raw_reply: str | None
    request_id: int | None
    asks: int
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def key(self) -> CellKey:
        return CellKey(self.tool_id, self.persona_id, self.member, self.repeat)

    @property
    def changed(self) -> bool:
        """A valid answer whose verdict is not the round-1 one."""
        return self.valid and self.verdict_after != self.verdict_before


_CELL = "run_id = ? AND tool_id = ? AND persona_id = ? AND member = ? AND repeat = ?"


class Rebuttals(Connection):
    def save_rebuttal(
        self,
        run_id: str,
        key: CellKey,
        backend: str,
        model: str,
        *,
        verdict_before: str | None,
        others: int,
        data: dict[str, Any] | None,
        error: str | None,
        raw_reply: str | None,
        request_id: int | None,
        asks: int,
    ) -> None:
        """Store a cell's round-2 answer (`data`: decision, why, verdict) or why it failed,
        with the tokens and cost of the cell's round-2 requests, whose replies are stored."""
        self._hold()
        self.db.execute(
            f"""INSERT INTO rebuttals (run_id, tool_id, persona_id, member, repeat, backend, model,
                   valid, decision, why, verdict_before, verdict_after, others, error, raw_reply,
                   request_id, asks, created_at, input_tokens, output_tokens, cost_usd)
               SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                   COALESCE(SUM(rp.input_tokens), 0), COALESCE(SUM(rp.output_tokens), 0),
                   COALESCE(SUM(rp.cost_usd), 0)
               FROM (SELECT id FROM requests WHERE {_CELL} AND round = 2) rq
               LEFT JOIN replies rp ON rp.request_id = rq.id""",
            (
                run_id,
                *key,
                backend,
                model,
                int(data is not None),
                data.get("decision") if data else None,
                data.get("why") if data else None,
                verdict_before,
                data.get("verdict") if data else None,
                others,
                error,
                raw_reply,
                request_id,
                asks,
                time.time(),
                run_id,
                *key,
            ),
        )

    def has_rebuttal(self, run_id: str, key: CellKey) -> bool:
        row = self.db.execute(f"SELECT 1 FROM rebuttals WHERE {_CELL}", (run_id, *key)).fetchone()
        return row is not None

    def rebuttal_counts(self, run_id: str) -> tuple[int, int]:
        """How many of a run's round-2 answers are valid, and how many failed."""
        row = self.db.execute(
            "SELECT COALESCE(SUM(valid), 0), COUNT(*) - COALESCE(SUM(valid), 0) FROM rebuttals "
            "WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        return int(row[0]), int(row[1])

    def rebuttals(self, run_id: str, tool_id: str | None = None) -> list[RebuttalRow]:
        """A run's round-2 answers (or one tool's); none for a run without a rebuttal round
        (or a store made before there was one)."""
        if not self.has_table("rebuttals"):
            return []
        return list(self._rebuttals(run_id, tool_id))

    def _rebuttals(self, run_id: str, tool_id: str | None) -> Iterator[RebuttalRow]:
        args: tuple[str, ...]
        if tool_id is None:
            where, args = "run_id = ?", (run_id,)
        else:
            where, args = "run_id = ? AND tool_id = ?", (run_id, tool_id)
        for r in self.db.execute(f"SELECT * FROM rebuttals WHERE {where} ORDER BY id", args):
            yield RebuttalRow(
                tool_id=r["tool_id"],
                persona_id=r["persona_id"],
                member=r["member"],
                repeat=r["repeat"],
                backend=r["backend"],
                model=r["model"],
                valid=bool(r["valid"]),
                decision=r["decision"],
                why=r["why"],
                verdict_before=r["verdict_before"],
                verdict_after=r["verdict_after"],
                others=r["others"],
                error=r["error"],
                raw_reply=r["raw_reply"],
                request_id=r["request_id"],
                asks=r["asks"],
                input_tokens=r["input_tokens"],
                output_tokens=r["output_tokens"],
                cost_usd=r["cost_usd"],
            )
