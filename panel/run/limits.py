"""Per-member rate limits: requests and tokens per minute, kept without going over.

Each limit is paced evenly (a request may go once the previous one's share of the minute has
passed) and also capped on a sliding one-minute window, so that no window the provider looks
at ever holds more than the limit. A small headroom absorbs the jitter between when we send
and when the provider counts. What the provider says in its rate-limit headers tightens the
pace when less is left than we thought, and a 429's wait hint pauses the whole member.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Pacer", "RateLimiter"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass
class _Entry:
    sent: float
    amount: float
    in_window: bool = True


class Pacer:
    """Spreads one quantity (requests, or tokens) evenly at `per_minute`, capped per window."""

    def __init__(self, per_minute: float, *, headroom: float = 0.98, window: float = 60.0) -> None:
        if per_minute <= 0:
            raise ValueError("a rate limit must be positive")
        self.limit = per_minute * headroom
        self.window = window
        self.interval = window / self.limit  # seconds per unit
        self._due = 0.0  # when the next unit may start, on the monotonic clock
        self._log: deque[_Entry] = deque()
        self._in_window = 0.0

    def delay(self, amount: float, now: float) -> float:
        """Seconds to wait before `amount` units may be sent."""
        self._expire(now)
        wait = self._due - now
        if self._log and self._in_window + amount > self.limit:
            # Not enough leaves the window by pacing alone: wait for the oldest entries to age out.
            needed = self._in_window + amount - self.limit
            freed = 0.0
            for entry in self._log:
                freed += entry.amount
                if freed >= needed:
                    wait = max(wait, entry.sent + self.window - now)
                    break
        return max(0.0, wait)

    def take(self, amount: float, now: float) -> _Entry:
        """Count `amount` as sent now; the entry returned is what `adjust` corrects later."""
        self._due = max(self._due, now) + amount * self.interval
        entry = _Entry(now, amount)
        self._log.append(entry)
        self._in_window += amount
        return entry

    def adjust(self, entry: _Entry, actual: float) -> None:
        """Correct a reservation to what was really used, on the entry it was made for.

        Replies come back out of order, so the correction must land on its own entry: put
        on another, the window would free the wrong amount when that entry ages out.
        """
        delta = actual - entry.amount
        entry.amount = actual
        if entry.in_window:
            self._in_window += delta
        self._due += delta * self.interval

    def _expire(self, now: float) -> None:
        while self._log and self._log[0].sent <= now - self.window:
            gone = self._log.popleft()
            gone.in_window = False
            self._in_window -= gone.amount


class RateLimiter:
    """The limits of one panel member. `acquire` before each call; `observe` each reply's headers."""

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        headroom: float = 0.98,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.requests = Pacer(rpm, headroom=headroom) if rpm else None
        self.tokens = Pacer(tpm, headroom=headroom) if tpm else None
        # Injected together: tests run the limiter on a fake clock that their sleep advances.
        self.clock = clock
        self.sleep = sleep
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self.waited = 0.0

    async def acquire(self, tokens: int = 0) -> _Entry | None:
        """Wait until one request of `tokens` may go; returns the token reservation to settle."""
        # One waiter at a time keeps the order first come, first served.
        async with self._lock:
            while True:
                wait = self._wait(tokens, self.clock())
                if wait <= 0:
                    break
                self.waited += wait
                await self.sleep(wait)
            now = self.clock()
            if self.requests is not None:
                self.requests.take(1, now)
            if self.tokens is not None and tokens:
                return self.tokens.take(tokens, now)
            return None

    def _wait(self, tokens: int, now: float) -> float:
        waits = [self._paused_until - now]
        if self.requests is not None:
            waits.append(self.requests.delay(1, now))
        if self.tokens is not None and tokens:
            waits.append(self.tokens.delay(tokens, now))
        return max(waits)

    def settle(self, reservation: _Entry | None, actual: int) -> None:
        """Correct a token reservation to the real usage, up or down, once it is known."""
        if self.tokens is not None and reservation is not None:
            self.tokens.adjust(reservation, actual)

    def pause(self, seconds: float) -> None:
        """Hold every request of this member, e.g. after a 429 that said when to come back."""
        self._paused_until = max(self._paused_until, self.clock() + seconds)

    def observe(self, ratelimit: dict[str, Any] | None) -> None:
        """Tighten from the provider's own count: when it says nothing is left, wait for a slot.

        Providers report the time until the limit is whole again; used slots come back
        spread over that time, so the next one frees after about reset / used.
        """
        if not ratelimit:
            return
        remaining = ratelimit.get("remaining_requests")
        reset = ratelimit.get("reset_requests_s")
        if remaining is None or reset is None or remaining > 0:
            return
        limit = ratelimit.get("limit_requests")
        used = max(1.0, float(limit) - float(remaining)) if limit else 1.0
        self.pause(float(reset) / used)
