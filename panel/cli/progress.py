"""Progress of a run on stderr: a live bar for people, JSON lines for scripts, or nothing.

A bar asked for where stderr is no terminal (a log, a pipe, CI, cron) is written as plain
lines instead, one at each tenth of the run or every `LINE_EVERY_S` seconds, whichever
comes first: `reviews 4/8 (50%), 0 failed, $0.0000`.

The run tells what happens as events (`panel.run.events`); `Reporter.show` renders them.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Literal

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..backends.batch import BatchStatus
from ..run.cells import CellResult
from ..run.events import (
    BatchSeen,
    Event,
    HeadToHeadBegun,
    HeadToHeadMade,
    RebuttalBegun,
    RebuttalMade,
    ReviewMade,
)
from ..run.stats import RoundStats, RunStats
from ..text import clean

__all__ = [
    "Mode", "Notices", "Reporter", "batch_eta", "batch_line", "emit_event", "head_to_head_part",
    "progress_line", "rebuttal_part", "summary_line",
]  # fmt: skip

#: in bar mode, a batch whose state holds is shown again at most this often (seconds)
BATCH_LINE_EVERY = 300.0
#: where stderr is no terminal, a progress line at least this often (seconds) while reviews come
LINE_EVERY_S = 10.0
#: ... and one each time the run passes another this many percent
LINE_STEP_PCT = 10

Mode = Literal["bar", "jsonl", "quiet"]


def summary_line(stats: RunStats, elapsed: float) -> str:
    parts = [
        f"{stats.done}/{stats.total} reviews",
        f"{stats.valid} valid",
        f"{stats.failed} failed",
        f"{stats.sent} sent",
        f"{stats.cached} from cache",
    ]
    if stats.copied:
        parts.append(f"{stats.copied} copied")
    parts += [f"{stats.retries} retries", f"${stats.spent:.4f}", f"{elapsed:.1f} s"]
    if stats.batch_at_live:
        parts.append(
            f"batch route ${stats.batch_spent:.4f} (the same replies live: ${stats.batch_at_live:.4f})"
        )
    if stats.lost:
        replies = "reply" if stats.lost == 1 else "replies"
        parts.append(f"{stats.lost} {replies} lost when the run was cut off, charged at worst case")
    if stats.rebuttal is not None:
        parts.append(rebuttal_part(stats.rebuttal))
    if stats.head_to_head is not None:
        parts.append(head_to_head_part(stats.head_to_head))
    if stats.stopped == "budget":
        parts.append("stopped at the budget")
    elif stats.stopped == "detached":
        parts.append("detached with batches in flight")
    if stats.members_stopped:
        parts.append(f"stopped sending to {', '.join(stats.members_stopped)}")
    return " · ".join(parts)


def rebuttal_part(r: RoundStats) -> str:
    """`rebuttal 10/12 answered, 2 changed, 1 failed`."""
    text = f"rebuttal {r.done}/{r.total} answered, {r.changed} changed"
    return text + (f", {r.failed} failed" if r.failed else "")


def head_to_head_part(r: RoundStats) -> str:
    """`head-to-head 10/12 answered, 1 failed`."""
    return f"head-to-head {r.done}/{r.total} answered" + (f", {r.failed} failed" if r.failed else "")


def progress_line(stats: RunStats) -> str:
    """`reviews 4/8 (50%), 0 failed, $0.0000`: where the run is, in a line a log keeps."""
    pct = 100 * stats.done // stats.total if stats.total else 100
    return f"reviews {stats.done}/{stats.total} ({pct}%), {stats.failed} failed, ${stats.spent:.4f}"


def _round_line(name: Round, stats: RoundStats) -> str:
    """`rebuttal 4/8 (50%), 1 changed, 0 failed`; `head-to-head 4/8 (50%), 0 failed`."""
    pct = 100 * stats.done // stats.total if stats.total else 100
    changed = f", {stats.changed} changed" if name == "rebuttal" else ""
    return f"{name} {stats.done}/{stats.total} ({pct}%){changed}, {stats.failed} failed"


#: the rounds after round 1 that show their own progress
Round = Literal["rebuttal", "head-to-head"]
#: each round's event under --progress jsonl
_ROUND_EVENT: dict[Round, str] = {"rebuttal": "rebuttal", "head-to-head": "head_to_head"}


class _Every:
    """When a plain progress line is due: at each `LINE_STEP_PCT` percent passed, at the end,
    or once `LINE_EVERY_S` seconds have gone by the clock since the last line."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.last_at = clock()
        self.last_step = 0

    def due(self, done: int, total: int) -> bool:
        now = self.clock()
        step = (100 * done // total) // LINE_STEP_PCT if total else 0
        if done >= total or step > self.last_step or now - self.last_at >= LINE_EVERY_S:
            self.last_at, self.last_step = now, step
            return True
        return False


def batch_eta(done: int, total: int, elapsed: float) -> float | None:
    """Seconds left for a batch at the rate it has gone since submission; None before the
    first request is done."""
    if total <= 0 or done <= 0 or elapsed <= 0:
        return None
    return max(0.0, elapsed * (total - done) / done)


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"


def batch_line(member: str, key: str, status: BatchStatus, eta_s: float | None) -> str:
    """`batch KEY (MEMBER): in_progress 1,200/4,000 done, eta 5m 40s`."""
    done, total = status.counts.get("done", 0), status.counts.get("total", 0)
    text = f"batch {key} ({member}): {status.state} {done:,}/{total:,} done"
    errored = status.counts.get("errored", 0)
    if errored:
        text += f", {errored:,} errored"
    if eta_s is not None and not status.finished:
        text += f", eta {_duration(eta_s)}"
    if status.error:
        text += f" ({status.error})"
    return text


def emit_event(data: dict[str, object]) -> None:
    """One JSON line on stderr, flushed, for `--progress jsonl`."""
    sys.stderr.write(json.dumps(data) + "\n")
    sys.stderr.flush()


class Notices:
    """Lines on stderr around a run: text for people, a JSON event each under `--progress jsonl`.

    Under jsonl every stderr line a run command writes is JSON, so a script can parse
    the stream line by line: `{"event": "plan", ...}`, `{"event": "error", ...}` and so on.
    """

    def __init__(self, console: Console, mode: Mode = "bar") -> None:
        self.console = console
        self.mode: Mode = mode

    def reset(self) -> None:
        self.mode = "bar"

    def say(self, event: str, text: str, **data: object) -> None:
        """A line every mode shows (quiet too): a warning, an error, where files went."""
        if self.mode == "jsonl":
            emit_event({"event": event, **data, "message": text})
        else:
            self.console.print(clean(text), markup=False, highlight=False, emoji=False, soft_wrap=True)

    def chatter(self, event: str, text: str, **data: object) -> None:
        """A line `--progress quiet` leaves out, such as the plan before a run."""
        if self.mode != "quiet":
            self.say(event, text, **data)


class Reporter:
    """Shows a run's progress in the chosen mode; use as a context manager around the run."""

    def __init__(
        self,
        mode: Mode,
        total: int,
        console: Console | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mode = mode
        self.total = total
        self.console = console or Console(stderr=True)
        self.started = time.monotonic()
        #: a bar asked for where stderr is no terminal: plain lines, paced by `clock`
        self._lines: _Every | None = None
        self._round_lines: dict[Round, _Every] = {}
        self._clock = clock
        self._last_line = 0.0
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._round_tasks: dict[Round, TaskID] = {}
        self._round_started: dict[Round, float] = {}
        #: per batch key: when it was first seen, and the (state, time) of its last line
        self._batch_seen: dict[str, float] = {}
        self._batch_shown: dict[str, tuple[str, float]] = {}
        #: wall clock, to set against the provider's creation time (tests replace it)
        self.wall = time.time

    def __enter__(self) -> Reporter:
        if self.mode == "bar" and not self.console.is_terminal:
            self._lines = _Every(self._clock)
        elif self.mode == "bar":
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}/s"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[extra]}"),
                console=self.console,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(
                "reviewing", total=self.total, rate="0.0", extra="", visible=self.total > 0
            )
        return self

    def show(self, event: Event) -> None:
        """Render one event of the run (a member stopped is the notices' to say)."""
        match event:
            case ReviewMade(result, stats):
                self.update(result, stats)
            case BatchSeen(member, key, status):
                self.batch(member, key, status)
            case RebuttalBegun(stats) | HeadToHeadBegun(stats):
                self.round_start("rebuttal" if isinstance(event, RebuttalBegun) else "head-to-head", stats)
            case RebuttalMade(result, stats):
                cell = result.cell.key
                self.round_update(
                    "rebuttal", stats, f"{stats.changed} changed · {cell.tool_id}/{cell.persona_id}"
                )
            case HeadToHeadMade(_, stats):
                self.round_update("head-to-head", stats, f"{stats.valid} valid")

    def update(self, result: CellResult | None, stats: RunStats) -> None:
        if self._progress is not None and self._task is not None:
            key = result.cell.key if result else None
            last = f" · {key.tool_id}/{key.persona_id}" if key else ""
            extra = f"${stats.spent:.4f} · {stats.retries} retries · {stats.failed} failed{last}"
            self._progress.update(self._task, completed=stats.done, rate=f"{stats.rate:.1f}", extra=extra)
        elif self._lines is not None:
            if self._lines.due(stats.done, stats.total):
                self._plain(progress_line(stats))
        elif self.mode == "jsonl":
            now = time.monotonic()
            if now - self._last_line >= 1.0 or stats.done == stats.total:
                self._last_line = now
                self._emit({"event": "progress", **stats.as_dict()})

    def round_start(self, name: Round, stats: RoundStats) -> None:
        """A round after round 1 begins: a bar of its own (bar), a line, an event (jsonl)."""
        self._round_started[name] = time.monotonic()
        if self._progress is not None:
            if name in self._round_tasks:  # a ranking's next round: its bar replaces the last one
                self._progress.remove_task(self._round_tasks[name])
            self._round_tasks[name] = self._progress.add_task(
                name, total=stats.total, completed=stats.done, rate="0.0", extra=""
            )
        elif self._lines is not None:
            self._round_lines[name] = _Every(self._clock)
            self._plain(_round_line(name, stats))
        elif self.mode == "jsonl":
            self._emit({"event": _ROUND_EVENT[name], **stats.as_dict()})

    def round_update(self, name: Round, stats: RoundStats, extra: str) -> None:
        task, lines = self._round_tasks.get(name), self._round_lines.get(name)
        if self._progress is not None and task is not None:
            elapsed = time.monotonic() - self._round_started[name]
            rate = f"{stats.done / elapsed:.1f}" if elapsed > 0 else "0.0"
            extra = f"{stats.failed} failed · {extra}"
            self._progress.update(task, completed=stats.done, rate=rate, extra=extra)
        elif lines is not None:
            if lines.due(stats.done, stats.total):
                self._plain(_round_line(name, stats))
        elif self.mode == "jsonl":
            now = time.monotonic()
            if now - self._last_line >= 1.0 or stats.done == stats.total:
                self._last_line = now
                self._emit({"event": _ROUND_EVENT[name], **stats.as_dict()})

    def batch(self, member: str, key: str, status: BatchStatus) -> None:
        """A batch's state at submission or at a poll: a line when it changes (bar), a JSON
        event at every poll (jsonl), nothing (quiet)."""
        if self.mode == "quiet":
            return
        now = self.wall()
        since = status.created_at or self._batch_seen.setdefault(key, now)
        done, total = status.counts.get("done", 0), status.counts.get("total", 0)
        eta = None if status.finished else batch_eta(done, total, now - since)
        if self.mode == "jsonl":
            self._emit(
                {
                    "event": "batch",
                    "member": member,
                    "batch": key,
                    "provider_id": status.provider_batch_id,
                    "state": status.state,
                    "done": done,
                    "total": total,
                    "errored": status.counts.get("errored", 0),
                    "eta_s": None if eta is None else round(eta, 1),
                }
            )
            return
        last = self._batch_shown.get(key)
        if last is not None and last[0] == status.state and now - last[1] < BATCH_LINE_EVERY:
            return
        self._batch_shown[key] = (status.state, now)
        line = clean(batch_line(member, key, status, eta))
        console = self._progress.console if self._progress is not None else self.console
        console.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)

    def finish(self, stats: RunStats) -> None:
        if self.mode == "jsonl":
            self._emit({"event": "done", **stats.as_dict(), "elapsed_s": round(self.elapsed, 2)})
        elif self.mode == "bar" and stats.total and stats.cached == stats.total and not stats.sent:
            # Nothing was asked of a model: say so, or the run reads like a very fast one.
            self._plain(f"{stats.cached} of {stats.total} from the cache, ${stats.spent:.4g}")

    def _plain(self, line: str) -> None:
        self.console.print(clean(line), markup=False, highlight=False, emoji=False, soft_wrap=True)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _emit(self, data: dict[str, object]) -> None:
        emit_event(data)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.__exit__(exc_type, exc, tb)
