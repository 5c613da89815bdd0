"""How a request of `panel view` writes to the store: one writer at a time.

The store allows one writer per runs folder (its file lock). The app's own writes, an
editor's edit or approval, take the app's lock first, so two clicks at once wait for each
other rather than one being refused. While the store is held, a write answers 409 (`Busy`):
held by one of the app's own jobs (a regenerated review, a new tool's draft), the answer
names the job in an editor's words; held by another `panel` process, it is the lock's own
sentence (who holds it).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request

from ..store import Store, StoreBusyError
from .jobs import Job, jobs_of

__all__ = ["Busy", "doing", "writable_store", "write_lock"]


class Busy(HTTPException):
    """409: the store is held; `job` is the app's own job holding it (None: another process)."""

    def __init__(self, detail: str, job: Job | None = None) -> None:
        super().__init__(409, detail)
        self.job = job


def write_lock(request: Request) -> threading.Lock:
    """The app's lock around its short writes (made with the app)."""
    lock: threading.Lock = request.app.state.write_lock
    return lock


def doing(job: Job, run_id: str | None = None) -> str:
    """What the app's job `job` is doing, as an editor would say it (of the run `run_id`, when
    the refused write is to one): "A review of this run is being regenerated"."""
    if job.kind == "regenerate":
        whose = "this run" if run_id is not None and job.run_id == run_id else f"run {job.run_id}"
        return f"A review of {whose} is being regenerated"
    if job.kind == "draft":
        return "A new tool's panel is being drafted"
    return f"A job is running ({job.title})"


@contextmanager
def writable_store(request: Request) -> Iterator[Store]:
    """The store opened for writing for one request; `Busy` (409) while someone else writes to it."""
    runs: Path = request.app.state.runs
    with write_lock(request):
        try:
            store = Store(runs)
        except StoreBusyError as exc:
            job = jobs_of(request.app).running()
            if job is None:
                raise Busy(str(exc)) from None
            now = doing(job, request.path_params.get("run_id"))
            raise Busy(f"{now}: nothing was changed; do it again when it finishes.", job) from None
        with store:
            yield store
