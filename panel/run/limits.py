"""Per-member rate limits: configured, read from the provider, or found by trying.

A member's request and token limits come from panel.toml (`rpm`, `tpm`) when set. Otherwise
they are learned: from the provider's rate-limit headers (`x-ratelimit-limit-*`,
`anthropic-ratelimit-*-limit`) as soon as a reply carries them, and where no header comes,
by trying (AIMD): once a 429 shows where the limit is, the request rate is set a little
below what the provider served, climbs slowly while replies come, and drops again by a
fixed factor at the next 429. A known limit caps that search; it never lifts it.

Each limit is paced evenly (a request may go once the previous one's share of the minute has
passed) and also capped on a sliding one-minute window, so that no window the provider looks
at ever holds more than the limit. The member's `headroom` (the fraction of a limit used)
absorbs the jitter between when we send and when the provider counts: lower it for providers
that count a per-minute limit per second. What the provider says is left tightens the pace
when less is left than we thought, and a 429's wait hint pauses the whole member.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..backends.options import MemberOptions
from ..errors import BackendError

__all__ = ["DEFAULT_HEADROOM", "Adaptive", "Pacer", "RateLimiter", "Ticket", "shared_limiters"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

DEFAULT_HEADROOM = 0.98
#: 429s at a known limit lower its headroom this far at most; then the member backs off
MIN_HEADROOM = 0.8
#: providers state their limits per minute
MINUTE = 60.0


@dataclass
class _Entry:
    sent: float
    amount: float
    in_window: bool = True


class Pacer:
    """Spreads one quantity (requests, or tokens) evenly at `limit` a `window`, capped per window."""

    def __init__(self, limit: float, *, headroom: float = DEFAULT_HEADROOM, window: float = MINUTE) -> None:
        self.window = window
        self.headroom = headroom
        self.set_limit(limit)
        self._due = 0.0  # when the next unit may start, on the monotonic clock
        self._log: deque[_Entry] = deque()
        self._in_window = 0.0

    def set_limit(self, limit: float) -> None:
        """Pace to another limit from now on; what was sent stays counted."""
        if not limit > 0 or not math.isfinite(limit):
            raise ValueError("a rate limit must be positive")
        #: the limit as stated, before headroom
        self.stated = limit
        self.limit = limit * self.headroom
        self.interval = self.window / self.limit  # seconds per unit

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


class Adaptive:
    """A request rate found by trying, for a provider that does not say its limit (AIMD).

    Until the first 429 nothing holds the member back but its concurrency. A 429 sets the
    rate to `back_off` times what the provider served of the last `span` seconds of sends
    (or times the rate in force, if lower); replies then lift it by `climb` of that rate per
    second, until the next 429. Only a 429 to a request sent at the rate in force lowers it:
    the others were sent before the last back-off and say nothing about it. What was served
    is counted by when it was sent, so a slow model does not make a fast provider look slow.
    """

    def __init__(
        self,
        *,
        back_off: float = 0.9,
        climb: float = 0.01,
        span: float = 2.0,
        back_off_headroom: float = 0.98,
    ) -> None:
        self.back_off = back_off
        #: what a 429 at a known limit multiplies its headroom by
        self.back_off_headroom = back_off_headroom
        self.climb = climb
        self.span = span
        #: requests per second; None until a 429 said where the limit is
        self.rate: float | None = None
        #: counts the back-offs; a request carries the epoch it was sent in
        self.epoch = 0
        self.back_offs = 0
        self._due = 0.0
        self._served: deque[float] = deque()  # when the requests served were sent
        self._first: float | None = None
        self._base = 0.0
        self._climbed = 0.0

    def delay(self, now: float) -> float:
        """Seconds until the next request may go at the rate found."""
        return self._due - now if self.rate is not None else 0.0

    def sent(self, now: float) -> None:
        if self._first is None:
            self._first = now
        if self.rate is not None:
            # Even spacing only: no window cap, whose whole-request steps would hold the
            # rate to the integer below it, and which would stall the member for seconds
            # after a back-off while the sends of the faster rate age out.
            self._due = max(self._due, now) + 1.0 / self.rate

    def served(self, sent: float, now: float) -> None:
        """The reply to a request sent at `sent` came: remember it, and climb."""
        self._served.append(sent)
        while self._served[0] <= sent - 2 * self.span:
            self._served.popleft()  # replies come out of order: keep a little more than a span
        if self.rate is not None:
            self.rate += self.climb * self._base * max(0.0, now - self._climbed)
            self._climbed = now

    def rate_limited(self, epoch: int, now: float) -> None:
        """A 429 for a request sent in `epoch`: back off, once per epoch."""
        if epoch != self.epoch or self._first is None:
            return
        if not self._served:
            return  # nothing served yet says nothing about the rate; the pause alone holds
        last = max(self._served)
        span = min(max(last - self._first, 1.0), self.span)
        served = sum(1 for t in self._served if t > last - span)
        rate = self.back_off * min(self.rate or math.inf, served / span)
        self.rate = self._base = rate
        self._climbed = now
        self.epoch += 1
        self.back_offs += 1

    def forget(self) -> None:
        """Drop the rate found (it climbed past a known limit, which now holds alone)."""
        self.rate = None


@dataclass
class Ticket:
    """One request let through: when, in which AIMD epoch, and its token reservation."""

    sent: float
    epoch: int
    tokens: _Entry | None = None
    #: what the request counts while a limit is still to be learned
    record: _Entry | None = None


class RateLimiter:
    """The limits of one panel member. `acquire` before each call; `observe` each reply,
    `failed` each error."""

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        headroom: float = DEFAULT_HEADROOM,
        learn: bool = True,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not 0 < headroom <= 1:
            raise ValueError("headroom must be within (0, 1]")
        self.headroom = headroom
        self.requests = Pacer(rpm, headroom=headroom) if rpm else None
        self.tokens = Pacer(tpm, headroom=headroom) if tpm else None
        #: where each limit came from: "configured", "headers", or None (not known)
        self.source: dict[str, str | None] = {
            "requests": "configured" if rpm else None,
            "tokens": "configured" if tpm else None,
        }
        self._learn = {"requests": learn and not rpm, "tokens": learn and not tpm}
        self.adaptive = Adaptive() if learn else None
        # Injected together: tests run the limiter on a fake clock that their sleep advances.
        # By default both are the event loop's, so a loop with its own time drives them too.
        self.clock = clock or _loop_time
        self.sleep = sleep
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self.waited = 0.0
        # Sends of the last minute while a limit is still unknown: a limit learned later
        # counts them, as the provider does.
        self._recent: deque[_Entry] = deque()

    @property
    def rpm(self) -> float | None:
        """Requests per minute this member is paced to (before headroom), wherever it came from."""
        rates = [self.requests.stated] if self.requests is not None else []
        if self.adaptive is not None and self.adaptive.rate is not None:
            rates.append(self.adaptive.rate * MINUTE)
        return min(rates) if rates else None

    async def acquire(self, tokens: int = 0) -> Ticket:
        """Wait until one request of `tokens` may go; returns the ticket to settle later."""
        # One waiter at a time keeps the order first come, first served.
        async with self._lock:
            while True:
                wait = self._wait(tokens, self.clock())
                if wait <= 0:
                    break
                self.waited += wait
                await self.sleep(wait)
            now = self.clock()
            ticket = Ticket(now, self.adaptive.epoch if self.adaptive is not None else 0)
            if self.requests is not None:
                self.requests.take(1, now)
            if self.tokens is not None and tokens:
                ticket.tokens = self.tokens.take(tokens, now)
            if self.adaptive is not None:
                self.adaptive.sent(now)
            if self._unknown():
                ticket.record = _Entry(now, tokens)
                self._recent.append(ticket.record)
                while self._recent[0].sent <= now - MINUTE:
                    self._recent.popleft()
            return ticket

    def _wait(self, tokens: int, now: float) -> float:
        waits = [self._paused_until - now]
        if self.requests is not None:
            waits.append(self.requests.delay(1, now))
        if self.tokens is not None and tokens:
            waits.append(self.tokens.delay(tokens, now))
        if self.adaptive is not None:
            waits.append(self.adaptive.delay(now))
        return max(waits)

    def settle(self, ticket: Ticket | None, actual: int) -> None:
        """A reply came: correct its token reservation to the real usage, up or down."""
        if ticket is None:
            return
        if ticket.record is not None:
            ticket.record.amount = actual
        if self.tokens is not None and ticket.tokens is not None:
            self.tokens.adjust(ticket.tokens, actual)
        if self.adaptive is not None:
            self.adaptive.served(ticket.sent, self.clock())

    def pause(self, seconds: float) -> None:
        """Hold every request of this member, e.g. after a 429 that said when to come back."""
        self._paused_until = max(self._paused_until, self.clock() + seconds)

    def failed(self, ticket: Ticket, error: BackendError) -> None:
        """A request failed; a 429 slows the member down (its wait hint pauses it elsewhere).

        Paced to a known limit, the member keeps a little more of it free from then on: the
        provider counts on a finer clock than ours. With no limit known, it backs off (AIMD).
        """
        adaptive = self.adaptive
        if error.kind != "rate_limit" or adaptive is None or ticket.epoch != adaptive.epoch:
            return
        known = self.requests
        if known is not None and adaptive.rate is None and known.headroom > MIN_HEADROOM:
            known.headroom = max(MIN_HEADROOM, known.headroom * adaptive.back_off_headroom)
            known.set_limit(known.stated)
            adaptive.epoch += 1
        else:
            adaptive.rate_limited(ticket.epoch, self.clock())

    def observe(self, ratelimit: dict[str, Any] | None) -> None:
        """A reply came, with the provider's rate-limit headers read by `ratelimit_state`.

        A limit the provider states is learned at once for what panel.toml leaves unset.
        When the provider says nothing is left, wait for a slot: used slots come back spread
        over the time until the limit is whole again, so the next frees after about reset / used.
        """
        now = self.clock()
        if ratelimit:
            self._learn_limit("requests", ratelimit.get("limit_requests"), now)
            self._learn_limit("tokens", ratelimit.get("limit_tokens"), now)
        adaptive, known = self.adaptive, self.requests
        if adaptive is not None and known is not None and (adaptive.rate or 0) * MINUTE >= known.limit:
            adaptive.forget()  # back at the known limit, which holds alone
        if not ratelimit:
            return
        remaining = ratelimit.get("remaining_requests")
        reset = ratelimit.get("reset_requests_s")
        if remaining is None or reset is None or remaining > 0:
            return
        limit = ratelimit.get("limit_requests")
        used = max(1.0, float(limit) - float(remaining)) if limit else 1.0
        self.pause(float(reset) / used)

    def _learn_limit(self, what: str, stated: object, now: float) -> None:
        if not self._learn[what] or not isinstance(stated, int | float) or stated <= 0:
            return
        pacer = self.requests if what == "requests" else self.tokens
        if pacer is not None:
            if pacer.stated != stated:
                pacer.set_limit(float(stated))
        else:
            pacer = Pacer(float(stated), headroom=self.headroom)
            for entry in self._recent:
                if entry.sent > now - MINUTE and (what == "requests" or entry.amount):
                    pacer.take(1 if what == "requests" else entry.amount, entry.sent)
            if what == "requests":
                self.requests = pacer
            else:
                self.tokens = pacer
            self.source[what] = "headers"
            if not self._unknown():
                self._recent.clear()

    def _unknown(self) -> bool:
        """Whether a limit is still to be learned."""
        return any(self._learn[w] and self.source[w] is None for w in self.source)


def shared_limiters(members: Sequence[tuple[str, MemberOptions]]) -> list[RateLimiter]:
    """One limiter for each member, given as (its connection key, its options): members on
    one connection share one, since the provider counts them against one quota. A shared
    limiter keeps the tightest `rpm`, `tpm` and `headroom` any of its members states."""
    found: dict[str, RateLimiter] = {}
    for key in dict.fromkeys(key for key, _ in members):
        on_it = [options for k, options in members if k == key]
        found[key] = RateLimiter(
            rpm=_tightest(o.rpm for o in on_it),
            tpm=_tightest(o.tpm for o in on_it),
            headroom=_tightest(o.headroom for o in on_it) or DEFAULT_HEADROOM,
        )
    return [found[key] for key, _ in members]


def _tightest(values: Iterable[float | None]) -> float | None:
    stated = [v for v in values if v is not None]
    return min(stated) if stated else None


def _loop_time() -> float:
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()
