"""The store's SQLite connection: opened to write (holding the folder's lock) or read-only,
migrated, with one transaction helper."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from ..errors import UserError
from .lock import WriteLock, writer_alive
from .migrations import MIGRATIONS

__all__ = ["Connection"]

#: how long a commit waits for more writes to share it
_GATHER_S = 0.001


class Connection:
    """The runs folder's database: `panel.db`, beside one folder of files per run.

    A writer holds the folder's write lock (see `lock.py`) for as long as the store is
    open, so two processes never run against one store at once. `readonly=True` takes no
    lock and creates nothing: it needs an existing store.
    """

    def __init__(self, root: str | Path, *, readonly: bool = False) -> None:
        self.root = Path(root)
        self.path = self.root / "panel.db"
        self.readonly = readonly
        self._lock: WriteLock | None = None
        self._grouped = False
        self._held_since = 0.0
        self._commit_due: asyncio.Future[None] | None = None
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

    def has_table(self, name: str) -> bool:
        """Whether the store has this table: a reader may open a store made before the
        migration that adds it. A table found is remembered (tables are never dropped)."""
        found: set[str] = self.__dict__.setdefault("_tables_found", set())
        if name not in found:
            row = self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
            if row.fetchone() is None:
                return False
            found.add(name)
        return True

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Writes that land together or not at all (inside a grouped commit: a savepoint)."""
        self._hold()
        if self.db.in_transaction:
            self.db.execute("SAVEPOINT panel_write")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK TO panel_write")
                self.db.execute("RELEASE panel_write")
                raise
            self.db.execute("RELEASE panel_write")
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- grouped commits ------------------------------------------------------------------
    #
    # A commit per write cost a run more CPU than anything else in the store. While a run is
    # going, writes gather in one open transaction, and a request is sent only after
    # `durable()` has committed it (with whatever else was written by then), so a crash
    # still never loses a request that went out. A reply or a review written since the last
    # commit is lost by a kill -9: its request is then found unanswered, charged at its
    # worst case and sent again, as if the crash had come a moment earlier.

    def group_commits(self, on: bool) -> None:
        """Start gathering writes; stopping commits what was gathered."""
        if not on:
            self.commit()
        self._grouped = on

    def _hold(self) -> None:
        """Open the gathering transaction before a write, while commits are grouped."""
        if self._grouped and not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")
            self._held_since = time.monotonic()

    def commit(self) -> None:
        """Commit what was gathered, now."""
        if self.db.in_transaction:
            self.db.execute("COMMIT")

    def commit_stale(self, max_age: float) -> None:
        """Commit if the gathering transaction is older than `max_age` seconds (a stretch of
        cached reviews sends nothing, and progress should reach the disk all the same)."""
        if self.db.in_transaction and time.monotonic() - self._held_since > max_age:
            self.commit()

    async def durable(self) -> None:
        """Return once everything written so far is committed.

        The commit runs `_GATHER_S` later, so the workers that write meanwhile share it: a
        millisecond is nothing beside a model's reply, and saves most commits of a fast run.
        """
        if not self.db.in_transaction:
            return
        if self._commit_due is None:
            loop = asyncio.get_running_loop()
            self._commit_due = loop.create_future()
            loop.call_later(_GATHER_S, self._commit_now)
        await asyncio.shield(self._commit_due)

    def _commit_now(self) -> None:
        due, self._commit_due = self._commit_due, None
        assert due is not None
        try:
            self.commit()
        except sqlite3.Error as exc:
            due.set_exception(exc)
            return
        due.set_result(None)

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
