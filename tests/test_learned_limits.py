"""Limits that are learned: from the provider's headers, by trying (AIMD), or as configured.

The provider is the loopback provider's own rate window and headers (`Window`,
`wire.rate_headers`, read back by the backends' `ratelimit_state`), run in process on a
virtual clock (`VirtualTimeLoop`): a 600/minute limit counted per second over a whole
virtual minute and more takes no wall time, and every count below is the same on each run.
Requests reach the provider after a seeded network jitter, so pacing exactly at the limit
draws the odd 429, as it does against a real provider that counts per second.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from panel.backends._provider import error_for_status, ratelimit_state
from panel.backends.base import Backend, Reply, Request, Usage
from panel.backends.registry import parse_member
from panel.catalog import load_catalog
from panel.errors import BackendError, RateLimitError
from panel.personas import load_persona
from panel.prompts import PromptSet
from panel.resources import data_dir
from panel.run.cells import Cell, Member
from panel.run.engine import Engine
from panel.run.limits import RateLimiter
from panel.run.plan import build_members
from panel.run.retry import RetryPolicy
from panel.run.stats import RunStats
from panel.store import Store
from panel.testing import wire
from panel.testing.fake_provider import FakeProvider
from panel.testing.schema_fill import fill
from panel.testing.state import Knobs, Window
from panel.testing.virtual_time import VirtualTimeLoop

from .conftest import EXAMPLE_CATALOG

TOOL = load_catalog(EXAMPLE_CATALOG).get("ollama")
PERSONA = load_persona(data_dir("personas") / "skeptic.yaml")
REQUEST = Request(
    messages=[{"role": "user", "content": "review"}], schema=PERSONA.review_schema, schema_name="review"
)
LIMIT = 600  # requests a minute, as the headers state it
#: 600 a minute counted per second: 10 in any sliding second
PER_SECOND = Knobs(rpm=LIMIT // 60, rate_window=1.0, limit_period=60.0)


@dataclass
class Provider:
    """What the provider saw, on its own clock."""

    requests: int = 0
    rate_limited: int = 0
    over_limit_served: int = 0
    served_at: list[float] = field(default_factory=list)

    @property
    def rate_limited_share(self) -> float:
        return self.rate_limited / self.requests

    def fraction_of_limit(self, per_minute: float = LIMIT) -> float:
        """Requests served a minute, first to last, over the limit."""
        span = self.served_at[-1] - self.served_at[0]
        return (len(self.served_at) - 1) / span * 60 / per_minute


class SimulatedProvider(Backend):
    """A member whose provider is the loopback provider's rate window, with no sockets."""

    name = "sim"

    def __init__(self, knobs: Knobs, *, latency: float = 0.2, jitter: float = 0.02, seed: int = 7) -> None:
        super().__init__("limits")
        self.knobs = knobs
        self.latency = latency
        self.jitter = jitter
        self.rng = random.Random(seed)
        self.window = Window()
        self.seen = Provider()

    async def generate(self, request: Request) -> Reply:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(self.rng.uniform(0.0, self.jitter))  # on the way: counted on arrival
        now = loop.time()
        admitted, rate = self.window.decide(self.knobs, 1, now)
        self.seen.requests += 1
        self.seen.over_limit_served += admitted and self.window.over(self.knobs)
        await asyncio.sleep(self.latency)
        headers = wire.rate_headers("openai", rate, limits=self.knobs.rate_headers)
        if not admitted:
            self.seen.rate_limited += 1
            raise error_for_status("sim", 429, "Rate limit reached for requests", headers=headers)
        self.seen.served_at.append(now)
        text = json.dumps(fill(request.schema, str(self.seen.requests)))
        meta = {"ratelimit": ratelimit_state(headers)} if self.knobs.rate_headers else {}
        return Reply(text, Usage(300, 200), finish_reason="stop", meta=meta)


def review_all(
    tmp_path: Path, backend: SimulatedProvider, limiter: RateLimiter, cells: int = 900, concurrency: int = 8
) -> RunStats:
    """`cells` reviews through the engine, as `panel review` runs them, on virtual time."""
    random.seed(0)  # backoff jitter, where a 429 came with no wait hint
    store = Store(tmp_path / "runs")
    store.create_run("r", "test", None, {}, [], [])
    engine = Engine(store, "r", PromptSet(), [Member(backend, concurrency, limiter)], retry=RetryPolicy())
    work = lambda b: iter([Cell(TOOL, PERSONA, b, repeat=i) for i in range(cells)])  # noqa: E731
    try:
        with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
            return runner.run(engine.run(work, cells))
    finally:
        store.close()


def test_the_limit_in_the_providers_headers_is_learned_and_kept(tmp_path: Path) -> None:
    backend = SimulatedProvider(PER_SECOND)
    limiter = RateLimiter()
    stats = review_all(tmp_path, backend, limiter)
    seen = backend.seen
    assert stats.valid == stats.total and stats.failed == 0
    assert limiter.source["requests"] == "headers" and limiter.requests is not None
    assert limiter.requests.stated == LIMIT
    assert seen.rate_limited_share < 0.05, seen
    assert seen.fraction_of_limit() >= 0.85, seen.fraction_of_limit()
    assert seen.over_limit_served == 0


def test_without_headers_the_limit_is_found_by_trying(tmp_path: Path) -> None:
    knobs = Knobs(rpm=PER_SECOND.rpm, rate_window=1.0, rate_headers=False)
    backend = SimulatedProvider(knobs)
    limiter = RateLimiter()
    stats = review_all(tmp_path, backend, limiter)
    seen = backend.seen
    assert stats.valid == stats.total and stats.failed == 0
    assert limiter.source["requests"] is None and limiter.rpm is not None
    assert limiter.rpm == pytest.approx(LIMIT, rel=0.15)
    assert seen.rate_limited_share < 0.05, seen
    assert seen.fraction_of_limit() >= 0.85, seen.fraction_of_limit()


def test_a_configured_limit_is_reached_and_never_passed(tmp_path: Path) -> None:
    # Counted per minute, the limit a configured member paces to is all it can use.
    knobs = Knobs(rpm=LIMIT, rate_window=60.0)
    backend = SimulatedProvider(knobs)
    stats = review_all(tmp_path, backend, RateLimiter(rpm=LIMIT))
    seen = backend.seen
    assert stats.valid == stats.total
    assert seen.rate_limited == 0 and seen.over_limit_served == 0
    assert seen.fraction_of_limit() >= 0.95, seen.fraction_of_limit()


def test_headroom_keeps_a_per_second_count_free_of_429s(tmp_path: Path) -> None:
    # Requests reach this provider up to 0.1 s late: paced at 98% of the limit, some land
    # 11 in one of its seconds. The limiter lowers its own headroom after those few 429s;
    # a member configured with headroom 0.9 draws none at all.
    learned = SimulatedProvider(PER_SECOND, jitter=0.1)
    limiter = RateLimiter()
    review_all(tmp_path / "a", learned, limiter)
    assert 0 < learned.seen.rate_limited < 10
    assert limiter.requests is not None and limiter.requests.headroom < 0.98
    assert learned.seen.fraction_of_limit() >= 0.85

    configured = SimulatedProvider(PER_SECOND, jitter=0.1)
    review_all(tmp_path / "b", configured, RateLimiter(headroom=0.9))
    assert configured.seen.rate_limited == 0
    assert configured.seen.fraction_of_limit() == pytest.approx(0.9, abs=0.01)


def test_a_limit_stated_later_counts_the_requests_already_sent() -> None:
    clock = FakeTime()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)

    async def scenario() -> None:
        for _ in range(5):  # nothing known yet: no waiting
            limiter.settle(await limiter.acquire(100), 100)
        assert clock.slept == []
        limiter.observe(ratelimit_state({"anthropic-ratelimit-requests-limit": "60"}))
        await limiter.acquire(100)  # 60 a minute, less 2%: the sixth goes after five paced slots

    asyncio.run(scenario())
    assert limiter.source == {"requests": "headers", "tokens": None}
    assert clock.slept == [pytest.approx(5 * 60 / (60 * 0.98))]


def test_a_limit_the_provider_changes_is_followed_but_a_configured_one_wins() -> None:
    learned, configured = RateLimiter(), RateLimiter(rpm=100, tpm=5000)
    for limiter in (learned, configured):
        for stated in (500, 300):
            limiter.observe({"limit_requests": stated, "limit_tokens": 90_000})
    assert learned.requests is not None and learned.requests.stated == 300
    assert learned.tokens is not None and learned.tokens.stated == 90_000
    assert configured.requests is not None and configured.requests.stated == 100
    assert configured.tokens is not None and configured.tokens.stated == 5000


def test_aimd_backs_off_once_per_rate_and_climbs_while_replies_come() -> None:
    clock = FakeTime()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    busy = RateLimitError("429", status=429)

    async def scenario() -> None:
        tickets = [await limiter.acquire() for _ in range(12)]
        clock.now += 1.0
        for ticket in tickets[:10]:  # the provider served 10 of a second's sends...
            limiter.settle(ticket, 0)
        limiter.failed(tickets[10], busy)  # ...and refused the rest
        assert limiter.rpm == pytest.approx(0.9 * 10 * 60)
        limiter.failed(tickets[11], busy)  # sent before the back-off: no second one
        assert limiter.rpm == pytest.approx(0.9 * 10 * 60)
        after = await limiter.acquire()
        clock.now += 10.0
        limiter.settle(after, 0)  # ten seconds of replies: 1% of the rate a second
        assert limiter.rpm == pytest.approx(0.9 * 10 * 60 * 1.1)

    asyncio.run(scenario())
    assert limiter.adaptive is not None and limiter.adaptive.back_offs == 1


class FakeTime:
    """A clock that only its own sleep moves: waits are recorded, never spent."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


# --- through the real SDKs and the loopback provider over HTTP --------------------------------


def _member(provider: wire.Provider, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> Member:
    key_env = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}[provider]
    monkeypatch.setenv(key_env, "sk-test-learned-limits")
    spec = parse_member(
        f"{provider}:m", {"base_url": fake.base_url(provider), "timeout": 5, "concurrency": 2}
    )
    (member,) = build_members([spec])
    return member


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_member_with_no_limit_configured_learns_it_from_the_first_reply(
    provider: wire.Provider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeProvider(rpm=10, rate_window=1.0, limit_period=60.0) as fake:
        member = _member(provider, fake, monkeypatch)
        stats = _review(tmp_path, member, cells=3)
        seen = fake.stats()
    assert stats.valid == 3 and seen["admitted"] == 3 and len(seen["admitted_span"]) == 2
    assert member.limiter.source["requests"] == "headers" and member.limiter.rpm == LIMIT


def test_with_its_rate_headers_off_the_provider_still_says_when_to_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeProvider(rpm=1, rate_window=30.0, rate_headers=False) as fake:
        member = _member("openai", fake, monkeypatch)

        async def twice() -> tuple[Reply, BackendError]:
            try:
                first = await member.backend.generate(REQUEST)
                with pytest.raises(BackendError) as info:
                    await member.backend.generate(REQUEST)
                return first, info.value
            finally:
                await member.backend.aclose()

        reply, error = asyncio.run(twice())
    assert "ratelimit" not in reply.meta
    assert (
        isinstance(error, RateLimitError) and error.retry_after is not None and 29 < error.retry_after <= 30
    )


def _review(tmp_path: Path, member: Member, cells: int) -> RunStats:
    store = Store(tmp_path / "runs")
    store.create_run("r", "test", None, {}, [], [])
    engine = Engine(store, "r", PromptSet(), [member], retry=RetryPolicy())
    work = lambda b: iter([Cell(TOOL, PERSONA, b, repeat=i) for i in range(cells)])  # noqa: E731

    async def run() -> RunStats:
        try:
            return await engine.run(work, cells)
        finally:
            await member.backend.aclose()

    try:
        return asyncio.run(run())
    finally:
        store.close()
