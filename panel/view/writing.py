"""How a request of `panel view` writes to the store: one writer at a time.

The store allows one writer per runs folder (its file lock). The app's own writes, an
editor's edit or approval, take the app's lock first, so two clicks at once wait for each
other rather than one being refused; a job the app runs in the background (a regenerated
review, a new tool's draft) or another `panel` process holding the store makes a write
answer 409 with the lock's own sentence (who holds it).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request

from ..store import Store, StoreBusyError

__all__ = ["writable_store", "write_lock"]


def write_lock(request: Request) -> threading.Lock:
    """The app's lock around its short writes (made with the app)."""
    lock: threading.Lock = request.app.state.write_lock
    return lock


@contextmanager
def writable_store(request: Request) -> Iterator[Store]:
    """The store opened for writing for one request; 409 while someone else writes to it."""
    runs: Path = request.app.state.runs
    with write_lock(request):
        try:
            store = Store(runs)
        except StoreBusyError as exc:
            raise HTTPException(409, str(exc)) from None
        with store:
            yield store
