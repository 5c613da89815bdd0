"""Requests and replies: each request is stored before it is sent, its reply (or error) in
the transaction that marks it done; spend and lost requests are counted from them."""

from __future__ import annotations

import json
import time
from typing import Any

from ..backends.base import Reply, Usage
from .connection import Connection
from .rows import CellKey

__all__ = ["USAGE_UNKNOWN", "Requests"]

#: the key of a reply's stored meta that says why its usage could not be believed
USAGE_UNKNOWN = "usage_unknown"


def _meta(reply: Reply | None) -> dict[str, Any]:
    """What a reply's meta column holds: the provider's facts, and why its usage is unknown
    when it is (its token columns then hold 0)."""
    if reply is None:
        return {}
    if reply.usage.unknown is None:
        return reply.meta
    return {**reply.meta, USAGE_UNKNOWN: reply.usage.unknown}


class Requests(Connection):
    def begin_request(
        self,
        run_id: str,
        key: CellKey,
        backend: str,
        model: str,
        ask: int,
        messages: list[dict[str, str]],
        schema_name: str,
        settings: dict[str, Any],
        cache_key: str | None = None,
        reserved_usd: float = 0.0,
        round_: int = 1,
        rival: str | None = None,
    ) -> int:
        """Record a request before it is sent, with its worst-case cost; returns its id.

        `rival`: a head-to-head ask's second-shown tool (`key.tool_id` is the first-shown).

        While commits are grouped, `await durable()` before sending it."""
        self._hold()
        cur = self.db.execute(
            """INSERT INTO requests (run_id, tool_id, persona_id, member, repeat, backend, model,
                   ask, messages, schema_name, settings, cache_key, created_at, reserved_usd, round, rival)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                run_id,
                key.tool_id,
                key.persona_id,
                key.member,
                key.repeat,
                backend,
                model,
                ask,
                json.dumps(messages),
                schema_name,
                json.dumps(settings),
                cache_key,
                time.time(),
                reserved_usd,
                round_,
                rival,
            ),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def finish_request(
        self,
        request_id: int,
        reply: Reply | None,
        attempts: int,
        error: str | None = None,
        cost_usd: float = 0.0,
        cached_from: int | None = None,
    ) -> None:
        """Store the reply (or the error) and mark the request done, in one transaction."""
        with self.transaction() as db:
            db.execute(
                """INSERT INTO replies (request_id, raw_text, finish_reason, input_tokens,
                       output_tokens, cached_tokens, latency_s, attempts, provider_request_id,
                       error, meta, cost_usd, cached_from, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    request_id,
                    reply.text if reply else None,
                    reply.finish_reason if reply else None,
                    reply.usage.input_tokens if reply else 0,
                    reply.usage.output_tokens if reply else 0,
                    reply.usage.cached_tokens if reply else 0,
                    reply.latency_s if reply else 0.0,
                    attempts,
                    reply.request_id if reply else None,
                    error,
                    json.dumps(_meta(reply)),
                    cost_usd,
                    cached_from,
                    time.time(),
                ),
            )
            db.execute(
                "UPDATE requests SET status = ? WHERE id = ?",
                ("error" if error else "done", request_id),
            )

    def stored_reply(self, cache_key: str, run_id: str | None = None) -> tuple[int, Reply] | None:
        """The newest stored reply to a request with this cache key (in one run, or any)."""
        # The unary plus keeps SQLite on the cache-key index: left to choose, it reads a run's
        # (run_id, status) index, which holds every answered request of the run, and the
        # lookup made once per request turns a catalog run quadratic.
        where = "rq.cache_key = ? AND +rq.status = 'done'"
        args: tuple[Any, ...] = (cache_key,)
        if run_id is not None:
            where += " AND +rq.run_id = ?"
            args += (run_id,)
        row = self.db.execute(
            f"""SELECT rq.id, rq.run_id, rp.* FROM requests rq JOIN replies rp ON rp.request_id = rq.id
                WHERE {where} ORDER BY rq.id DESC LIMIT 1""",
            args,
        ).fetchone()
        if row is None:
            return None
        meta = json.loads(row["meta"])
        reply = Reply(
            text=row["raw_text"] or "",
            usage=Usage(
                row["input_tokens"], row["output_tokens"], row["cached_tokens"], meta.get(USAGE_UNKNOWN)
            ),
            latency_s=row["latency_s"],
            finish_reason=row["finish_reason"],
            request_id=row["provider_request_id"],
            meta=meta,
        )
        return row["id"], reply

    def mark_lost(self, run_id: str) -> int:
        """Mark a run's unanswered requests lost; returns how many.

        Called when a process starts on a run. It holds the store's lock, so a request still
        pending was recorded by a process that died (kill -9, power cut) or was interrupted
        while the request was out: its reply is lost, but the provider may have charged it.
        A request in a batch not yet collected is not lost: the provider holds it, and its
        result is collected on resume (see `Batches`).
        """
        cur = self.db.execute(
            """UPDATE requests SET status = 'lost' WHERE run_id = ? AND status = 'pending'
                 AND id NOT IN (SELECT br.request_id FROM batch_requests br
                                JOIN batches b ON b.batch_key = br.batch_key
                                WHERE br.run_id = ? AND b.state != 'collected')""",
            (run_id, run_id),
        )
        return cur.rowcount

    def spent(self, run_id: str) -> float:
        """What a run has cost: its replies, plus each lost request at its worst case.

        A lost request may have been answered and billed, or may never have left the
        process (it could have been waiting for the rate limiter); the store cannot tell.
        Charging its worst case keeps `--max-cost` a ceiling across crashes and resumes.
        A request out in a batch counts once its result is stored; until then its worst
        case is a reservation (`in_flight_reserved`), not spend.
        """
        row = self.db.execute(
            """SELECT COALESCE((SELECT SUM(rp.cost_usd) FROM replies rp
                                 JOIN requests rq ON rq.id = rp.request_id WHERE rq.run_id = ?), 0)
                    + COALESCE((SELECT SUM(reserved_usd) FROM requests
                                 WHERE run_id = ? AND status = 'lost'), 0)""",
            (run_id, run_id),
        ).fetchone()
        return float(row[0])

    def request_cell(self, request_id: int) -> CellKey:
        """The cell a stored request asked for."""
        row = self.db.execute(
            "SELECT tool_id, persona_id, member, repeat FROM requests WHERE id = ?", (request_id,)
        ).fetchone()
        return CellKey(row[0], row[1], row[2], row[3])

    def request_messages(self, request_id: int) -> tuple[list[dict[str, str]], int]:
        """A stored request's messages, as sent, and which ask of its cell it was."""
        row = self.db.execute("SELECT messages, ask FROM requests WHERE id = ?", (request_id,)).fetchone()
        return json.loads(row[0]), int(row[1])

    def has_requests(self, run_id: str) -> bool:
        row = self.db.execute("SELECT 1 FROM requests WHERE run_id = ? LIMIT 1", (run_id,)).fetchone()
        return row is not None

    def lost_requests(self, run_id: str) -> int:
        row = self.db.execute(
            "SELECT COUNT(*) FROM requests WHERE run_id = ? AND status = 'lost'", (run_id,)
        ).fetchone()
        return int(row[0])
