"""An asyncio event loop on a clock of its own: when nothing is ready, time jumps to the next timer.

Everything that waits through the loop (`asyncio.sleep`, `wait_for`, the rate limiter, the
retry policy) then takes no wall time, and a run of many virtual minutes ends in a moment
with the same result every time. Only coroutines that never touch real I/O belong on it:
a socket or thread that takes real time to answer finds virtual time already moved on.

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        runner.run(main())
"""

from __future__ import annotations

import asyncio
import selectors

__all__ = ["VirtualTimeLoop"]


class _JumpingSelector(selectors.DefaultSelector):
    """Reports what is ready now; where the loop would block for a timer, moves the clock."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            # No timer and nothing ready: only a thread or a socket can wake the loop.
            return super().select(None)
        self.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose `time()` is virtual, starting at 0."""

    def __init__(self) -> None:
        self._jumping = _JumpingSelector()
        super().__init__(self._jumping)

    def time(self) -> float:
        return self._jumping.now
