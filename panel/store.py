"""The run store: one SQLite file under runs/, its schema made by ordered migrations.

Every request is written before it is sent and its reply is written in the same
transaction that marks it done, so a crash leaves nothing half-recorded. Keys never come
here: requests hold messages and sampling settings, never headers or client options.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backends.base import Reply

__all__ = ["MIGRATIONS", "ReviewRow", "RunRow", "Store", "new_run_id"]


def _statements(db: sqlite3.Connection, script: str) -> None:
    """Run a script statement by statement: `executescript` would commit the open transaction."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _m001_initial(db: sqlite3.Connection) -> None:
    _statements(
        db,
        """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            finished_at REAL,
            command TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'running',
            catalog TEXT,
            config TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE run_tools (
            run_id TEXT NOT NULL REFERENCES runs(id),
            position INTEGER NOT NULL,
            tool_id TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (run_id, tool_id)
        );
        CREATE TABLE run_personas (
            run_id TEXT NOT NULL REFERENCES runs(id),
            position INTEGER NOT NULL,
            persona_id TEXT NOT NULL,
            version TEXT NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (run_id, persona_id)
        );
        CREATE TABLE requests (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            tool_id TEXT NOT NULL,
            persona_id TEXT NOT NULL,
            member TEXT NOT NULL,
            backend TEXT NOT NULL,
            model TEXT NOT NULL,
            ask INTEGER NOT NULL,
            messages TEXT NOT NULL,
            schema_name TEXT NOT NULL,
            settings TEXT NOT NULL,
            cache_key TEXT,
            status TEXT NOT NULL DEFAULT 'pending',
            created_at REAL NOT NULL
        );
        CREATE INDEX requests_cell ON requests(run_id, tool_id, persona_id, member);
        CREATE INDEX requests_cache ON requests(cache_key);
        CREATE TABLE replies (
            request_id INTEGER PRIMARY KEY REFERENCES requests(id),
            raw_text TEXT,
            finish_reason TEXT,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cached_tokens INTEGER NOT NULL DEFAULT 0,
            latency_s REAL NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 1,
            provider_request_id TEXT,
            error TEXT,
            meta TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL
        );
        CREATE TABLE reviews (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            tool_id TEXT NOT NULL,
            persona_id TEXT NOT NULL,
            member TEXT NOT NULL,
            backend TEXT NOT NULL,
            model TEXT NOT NULL,
            valid INTEGER NOT NULL,
            verdict TEXT,
            verdict_note TEXT,
            data TEXT,
            error TEXT,
            raw_reply TEXT,
            request_id INTEGER REFERENCES requests(id),
            asks INTEGER NOT NULL DEFAULT 1,
            created_at REAL NOT NULL,
            UNIQUE (run_id, tool_id, persona_id, member)
        );
        """
    )


# Append only: a migration, once released, is never edited or reordered.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m001_initial]


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
    input_tokens: int
    output_tokens: int
    latency_s: float


class Store:
    """The runs folder: `panel.db` plus one folder of files per run."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / "panel.db"
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def close(self) -> None:
        self.db.close()

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
                db.execute(
                    "INSERT INTO migrations VALUES (?, ?)", (migration.__name__, time.time())
                )

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

    def finish_run(self, run_id: str, status: str) -> None:
        self.db.execute(
            "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?", (status, time.time(), run_id)
        )

    def get_run(self, run_id: str) -> RunRow | None:
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _run_row(row) if row else None

    def list_runs(self, limit: int = 50) -> list[tuple[RunRow, int, int]]:
        """Newest runs first, each with its count of reviews and of valid reviews."""
        rows = self.db.execute(
            """SELECT runs.*, COUNT(reviews.id) AS n, COALESCE(SUM(reviews.valid), 0) AS ok
               FROM runs LEFT JOIN reviews ON reviews.run_id = runs.id
               GROUP BY runs.id ORDER BY runs.created_at DESC LIMIT ?""",
            (limit,),
        ).fetchall()
        return [(_run_row(r), r["n"], r["ok"]) for r in rows]

    def run_tools(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT data FROM run_tools WHERE run_id = ? ORDER BY position", (run_id,)
        )
        return [json.loads(r[0]) for r in rows]

    def run_personas(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT data FROM run_personas WHERE run_id = ? ORDER BY position", (run_id,)
        )
        return [json.loads(r[0]) for r in rows]

    # -- requests and replies ---------------------------------------------------------

    def begin_request(
        self,
        run_id: str,
        cell: tuple[str, str, str],
        backend: str,
        model: str,
        ask: int,
        messages: list[dict[str, str]],
        schema_name: str,
        settings: dict[str, Any],
        cache_key: str | None = None,
    ) -> int:
        """Record a request before it is sent; returns its id."""
        tool_id, persona_id, member = cell
        cur = self.db.execute(
            """INSERT INTO requests (run_id, tool_id, persona_id, member, backend, model, ask,
                   messages, schema_name, settings, cache_key, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (run_id, tool_id, persona_id, member, backend, model, ask, json.dumps(messages),
             schema_name, json.dumps(settings), cache_key, time.time()),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def finish_request(
        self, request_id: int, reply: Reply | None, attempts: int, error: str | None = None
    ) -> None:
        """Store the reply (or the error) and mark the request done, in one transaction."""
        with self.transaction() as db:
            db.execute(
                """INSERT INTO replies (request_id, raw_text, finish_reason, input_tokens,
                       output_tokens, cached_tokens, latency_s, attempts, provider_request_id,
                       error, meta, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
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
                    time.time(),
                ),
            )
            db.execute(
                "UPDATE requests SET status = ? WHERE id = ?",
                ("error" if error else "done", request_id),
            )

    # -- reviews ----------------------------------------------------------------------

    def save_review(
        self,
        run_id: str,
        cell: tuple[str, str, str],
        backend: str,
        model: str,
        *,
        data: dict[str, Any] | None,
        error: str | None,
        raw_reply: str | None,
        request_id: int | None,
        asks: int,
    ) -> None:
        tool_id, persona_id, member = cell
        self.db.execute(
            """INSERT INTO reviews (run_id, tool_id, persona_id, member, backend, model, valid,
                   verdict, verdict_note, data, error, raw_reply, request_id, asks, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                run_id, tool_id, persona_id, member, backend, model, int(data is not None),
                data.get("verdict") if data else None,
                data.get("verdict_note") if data else None,
                json.dumps(data) if data is not None else None,
                error, raw_reply, request_id, asks, time.time(),
            ),
        )

    def reviews(self, run_id: str) -> list[ReviewRow]:
        """A run's reviews, with the tokens and latency of every ask behind each."""
        rows = self.db.execute(
            """SELECT rv.*,
                   COALESCE(SUM(rp.input_tokens), 0) AS input_tokens,
                   COALESCE(SUM(rp.output_tokens), 0) AS output_tokens,
                   COALESCE(SUM(rp.latency_s), 0) AS latency_s
               FROM reviews rv
               LEFT JOIN requests rq ON rq.run_id = rv.run_id AND rq.tool_id = rv.tool_id
                    AND rq.persona_id = rv.persona_id AND rq.member = rv.member
               LEFT JOIN replies rp ON rp.request_id = rq.id
               WHERE rv.run_id = ? GROUP BY rv.id ORDER BY rv.id""",
            (run_id,),
        ).fetchall()
        return [
            ReviewRow(
                tool_id=r["tool_id"], persona_id=r["persona_id"], member=r["member"],
                backend=r["backend"], model=r["model"], valid=bool(r["valid"]),
                verdict=r["verdict"], verdict_note=r["verdict_note"],
                data=json.loads(r["data"]) if r["data"] else None, error=r["error"],
                raw_reply=r["raw_reply"], asks=r["asks"], input_tokens=r["input_tokens"],
                output_tokens=r["output_tokens"], latency_s=r["latency_s"],
            )
            for r in rows
        ]


def _run_row(row: sqlite3.Row) -> RunRow:
    return RunRow(
        id=row["id"], created_at=row["created_at"], finished_at=row["finished_at"],
        command=row["command"], status=row["status"], catalog=row["catalog"],
        config=json.loads(row["config"]),
    )
