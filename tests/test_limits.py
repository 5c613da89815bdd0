from __future__ import annotations

import asyncio
import bisect
import itertools

import pytest

from panel.run.limits import Pacer, RateLimiter


def _max_in_window(times: list[float], window: float = 60.0) -> int:
    """The most sends inside any half-open window (t - window, t].

    A nanosecond of slack on the open end: float sums put a send exactly one window after
    another a hair inside it, a boundary no provider's clock resolves.
    """
    return max(bisect.bisect_right(times, t) - bisect.bisect_right(times, t - window + 1e-9) for t in times)


def _simulate(pacer: Pacer, n: int, amount: float = 1.0) -> list[float]:
    now, sent = 0.0, []
    for _ in range(n):
        now += pacer.delay(amount, now)
        pacer.take(amount, now)
        sent.append(now)
    return sent


def test_pacer_spreads_requests_evenly_at_the_limit() -> None:
    sent = _simulate(Pacer(600, headroom=1.0), 1000)
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(sent)}
    assert gaps == {0.1}
    assert _max_in_window(sent) <= 600
    assert 1000 / (sent[-1] + 0.1) == pytest.approx(10.0)  # requests per second


def test_headroom_keeps_every_window_under_the_limit() -> None:
    sent = _simulate(Pacer(600, headroom=0.98), 2000)
    assert _max_in_window(sent) <= 588
    assert 60 * len(sent) / sent[-1] >= 0.97 * 600


def test_tokens_are_paced_by_size() -> None:
    pacer = Pacer(60_000, headroom=1.0)  # 1,000 tokens a second
    sent = _simulate(pacer, 10, amount=500)
    assert sent[-1] == pytest.approx(4.5)


def test_adjust_gives_back_unused_tokens() -> None:
    pacer = Pacer(60_000, headroom=1.0)
    entry = pacer.take(3000, 0.0)
    assert pacer.delay(1000, 0.0) == pytest.approx(3.0)
    pacer.adjust(entry, 1000)
    assert pacer.delay(1000, 0.0) == pytest.approx(1.0)


def test_a_late_reply_corrects_its_own_reservation_not_the_newest() -> None:
    pacer = Pacer(1000, headroom=1.0)
    first = pacer.take(500, 0.0)  # reserved 500, will use 100
    pacer.take(400, 1.0)  # a second request goes before the first reply is back
    pacer.adjust(first, 100)
    # At 60.5 s the first has left the window; the second's 400 tokens are still in it.
    assert pacer.delay(980, 60.5) > 0
    assert pacer.delay(600, 60.5) == 0


def test_usage_above_the_estimate_is_charged() -> None:
    pacer = Pacer(1000, headroom=1.0)
    entry = pacer.take(100, 0.0)
    pacer.adjust(entry, 900)
    assert pacer.delay(200, 0.0) > 0


def test_window_cap_holds_after_a_burst_of_credit() -> None:
    pacer = Pacer(120, headroom=1.0)
    for i in range(120):
        pacer.take(1, i * 0.5)
    assert pacer.delay(1, 59.9) > 0  # the window is full, even though pacing alone would allow it


class FakeTime:
    """A clock that only its own sleep moves: waits are recorded, never spent."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_provider_headers_tighten_and_429_pauses() -> None:
    time = FakeTime()
    limiter = RateLimiter(rpm=6000, clock=time, sleep=time.sleep)
    pace = 60 / (6000 * 0.98)  # seconds between two requests at the limit less headroom

    async def scenario() -> None:
        await limiter.acquire()
        assert time.slept == []
        limiter.observe({"remaining_requests": 3, "limit_requests": 10, "reset_requests_s": 5.0})
        await limiter.acquire()  # the provider says some are left: our own pace holds
        assert time.slept == [pytest.approx(pace)]
        limiter.observe({"remaining_requests": 0, "limit_requests": 10, "reset_requests_s": 5.0})
        await limiter.acquire()  # nothing left: wait for one slot, 5 s over 10 used
        assert time.slept[-1] == pytest.approx(0.5)
        limiter.observe({"remaining_requests": 0, "reset_requests_s": 2.0})
        await limiter.acquire()  # no limit given: wait the whole reset
        assert time.slept[-1] == pytest.approx(2.0)
        limiter.pause(30.0)
        await limiter.acquire()
        assert time.slept[-1] == pytest.approx(30.0)

    asyncio.run(scenario())
    assert len(time.slept) == 4 and limiter.waited == pytest.approx(sum(time.slept))


def test_no_limits_means_no_waiting() -> None:
    time = FakeTime()
    limiter = RateLimiter(clock=time, sleep=time.sleep)

    async def many() -> None:
        for _ in range(1000):
            await limiter.acquire(500)

    asyncio.run(many())
    assert time.slept == [] and limiter.waited == 0


def test_limits_pace_the_sleeps_the_limiter_asks_for() -> None:
    time = FakeTime(0.0)
    limiter = RateLimiter(rpm=60, tpm=6000, headroom=1.0, clock=time, sleep=time.sleep)

    async def sends() -> list[float]:
        sent = []
        for _ in range(5):
            await limiter.acquire(200)  # tokens are the tighter limit: 200 of 100 a second
            sent.append(time.now)
        return sent

    assert asyncio.run(sends()) == pytest.approx([0.0, 2.0, 4.0, 6.0, 8.0])
