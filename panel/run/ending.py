"""How a run ends, written in one place for every command that works on a run.

A run is `running` while a process works on it, and ends in one of the store's statuses:
`done`, `stopped` (at the budget, or a member's server went away), `interrupted` (Ctrl-C,
or detached with batches in flight: ready for `--resume`) or `failed` (its files or the
store could not be written, or an error stopped the work). Its files are written before
the run takes the status they carry, so a run whose files could not be written is never
called done.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

from ..backends.base import Backend
from ..errors import UserError
from ..store import Store

__all__ = ["RunEnd", "Write", "running", "store_errors"]

#: writes a run's files: (run id, the status the run is about to get)
Write = Callable[[str, str], object]

# SQLite's primary result codes that mean the disk or the file, not the program.
_STORAGE_CODES = {
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_CANTOPEN,
}


@contextmanager
def store_errors(store: Store) -> Iterator[None]:
    """A store the disk refuses (full, read-only, gone) is one line naming it, not a traceback."""
    try:
        yield
    except sqlite3.Error as exc:
        code = getattr(exc, "sqlite_errorcode", None)
        if code is None or code & 0xFF not in _STORAGE_CODES:
            raise
        raise UserError(f"cannot write {store.path}: {exc}") from None


@dataclass
class RunEnd:
    """The status a run will be left with when its work ends: `failed` until the work says
    otherwise (`finish`, or `leave`)."""

    run_id: str
    status: str = "failed"

    def finish(self, status: str, write: Write | None = None) -> None:
        """The work is over: write the run's files (carrying `status`), then take `status`."""
        if write is not None:
            write(self.run_id, status)
        self.status = status

    def leave(self, status: str) -> None:
        """End with `status` and no files (a run detached with batches in flight)."""
        self.status = status


@asynccontextmanager
async def running(store: Store, run_id: str, backends: Sequence[Backend]) -> AsyncIterator[RunEnd]:
    """Mark the run `running` (this process claims it) for the work in the block, then
    record how it ended: what the block set on the `RunEnd`, `interrupted` on Ctrl-C, else
    `failed`. The members' backends are closed after."""
    store.claim(run_id)
    end = RunEnd(run_id)
    try:
        store.mark_run(run_id, "running")
        yield end
    except (KeyboardInterrupt, asyncio.CancelledError):
        end.status = "interrupted"
        raise
    finally:
        # A full disk may refuse this too: the run then stays `running` until the next
        # process opens the store, which marks it interrupted.
        with contextlib.suppress(sqlite3.Error):
            store.finish_run(run_id, end.status)
        for backend in backends:
            await backend.aclose()
