"""Background jobs of `panel view`: work that makes reviews (a regenerated review, a new
tool's draft), run one at a time, with live progress.

`start_job(request, title, work, total=N)` starts `work(store, on_event)` in a daemon thread
with its own event loop and its own writable `Store` (SQLite connections stay in the thread
that opened them), and answers 303 to the job's page. The thread opens the store before
`start_job` returns, behind the app's write lock, so a store another process holds answers
409 with the lock's own sentence; a second job while one runs answers 409 naming it.

Each review the run tells through `on_event` (`panel.run.events.ReviewMade`) is one progress
event of the job; the job's end is one final event. Pages read a job's snapshot;
`/jobs/{id}/events` streams its events as server-sent events, each event's data one JSON
object.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ..errors import BackendError, UserError
from ..run.cells import CellResult
from ..run.events import Event, ReviewMade, Sink
from ..store import Store, StoreBusyError
from .templating import page, url

__all__ = [
    "KEEP_FINISHED",
    "Job",
    "JobRegistry",
    "PartialRun",
    "Work",
    "job_events",
    "jobs_of",
    "result_line",
    "routes",
    "start_job",
]

log = logging.getLogger(__name__)

#: a job's work: runs in the job's thread, on its loop, with its store, telling its run's
#: events to the sink it is given; returns the run id it made or changed
Work = Callable[[Store, Sink], Awaitable[str]]


class PartialRun(UserError):
    """A job's work made its run but not all of it (a member whose server went away): the job
    ends failed with the reason, and its page still links to the run."""

    def __init__(self, run_id: str, reason: str) -> None:
        super().__init__(reason)
        self.run_id = run_id


#: finished jobs kept in memory for their pages, newest last
KEEP_FINISHED = 50
#: seconds between keep-alive comments on an idle event stream (a proxy or a browser may
#: drop a silent connection); also how often a stream notices a client gone quietly
KEEPALIVE_S = 15.0
UNEXPECTED = "The job stopped on an unexpected error; the server's log says what."


def result_line(result: CellResult) -> str:
    """'tool · persona · member: verdict' (or 'failed'), one line per review made."""
    key = result.cell.key
    outcome = result.verdict if result.valid and result.verdict else "failed"
    repeat = f" (repeat {key.repeat})" if key.repeat else ""
    return f"{key.tool_id} · {key.persona_id} · {key.member}{repeat}: {outcome}"


@dataclass
class Job:
    """One job: its progress so far, its events, and how it ended."""

    id: str
    title: str
    total: int
    #: what the job does, for the pages that must wait for it: "regenerate", "draft" or "job"
    kind: str = "job"
    state: str = "running"  # then "done" or "failed"
    done: int = 0
    valid: int = 0
    failed: int = 0
    spent: float = 0.0
    results: list[str] = field(default_factory=list)
    run_id: str | None = None
    error: str | None = None
    #: every event so far, in order: ("progress" | "done", data)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=list, repr=False)

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def url(self) -> str | None:
        return None if self.run_id is None else f"/runs/{self.run_id}"

    def show(self, event: Event) -> None:
        """Record one event of the work's run (called in the job's thread, by its engine): a
        review made is a progress event; the others are not shown."""
        if not isinstance(event, ReviewMade):
            return
        result, stats = event.result, event.stats
        with self._lock:
            self.done, self.total = stats.done, max(self.total, stats.total)
            self.valid, self.failed, self.spent = stats.valid, stats.failed, stats.spent
            line = result_line(result)
            self.results.append(line)
            self.events.append(("progress", {**self._counts(), "last": line}))
        self._wake()

    def finish(self, run_id: str | None, error: str | None) -> None:
        with self._lock:
            self.run_id = run_id
            self.error = error
            self.state = "failed" if error is not None else "done"
            self.events.append(
                (
                    "done",
                    {
                        **self._counts(),
                        "state": self.state,
                        "run_id": run_id,
                        "url": self.url,
                        "error": error,
                    },
                )
            )
        self._wake()

    def _counts(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "total": self.total,
            "valid": self.valid,
            "failed": self.failed,
            "spent_usd": round(self.spent, 6),
        }

    def snapshot(self) -> dict[str, Any]:
        """What a page shows: counts, result lines, state, the run and the error."""
        with self._lock:
            return {
                **self._counts(),
                "id": self.id,
                "title": self.title,
                "state": self.state,
                "results": list(self.results),
                "run_id": self.run_id,
                "url": self.url,
                "error": self.error,
                "seen": len(self.events),
            }

    def events_from(self, start: int) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return self.events[start:]

    def _watch(self) -> asyncio.Event:
        """An event set at the job's next change, on the calling loop."""
        wake = asyncio.Event()
        with self._lock:
            self._waiters.append((asyncio.get_running_loop(), wake))
        return wake

    def _unwatch(self, wake: asyncio.Event) -> None:
        with self._lock:
            self._waiters = [w for w in self._waiters if w[1] is not wake]

    def _wake(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, wake in waiters:
            with contextlib.suppress(RuntimeError):  # that loop has closed: nobody listens
                loop.call_soon_threadsafe(wake.set)


class JobRegistry:
    """The app's jobs: at most one running, the last `KEEP_FINISHED` finished ones kept."""

    def __init__(self, keep: int = KEEP_FINISHED) -> None:
        self.keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def running(self) -> Job | None:
        with self._lock:
            return next((j for j in self._jobs.values() if j.running), None)

    def add(self, title: str, total: int, kind: str = "job") -> Job:
        """A new running job; HTTPException 409 while another runs."""
        with self._lock:
            busy = next((j for j in self._jobs.values() if j.running), None)
            if busy is not None:
                raise HTTPException(
                    409, f"A job is already running: {busy.title} (/jobs/{busy.id}); wait for it to finish."
                )
            job = Job(secrets.token_hex(6), title, total, kind)
            self._jobs[job.id] = job
            finished = [j.id for j in self._jobs.values() if not j.running]
            for old in finished[: max(0, len(finished) - self.keep)]:
                del self._jobs[old]
            return job

    def drop(self, job: Job) -> None:
        with self._lock:
            self._jobs.pop(job.id, None)


_registry_lock = threading.Lock()


def jobs_of(app: Starlette) -> JobRegistry:
    """The app's job registry (made on first use)."""
    with _registry_lock:
        registry = getattr(app.state, "jobs", None)
        if not isinstance(registry, JobRegistry):
            registry = JobRegistry()
            app.state.jobs = registry
        return registry


def start_job(
    request: Request, title: str, work: Work, *, total: int, run_id: str | None = None, kind: str = "job"
) -> Response:
    """Run `work` in the background as a job and answer 303 to its page.

    `run_id`, when the run is known before the work starts (a regenerated review), is the
    run a failed job's page links to; a job that ends well links to the run `work` returns.
    `kind` says what it does ("regenerate", "draft"), for a write that must wait for it.

    HTTPException 409 if a job is already running, or if the store is busy (another process
    writes to it: the lock's sentence says which). Blocks only until the job's thread has
    opened the store.
    """
    registry = jobs_of(request.app)
    job = registry.add(title, total, kind)
    job.run_id = run_id
    runs: Path = request.app.state.runs
    opened = threading.Event()
    refused: list[BaseException] = []
    thread = threading.Thread(
        target=_run_job,
        args=(job, runs, work, request.app.state.write_lock, opened, refused),  # writing.write_lock
        name=f"panel-job-{job.id}",
        daemon=True,
    )
    thread.start()
    opened.wait()
    if refused:
        registry.drop(job)
        exc = refused[0]
        if isinstance(exc, StoreBusyError):
            raise HTTPException(409, str(exc))
        if isinstance(exc, UserError):
            raise HTTPException(500, str(exc))
        raise HTTPException(500, UNEXPECTED)
    return RedirectResponse(url(request, f"/jobs/{job.id}"), 303)


def _run_job(
    job: Job,
    runs: Path,
    work: Work,
    lock: threading.Lock,
    opened: threading.Event,
    refused: list[BaseException],
) -> None:
    """The job's thread: open the store (an editor's short write finishes first), run the
    work on this thread's own loop, close the store, then record the end."""
    try:
        with lock:
            store = Store(runs)
    except BaseException as exc:
        if not isinstance(exc, UserError):
            log.exception("job %s: the store could not be opened", job.id)
        refused.append(exc)
        opened.set()
        return
    opened.set()
    run_id = job.run_id
    error: str | None = UNEXPECTED

    async def main() -> str:
        return await work(store, job.show)

    try:
        with store, asyncio.Runner() as runner:
            run_id = runner.run(main())
        error = None
    except (UserError, BackendError) as exc:
        error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        run_id = exc.run_id if isinstance(exc, PartialRun) else run_id
    except Exception:
        log.exception("job %s (%s) failed", job.id, job.title)
    finally:
        job.finish(run_id, error)  # whatever happened, the job is no longer running


def _sse(kind: str, data: dict[str, Any], event_id: int) -> str:
    # JSON keeps every line break of a model's text inside one `data:` line.
    return f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def job_events(
    job: Job, start: int = 0, is_gone: Callable[[], Awaitable[bool]] | None = None
) -> AsyncIterator[str]:
    """The job's events from number `start` on, as server-sent events: each `progress`, then
    `done`, and the stream ends. It ends too once `is_gone()` says the client left."""
    sent = max(0, start)
    while True:
        wake = job._watch()
        try:
            for kind, data in job.events_from(sent):
                sent += 1
                yield _sse(kind, data, sent)
                if kind == "done":
                    return
            try:
                await asyncio.wait_for(wake.wait(), KEEPALIVE_S)
            except TimeoutError:
                if is_gone is not None and await is_gone():
                    return
                yield ": waiting\n\n"
        finally:
            job._unwatch(wake)


def _job(request: Request) -> Job:
    job_id = request.path_params["job_id"]
    job = jobs_of(request.app).get(job_id)
    if job is None:
        raise HTTPException(404, f"There is no job '{job_id}' (the server keeps the last {KEEP_FINISHED}).")
    return job


def job_page(request: Request) -> Response:
    return page(request, "job.html.j2", job=_job(request).snapshot())


async def job_stream(request: Request) -> Response:
    job = _job(request)
    given = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    try:
        start = int(given)
    except ValueError:
        raise HTTPException(400, f"after={given!r} is not a number of events.") from None
    return StreamingResponse(
        job_events(job, start, request.is_disconnected),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/jobs/{job_id}", job_page, name="job"),
        Route("/jobs/{job_id}/events", job_stream, name="job_events"),
    ]
