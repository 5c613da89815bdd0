"""How the engine treats a member's faults: our own bugs, 429 pauses and the cap on waits.

Time is fake: the limiter runs on a clock that only its sleep moves, and retry waits are
recorded instead of slept, so every wait is checked exactly and none is spent.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from panel.backends import fake as fake_module
from panel.backends.base import Request
from panel.backends.fake import FakeBackend
from panel.backends.schema_fill import fill
from panel.catalog import load_catalog
from panel.errors import BackendBug, RateLimitError
from panel.personas import load_persona
from panel.prompts import PromptSet
from panel.resources import data_dir
from panel.run.cells import Cell, Member
from panel.run.engine import Engine
from panel.run.limits import RateLimiter
from panel.run.retry import RetryPolicy
from panel.store import Store

from .conftest import EXAMPLE_CATALOG

TOOL = load_catalog(EXAMPLE_CATALOG).get("ollama")
PERSONA = load_persona(data_dir("personas") / "skeptic.yaml")


class FakeTime:
    """A clock that only its own sleep moves; each sleep lets the other workers run."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def _valid(request: Request) -> str:
    return json.dumps(fill(request.schema, "x"))


def _run(tmp_path: Path, member: Member, cells: int, retry: RetryPolicy | None = None) -> tuple[Store, Any]:
    store = Store(tmp_path / "runs")
    store.create_run("r", "test", None, {}, [], [])
    engine = Engine(store, "r", PromptSet(), [member], retry=retry or RetryPolicy())
    # Repeats make distinct cells of one tool and persona.
    work = lambda b: iter([Cell(TOOL, PERSONA, b, repeat=i) for i in range(cells)])  # noqa: E731
    try:
        return store, asyncio.run(engine.run(work, cells))
    except BaseException:
        store.close()
        raise


def _recorder(waits: list[float]) -> Any:
    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    return sleep


def test_a_429_pauses_every_worker_of_the_member(tmp_path: Path) -> None:
    time = FakeTime()
    started: list[float] = []

    def responder(request: Request, n: int) -> str:
        started.append(time.now)
        if n == 1:
            raise RateLimitError("429 from provider", status=429, retry_after=30.0)
        return _valid(request)

    retry_waits: list[float] = []
    limiter = RateLimiter(clock=time, sleep=time.sleep)
    member = Member(FakeBackend(responder=responder), concurrency=4, limiter=limiter)
    store, stats = _run(tmp_path, member, cells=8, retry=RetryPolicy(sleep=_recorder(retry_waits)))
    store.close()
    assert stats.valid == 8 and stats.retries == 1 and retry_waits == [30.0]
    # Four workers share the member; once one of them met the 429, none sent before 30 s.
    assert started[0] == 0.0
    assert started[1:] == [30.0] * 8


def test_a_wait_hint_above_max_hint_is_capped(tmp_path: Path) -> None:
    time = FakeTime()
    started: list[float] = []

    def responder(request: Request, n: int) -> str:
        started.append(time.now)
        if n == 1:
            raise RateLimitError("429 from provider", status=429, retry_after=3600.0)
        return _valid(request)

    retry_waits: list[float] = []
    limiter = RateLimiter(clock=time, sleep=time.sleep)
    member = Member(FakeBackend(responder=responder), concurrency=1, limiter=limiter)
    policy = RetryPolicy(max_hint=60.0, sleep=_recorder(retry_waits))
    store, stats = _run(tmp_path, member, cells=1, retry=policy)
    store.close()
    assert stats.valid == 1
    assert retry_waits == [60.0]  # not the hour the provider asked for
    assert started == [0.0, 60.0]  # and the member's pause is capped the same


def test_a_bug_in_a_backend_stops_the_run_and_says_where(tmp_path: Path) -> None:
    def responder(request: Request, n: int) -> str:
        reply: dict[str, str] = {}
        return reply["choices"]  # what an adapter reading a reply wrongly does

    member = Member(FakeBackend(responder=responder), concurrency=2)
    with pytest.raises(BackendBug) as info:
        _run(tmp_path, member, cells=4)
    message = str(info.value)
    line = _line_of("result = self.responder(request, self.sent)")
    assert message.startswith(f"bug in panel at panel/backends/fake.py:{line} while fake:schema answered")
    assert "KeyError: 'choices'" in message and "\n" not in message
    store = Store(tmp_path / "runs")
    assert store.reviews("r") == []  # not stored as a failed review
    store.close()


def test_an_sdk_error_the_adapter_did_not_map_fails_only_that_review(tmp_path: Path) -> None:
    def responder(request: Request, n: int) -> str:
        raise RuntimeError("the SDK gave up")

    store, stats = _run(tmp_path, Member(FakeBackend(responder=responder), concurrency=1), cells=2)
    rows = store.reviews("r")
    store.close()
    assert stats.failed == 2
    assert [r.error for r in rows] == ["fatal error from fake:schema: RuntimeError: the SDK gave up"] * 2


def test_an_error_raised_inside_a_library_is_not_called_our_bug(tmp_path: Path) -> None:
    from tenacity import wait_random_exponential

    def responder(request: Request, n: int) -> str:
        # An AttributeError raised in an installed library's code: an SDK choking on an odd
        # reply looks like this, and fails the review like any error we did not map.
        wait_random_exponential(multiplier="x")(None)  # type: ignore[arg-type]
        return _valid(request)

    store, stats = _run(tmp_path, Member(FakeBackend(responder=responder), concurrency=1), cells=1)
    (row,) = store.reviews("r")
    store.close()
    assert stats.failed == 1 and row.error is not None
    assert row.error.startswith("fatal error from fake:schema: AttributeError")


def test_cli_prints_a_backend_bug_on_one_line_and_exits_70(
    cli: Any, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_fill(schema: dict[str, Any], seed: str) -> Any:
        return schema["no-such-key"]

    monkeypatch.setattr(fake_module, "fill", broken_fill)
    result = cli("compare", "ollama", "vllm", "-b", "fake", "--out", str(runs_dir))
    assert result.code == 70
    # The progress line may precede it on stderr; the bug is the one line after it.
    line = result.err.strip().splitlines()[-1]
    where = _line_of("fill(request.schema, seed)")
    assert re.fullmatch(
        rf"error: bug in panel at panel/backends/fake\.py:{where} while fake:schema answered: "
        r"KeyError: 'no-such-key' \(the run stopped; please report this\)",
        line,
    ), line
    assert "Traceback" not in result.out + result.err


def _line_of(code: str) -> int:
    """The line of fake.py that holds `code`, so the test follows edits to the file."""
    lines = Path(fake_module.__file__).read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if code in text)
