"""The run store: one SQLite file under runs/, its schema made by ordered migrations.

Every request is written before it is sent and its reply is written in the same
transaction that marks it done, so a crash leaves nothing half-recorded. Keys never come
here: requests hold messages and sampling settings, never headers or client options.
"""

from __future__ import annotations

import itertools
import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

from .backends.base import Reply, Usage
from .errors import UserError
from .lock import StoreBusyError, WriteLock, writer_alive
from .migrations import MIGRATIONS

__all__ = [
    "MIGRATIONS",
    "RUN_STATUSES",
    "UNFINISHED",
    "CellKey",
    "ReviewRow",
    "RunRow",
    "Store",
    "StoreBusyError",
    "new_run_id",
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


class CellKey(NamedTuple):
    """One cell of a run: a tool, read by a persona, on a panel member, in one repeat."""

    tool_id: str
    persona_id: str
    member: str
    repeat: int = 0


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

    @property
    def key(self) -> CellKey:
        return CellKey(self.tool_id, self.persona_id, self.member, self.repeat)


class Store:
    """The runs folder: `panel.db` plus one folder of files per run.

    A writer holds the folder's write lock (see `lock.py`) for as long as the store is
    open, so two processes never run against one store at once. `readonly=True` takes no
    lock and creates nothing: it needs an existing store.
    """

    def __init__(self, root: str | Path, *, readonly: bool = False) -> None:
        self.root = Path(root)
        self.path = self.root / "panel.db"
        self.readonly = readonly
        self._lock: WriteLock | None = None
        if readonly:
            self.db = self._open_readonly()
            return
        self._make_root()
        self._lock = WriteLock(self.root)
        try:
            self.db = self._connect(str(self.path), uri=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
            # This process holds the lock, so a run still marked running has no process left.
            self.db.execute("UPDATE runs SET status = 'interrupted' WHERE status = 'running'")
        except BaseException:
            self._lock.release()
            raise

    def _make_root(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"runs folder {self.root} is a file: give --out a folder")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the runs folder {self.root}: {exc.strerror or exc}") from None

    def _connect(self, target: str, *, uri: bool) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(target, isolation_level=None, check_same_thread=False, uri=uri)
            db.execute("SELECT 1 FROM sqlite_master LIMIT 1")
        except sqlite3.Error as exc:
            raise UserError(f"cannot open {self.path}: {exc}") from None
        db.row_factory = sqlite3.Row
        return db

    def _open_readonly(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise UserError(f"no runs in {self.root}")
        # mode=ro: a reader never creates or migrates a database.
        return self._connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)

    def writer_alive(self) -> bool:
        """Whether a live process holds this store to write (this one, or another)."""
        return self._lock is not None or writer_alive(self.root)

    def claim(self, run_id: str) -> None:
        """Say in the lock file which run this process is making, for a refused second writer."""
        if self._lock is not None:
            self._lock.claim(run_id)

    def close(self) -> None:
        self.db.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL)")
        done = {row[0] for row in self.db.execute("SELECT name FROM migrations")}
        for migration in MIGRATIONS:
            if migration.__name__ in done:
                continue
            with self.transaction() as db:
                migration(db)
                db.execute("INSERT INTO migrations VALUES (?, ?)", (migration.__name__, time.time()))

    def run_dir(self, run_id: str) -> Path:
        return self.root / run_id

    # -- runs -------------------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        command: str,
        catalog: str | None,
        config: dict[str, Any],
        tools: list[tuple[str, str, dict[str, Any]]],
        personas: list[tuple[str, str, dict[str, Any]]],
    ) -> None:
        """Record a run with the tools (id, fingerprint, data) and personas it reviews."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO runs (id, created_at, command, catalog, config) VALUES (?, ?, ?, ?, ?)",
                (run_id, time.time(), command, catalog, json.dumps(config)),
            )
            db.executemany(
                "INSERT INTO run_tools VALUES (?, ?, ?, ?, ?)",
                [(run_id, i, tid, fp, json.dumps(d)) for i, (tid, fp, d) in enumerate(tools)],
            )
            db.executemany(
                "INSERT INTO run_personas VALUES (?, ?, ?, ?, ?)",
                [(run_id, i, pid, v, json.dumps(d)) for i, (pid, v, d) in enumerate(personas)],
            )

    def mark_run(self, run_id: str, status: str) -> None:
        self.db.execute("UPDATE runs SET status = ?, finished_at = NULL WHERE id = ?", (status, run_id))

    def finish_run(self, run_id: str, status: str) -> None:
        self.db.execute(
            "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
            (status, time.time(), run_id),
        )

    def get_run(self, run_id: str) -> RunRow | None:
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return self._live(_run_row(row)) if row else None

    def _live(self, run: RunRow) -> RunRow:
        # A reader sees a run "running" whose process died (the next writer will mark it).
        if run.status == "running" and not self.writer_alive():
            return replace(run, status="interrupted")
        return run

    def list_runs(self, limit: int = 50, status: str | None = None) -> list[tuple[RunRow, int, int]]:
        """Newest runs first (of one status, or all), each with its count of reviews and valid ones."""
        rows = self.db.execute(
            """SELECT runs.*, COUNT(reviews.id) AS n, COALESCE(SUM(reviews.valid), 0) AS ok
               FROM runs LEFT JOIN reviews ON reviews.run_id = runs.id
               WHERE ? IS NULL OR runs.status IN (?, 'running')
               GROUP BY runs.id ORDER BY runs.created_at DESC, runs.rowid DESC""",
            (status, status),
        )
        found = ((self._live(_run_row(r)), int(r["n"]), int(r["ok"])) for r in rows)
        return list(itertools.islice((f for f in found if status in (None, f[0].status)), limit))

    def latest_run(self, *statuses: str) -> str | None:
        """The newest run with one of these statuses (default: done)."""
        wanted = statuses or ("done",)
        marks = ", ".join("?" * len(wanted))
        row = self.db.execute(
            f"SELECT id FROM runs WHERE status IN ({marks}) ORDER BY created_at DESC, rowid DESC LIMIT 1",
            wanted,
        ).fetchone()
        return str(row[0]) if row else None

    def run_tools(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT data FROM run_tools WHERE run_id = ? ORDER BY position", (run_id,))
        return [json.loads(r[0]) for r in rows]

    def run_personas(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT data FROM run_personas WHERE run_id = ? ORDER BY position", (run_id,))
        return [json.loads(r[0]) for r in rows]

    # -- requests and replies ---------------------------------------------------------

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
    ) -> int:
        """Record a request before it is sent, with its worst-case cost; returns its id."""
        cur = self.db.execute(
            """INSERT INTO requests (run_id, tool_id, persona_id, member, repeat, backend, model,
                   ask, messages, schema_name, settings, cache_key, created_at, reserved_usd)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
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
                    json.dumps(reply.meta if reply else {}),
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
        where = "rq.cache_key = ? AND rq.status = 'done'"
        args: tuple[Any, ...] = (cache_key,)
        if run_id is not None:
            where += " AND rq.run_id = ?"
            args += (run_id,)
        row = self.db.execute(
            f"""SELECT rq.id, rq.run_id, rp.* FROM requests rq JOIN replies rp ON rp.request_id = rq.id
                WHERE {where} ORDER BY rq.id DESC LIMIT 1""",
            args,
        ).fetchone()
        if row is None:
            return None
        reply = Reply(
            text=row["raw_text"] or "",
            usage=Usage(row["input_tokens"], row["output_tokens"], row["cached_tokens"]),
            latency_s=row["latency_s"],
            finish_reason=row["finish_reason"],
            request_id=row["provider_request_id"],
            meta=json.loads(row["meta"]),
        )
        return row["id"], reply

    def mark_lost(self, run_id: str) -> int:
        """Mark a run's unanswered requests lost; returns how many.

        Called when a process starts on a run. It holds the store's lock, so a request still
        pending was recorded by a process that died (kill -9, power cut) or was interrupted
        while the request was out: its reply is lost, but the provider may have charged it.
        """
        cur = self.db.execute(
            "UPDATE requests SET status = 'lost' WHERE run_id = ? AND status = 'pending'", (run_id,)
        )
        return cur.rowcount

    def spent(self, run_id: str) -> float:
        """What a run has cost: its replies, plus each lost request at its worst case.

        A lost request may have been answered and billed, or may never have left the
        process (it could have been waiting for the rate limiter); the store cannot tell.
        Charging its worst case keeps `--max-cost` a ceiling across crashes and resumes.
        """
        row = self.db.execute(
            """SELECT COALESCE((SELECT SUM(rp.cost_usd) FROM replies rp
                                 JOIN requests rq ON rq.id = rp.request_id WHERE rq.run_id = ?), 0)
                    + COALESCE((SELECT SUM(reserved_usd) FROM requests
                                 WHERE run_id = ? AND status = 'lost'), 0)""",
            (run_id, run_id),
        ).fetchone()
        return float(row[0])

    def lost_requests(self, run_id: str) -> int:
        row = self.db.execute(
            "SELECT COUNT(*) FROM requests WHERE run_id = ? AND status = 'lost'", (run_id,)
        ).fetchone()
        return int(row[0])

    # -- reviews ----------------------------------------------------------------------

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
    ) -> None:
        self.db.execute(
            """INSERT INTO reviews (run_id, tool_id, persona_id, member, repeat, backend, model,
                   valid, verdict, verdict_note, data, error, raw_reply, request_id, asks,
                   fingerprint, copied_from, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
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
            ),
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
                    AND rq.repeat = rv.repeat
               LEFT JOIN replies rp ON rp.request_id = rq.id
               WHERE {where} GROUP BY rv.id ORDER BY rv.id""",
            args,
        )
        for r in cursor:
            yield ReviewRow(
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
            )


def _run_row(row: sqlite3.Row) -> RunRow:
    return RunRow(
        id=row["id"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        command=row["command"],
        status=row["status"],
        catalog=row["catalog"],
        config=json.loads(row["config"]),
    )
