"""The rows the store hands out: runs, cells and reviews, and the statuses a run can have."""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "RUN_STATUSES",
    "UNFINISHED",
    "BatchRow",
    "CellKey",
    "MemberForm",
    "ReviewRow",
    "RunRow",
    "new_run_id",
    "run_row",
]

#: Every status a run can have. `running` only while a process holds the store's lock.
RUN_STATUSES = ("done", "running", "stopped", "interrupted", "failed")
#: Runs that `--resume` can finish.
UNFINISHED = ("interrupted", "stopped", "failed", "running")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


@dataclass(frozen=True)
class RunRow:
    id: str
    created_at: float
    finished_at: float | None
    command: str
    status: str
    catalog: str | None
    config: dict[str, Any]

    @property
    def kind(self) -> str:
        """Which command made the run ("compare", "review" or "rank"), so a resumed run writes
        its files."""
        kind = self.config.get("kind")
        if kind in ("compare", "review", "rank"):
            return str(kind)
        return "compare" if self.command.startswith("panel compare") else "review"


class CellKey(NamedTuple):
    """One cell of a run: a tool, read by a persona, on a panel member, in one repeat."""

    tool_id: str
    persona_id: str
    member: str
    repeat: int = 0


class MemberForm(NamedTuple):
    """The structured-output form found for a member's server, and the string cap its
    schemas were given in that form (None: the depth's caps alone)."""

    form: str
    max_length: int | None = None


@dataclass(frozen=True)
class ReviewRow:
    tool_id: str
    persona_id: str
    member: str
    backend: str
    model: str
    valid: bool
    verdict: str | None
    verdict_note: str | None
    data: dict[str, Any] | None
    error: str | None
    raw_reply: str | None
    asks: int
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    repeat: int = 0
    cost_usd: float = 0.0
    fingerprint: str | None = None
    copied_from: str | None = None
    #: how the reply's structure was held: grammar, provider schema, tool, validated after
    enforced: str | None = None

    @property
    def key(self) -> CellKey:
        return CellKey(self.tool_id, self.persona_id, self.member, self.repeat)


@dataclass(frozen=True)
class BatchRow:
    """One provider batch of a run, as the ledger holds it (see `Batches`)."""

    batch_key: str
    run_id: str
    member: str
    backend: str
    #: None until the provider has answered the submission
    provider_batch_id: str | None
    #: 'submitting', a provider state normalised (see `BATCH_STATES`), or 'collected'
    state: str
    #: the provider's request counts, as it gave them
    counts: dict[str, Any]
    #: 1 for a first batch, 2.. for follow-ups of errored, expired or invalid requests
    attempt: int
    reserved_usd: float
    created_at: float
    updated_at: float
    error: str | None
    #: how many requests it carries
    requests: int

    @property
    def collected(self) -> bool:
        return self.state == "collected"


def run_row(row: sqlite3.Row) -> RunRow:
    return RunRow(
        id=row["id"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        command=row["command"],
        status=row["status"],
        catalog=row["catalog"],
        config=json.loads(row["config"]),
    )


def review_row(r: sqlite3.Row) -> ReviewRow:
    """A review as the `reviews` query (or `review_history`, which has the same columns) gives it."""
    return ReviewRow(
        tool_id=r["tool_id"],
        persona_id=r["persona_id"],
        member=r["member"],
        backend=r["backend"],
        model=r["model"],
        valid=bool(r["valid"]),
        verdict=r["verdict"],
        verdict_note=r["verdict_note"],
        data=json.loads(r["data"]) if r["data"] else None,
        error=r["error"],
        raw_reply=r["raw_reply"],
        asks=r["asks"],
        input_tokens=r["input_tokens"],
        output_tokens=r["output_tokens"],
        latency_s=r["latency_s"],
        repeat=r["repeat"],
        cost_usd=r["cost_usd"],
        fingerprint=r["fingerprint"],
        copied_from=r["copied_from"],
        enforced=r["enforced"],
    )
