"""The batch ledger: each provider batch of a run and the requests it carries.

The batch route writes, in this order:

1. each cell's request with `begin_request` (as the live route does, with its worst-case
   cost at batch prices), then `new_batch` with the requests and their custom_ids: the
   batch is in state 'submitting'. Both in one `with store.transaction():` so no request
   is left outside its batch; while commits are grouped, `await store.durable()` (or
   `store.commit()`) before the submit call, as before sending a live request.
2. `batch_submitted` once the provider has answered with its batch id.
3. `batch_progress` at each poll, with the provider's state normalised (`normal_state`).
4. each result with `finish_request` (a reply, or an error with the provider's reason),
   matched by custom_id only (`batch_custom_ids`), then `batch_collected`.

A batch stays unfinished until it is collected, whatever the provider says: an ended,
expired, cancelled or failed batch may still have results to download. Its unanswered
requests stay 'pending' across a crash (`mark_lost` leaves them alone), and a resumed run
re-attaches to it; one still 'submitting' may or may not have reached the provider, so it
is looked for in the provider's batch list by its batch key before it is sent again, under
the same key and with the same requests.

A request is in at most one batch: a follow-up batch (of errored, expired or invalid
requests) carries new request rows, the old ones finished with their error.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterable
from typing import Any

from .connection import Connection
from .rows import BatchRow

__all__ = ["BATCH_STATES", "Batches", "custom_id_for", "normal_state"]

#: The states a batch has at the provider, by our names.
BATCH_STATES = (
    "validating",
    "in_progress",
    "finalizing",
    "ended",
    "failed",
    "expired",
    "cancelling",
    "cancelled",
)

#: Each provider's state names (OpenAI, Anthropic, Mistral), lower-cased, to ours.
_PROVIDER_STATES = {
    **{state: state for state in BATCH_STATES},
    "completed": "ended",  # OpenAI
    "canceling": "cancelling",  # Anthropic
    "queued": "validating",  # Mistral: accepted, not yet running
    "running": "in_progress",
    "success": "ended",
    "timeout_exceeded": "expired",
    "cancellation_requested": "cancelling",
}

#: What every provider accepts as a custom_id (Anthropic's rule is the narrowest).
_CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def normal_state(provider_state: str) -> str:
    """A provider's batch state in our names: 'completed' (OpenAI) and 'SUCCESS' (Mistral)
    are 'ended', 'TIMEOUT_EXCEEDED' is 'expired', 'QUEUED' is 'validating'..."""
    try:
        return _PROVIDER_STATES[provider_state.lower()]
    except KeyError:
        raise ValueError(f"unknown batch state {provider_state!r}") from None


def custom_id_for(request_id: int, run_id: str | None = None) -> str:
    """The custom_id a request travels under, valid at every provider (a cell key may hold
    characters Anthropic refuses, and is asked more than once). With the run id it is unique
    beyond this store too: two stores on one account never send the same custom_id, so a
    batch is known by its custom_ids where the provider keeps no metadata."""
    return f"{run_id}-{request_id}" if run_id else f"req-{request_id}"


def _slug(member: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", member).strip("-")[:40] or "member"


class Batches(Connection):
    def new_batch(
        self,
        run_id: str,
        member: str,
        backend: str,
        attempt: int,
        reserved_usd: float,
        request_ids_and_custom_ids: Iterable[tuple[int, str]],
    ) -> str:
        """Record a batch about to be submitted, in state 'submitting', with its requests
        (already stored by `begin_request`), in one transaction; returns its batch key,
        `b-<run_id>-<member slug>-<n>`, to put in the provider's metadata."""
        pairs = list(request_ids_and_custom_ids)
        if not pairs:
            raise ValueError("a batch needs at least one request")
        for _, custom_id in pairs:
            if not _CUSTOM_ID.fullmatch(custom_id):
                raise ValueError(f"custom_id {custom_id!r}: 1 to 64 letters, digits, '_' or '-'")
        now = time.time()
        with self.transaction() as db:
            n = db.execute("SELECT COUNT(*) FROM batches WHERE run_id = ?", (run_id,)).fetchone()[0]
            key = f"b-{run_id}-{_slug(member)}-{n + 1}"
            db.execute(
                """INSERT INTO batches (batch_key, run_id, member, backend, state, attempt,
                       reserved_usd, created_at, updated_at)
                   VALUES (?, ?, ?, ?, 'submitting', ?, ?, ?, ?)""",
                (key, run_id, member, backend, attempt, reserved_usd, now, now),
            )
            try:
                db.executemany(
                    "INSERT INTO batch_requests (batch_key, custom_id, request_id, run_id, member)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [(key, custom_id, rid, run_id, member) for rid, custom_id in pairs],
                )
            except sqlite3.IntegrityError as exc:
                raise ValueError(
                    f"batch of {member}: a request or custom_id is unknown or already in a batch ({exc})"
                ) from None
        return key

    def batch_submitted(
        self, batch_key: str, provider_batch_id: str, state: str, counts: dict[str, Any]
    ) -> None:
        """The provider accepted the batch: its id, state (ours, see `normal_state`) and counts."""
        self._update(batch_key, _checked(state), counts, provider_batch_id=provider_batch_id)

    def batch_progress(
        self, batch_key: str, state: str, counts: dict[str, Any], error: str | None = None
    ) -> None:
        """A poll's answer: the state (ours), the provider's counts, and its error if it gave one."""
        self._update(batch_key, _checked(state), counts, error=error)

    def batch_collected(self, batch_key: str) -> None:
        """Every request of the batch has its reply or error stored: the batch is done with."""
        left = self.unanswered_in_batch(batch_key)
        if left:
            raise ValueError(f"batch {batch_key} has {len(left)} requests without a reply or error")
        self._update(batch_key, "collected", None)

    def _update(
        self,
        batch_key: str,
        state: str,
        counts: dict[str, Any] | None,
        *,
        provider_batch_id: str | None = None,
        error: str | None = None,
    ) -> None:
        with self.transaction() as db:
            cur = db.execute(
                """UPDATE batches SET state = ?, counts = COALESCE(?, counts),
                       provider_batch_id = COALESCE(?, provider_batch_id),
                       error = COALESCE(?, error), updated_at = ?
                   WHERE batch_key = ?""",
                (
                    state,
                    None if counts is None else json.dumps(counts),
                    provider_batch_id,
                    error,
                    time.time(),
                    batch_key,
                ),
            )
            if cur.rowcount == 0:
                raise KeyError(f"no batch {batch_key}")

    def batches(
        self, run_id: str, member: str | None = None, unfinished_only: bool = False
    ) -> list[BatchRow]:
        """A run's batches (of one member, or all) in the order they were made; unfinished:
        not yet collected, so still to re-attach to (or, in 'submitting', to look for)."""
        rows = self.db.execute(
            """SELECT b.*, (SELECT COUNT(*) FROM batch_requests br WHERE br.batch_key = b.batch_key) AS n
               FROM batches b
               WHERE b.run_id = ? AND (? IS NULL OR b.member = ?) AND (? = 0 OR b.state != 'collected')
               ORDER BY b.created_at, b.rowid""",
            (run_id, member, member, int(unfinished_only)),
        )
        return [
            BatchRow(
                batch_key=r["batch_key"],
                run_id=r["run_id"],
                member=r["member"],
                backend=r["backend"],
                provider_batch_id=r["provider_batch_id"],
                state=r["state"],
                counts=json.loads(r["counts"]),
                attempt=r["attempt"],
                reserved_usd=r["reserved_usd"],
                created_at=r["created_at"],
                updated_at=r["updated_at"],
                error=r["error"],
                requests=r["n"],
            )
            for r in rows
        ]

    def batch_outcomes(self, run_id: str) -> dict[str, dict[str, int]]:
        """What became of each request of the run's batches, by batch key: `valid` (its reply
        made the cell's valid review), `invalid` (answered, but not a valid review),
        `cancelled` (cut off by a cancel), `failed` (another error) or `waiting` (no result
        stored yet), each with its count, in that order."""
        rows = self.db.execute(
            """SELECT br.batch_key,
                   CASE WHEN rp.request_id IS NULL THEN 'waiting'
                        WHEN rp.error IS NULL THEN
                            CASE WHEN EXISTS (SELECT 1 FROM reviews rv
                                              WHERE rv.request_id = br.request_id AND rv.valid)
                                 THEN 'valid' ELSE 'invalid' END
                        WHEN rp.error LIKE '%cancelled%' THEN 'cancelled'
                        ELSE 'failed' END AS outcome,
                   COUNT(*)
               FROM batch_requests br LEFT JOIN replies rp ON rp.request_id = br.request_id
               WHERE br.run_id = ? GROUP BY 1, 2""",
            (run_id,),
        )
        found: dict[str, dict[str, int]] = {}
        for key, outcome, n in rows:
            found.setdefault(str(key), {})[str(outcome)] = int(n)
        return {key: {o: n[o] for o in _OUTCOMES if o in n} for key, n in found.items()}

    def latest_batch_run(self) -> str | None:
        """The newest run that has batches (for `panel batches` without a run)."""
        row = self.db.execute("SELECT run_id FROM batches ORDER BY created_at DESC, rowid DESC LIMIT 1")
        found = row.fetchone()
        return None if found is None else str(found[0])

    def batch_request(self, custom_id: str, run_id: str, member: str) -> int | None:
        """The request a result line's custom_id stands for, or None for one never sent."""
        row = self.db.execute(
            "SELECT request_id FROM batch_requests WHERE run_id = ? AND member = ? AND custom_id = ?",
            (run_id, member, custom_id),
        ).fetchone()
        return None if row is None else int(row[0])

    def batch_custom_ids(self, batch_key: str) -> list[tuple[str, int]]:
        """(custom_id, request id) of each request the batch carries."""
        rows = self.db.execute(
            "SELECT custom_id, request_id FROM batch_requests WHERE batch_key = ? ORDER BY request_id",
            (batch_key,),
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    def unanswered_in_batch(self, batch_key: str) -> list[tuple[str, int]]:
        """(custom_id, request id) of the batch's requests with no reply or error stored yet."""
        rows = self.db.execute(
            """SELECT br.custom_id, br.request_id FROM batch_requests br
               WHERE br.batch_key = ?
                 AND NOT EXISTS (SELECT 1 FROM replies rp WHERE rp.request_id = br.request_id)
               ORDER BY br.request_id""",
            (batch_key,),
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    def in_flight_reserved(self, run_id: str) -> float:
        """The worst-case cost reserved for a run's batch requests still out (in batches not
        collected, with no reply yet): a resumed run adds it to its reservations, not to
        `spent`, and releases each request's share as its result is stored."""
        row = self.db.execute(
            """SELECT COALESCE(SUM(rq.reserved_usd), 0) FROM batch_requests br
               JOIN batches b ON b.batch_key = br.batch_key
               JOIN requests rq ON rq.id = br.request_id
               WHERE br.run_id = ? AND b.state != 'collected'
                 AND NOT EXISTS (SELECT 1 FROM replies rp WHERE rp.request_id = br.request_id)""",
            (run_id,),
        ).fetchone()
        return float(row[0])


#: what a batch request became, in the order `panel batches` says them
_OUTCOMES = ("valid", "invalid", "cancelled", "failed", "waiting")


def _checked(state: str) -> str:
    if state not in BATCH_STATES:
        raise ValueError(f"batch state {state!r} is not one of {', '.join(BATCH_STATES)} (see normal_state)")
    return state
