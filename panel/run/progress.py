"""Progress of a run on stderr: a live bar for people, JSON lines for scripts, or nothing."""

from __future__ import annotations

import json
import sys
import time
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

from ..text import clean
from .engine import CellResult, RunStats

__all__ = ["Mode", "Notices", "Reporter", "emit_event", "summary_line"]

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
    if stats.lost:
        replies = "reply" if stats.lost == 1 else "replies"
        parts.append(f"{stats.lost} {replies} lost when the run was cut off, charged at worst case")
    if stats.stopped == "budget":
        parts.append("stopped at the budget")
    return " · ".join(parts)


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

    def __init__(self, mode: Mode, total: int, console: Console | None = None) -> None:
        self.mode = mode
        self.total = total
        self.console = console or Console(stderr=True)
        self.started = time.monotonic()
        self._last_line = 0.0
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> Reporter:
        if self.mode == "bar":
            self._progress = Progress(
                TextColumn("[bold]reviewing"),
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
            self._task = self._progress.add_task("", total=self.total, rate="0.0", extra="")
        return self

    def update(self, result: CellResult | None, stats: RunStats) -> None:
        if self._progress is not None and self._task is not None:
            key = result.cell.key if result else None
            last = f" · {key.tool_id}/{key.persona_id}" if key else ""
            extra = f"${stats.spent:.4f} · {stats.retries} retries · {stats.failed} failed{last}"
            self._progress.update(self._task, completed=stats.done, rate=f"{stats.rate:.1f}", extra=extra)
        elif self.mode == "jsonl":
            now = time.monotonic()
            if now - self._last_line >= 1.0 or stats.done == stats.total:
                self._last_line = now
                self._emit({"event": "progress", **stats.as_dict()})

    def finish(self, stats: RunStats) -> None:
        if self.mode == "jsonl":
            self._emit({"event": "done", **stats.as_dict(), "elapsed_s": round(self.elapsed, 2)})

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
