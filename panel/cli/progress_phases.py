"""Progress of a command's phases on stderr, shown only when the command is slow.

An analysis tells its phases as ``(phase, done, total)`` (see
:data:`panel.analysis.agreement.PhaseProgress`). :class:`PhaseBar` turns those calls into a
transient rich bar on a terminal's stderr -- but only once the command has run for
``delay`` seconds, so a quick command prints nothing, and the bar is erased when the work
ends. When stderr is not a terminal (a log, a pipe, a CI job) it prints nothing at all:
such a reader gets the results and any error, and no lines that would differ between two
runs of the same command. Stdout is never touched, so ``--format json`` and ``csv`` stay
data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from ..text import for_console

__all__ = ["DELAY_S", "PhaseBar"]

DELAY_S = 1.0
"""Seconds a command runs before its progress shows."""


class PhaseBar:
    """A ``(phase, done, total)`` callable that draws a bar once the work is slow.

    The clock starts when it is made: make it as the command starts. Use it as a context
    manager around the work; the bar, if it was ever shown, is removed on leaving.
    """

    def __init__(
        self,
        console: Console,
        *,
        delay: float = DELAY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._console = console
        self._delay = delay
        self._clock = clock
        self._started = clock()
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> PhaseBar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not self._console.is_terminal:
            return
        description, total = for_console(phase), max(total, 1)
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=description, completed=done, total=total)
        elif self._clock() - self._started >= self._delay:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self._console,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._task = self._bar.add_task(description, completed=done, total=total)
            self._bar.start()

    def close(self) -> None:
        """Remove the bar, if it is shown."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
            self._task = None
