from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

from panel.backends.base import Request
from panel.backends.fake import FakeBackend
from panel.catalog import load_catalog
from panel.errors import FatalError, RateLimitError, TransientError
from panel.personas import load_persona
from panel.prompts import PromptSet
from panel.resources import data_dir
from panel.run.cells import Cell, Member
from panel.run.engine import Engine
from panel.run.retry import RetryPolicy
from panel.store import Store
from panel.testing.schema_fill import fill
from panel.testing.virtual_time import VirtualTimeLoop

from .conftest import EXAMPLE_CATALOG


async def _no_wait(seconds: float) -> None:
    """Retries go on at once: these tests count tries, they do not time them."""


FAST = RetryPolicy(attempts=3, sleep=_no_wait)


def _run(tmp_path: Path, backend: FakeBackend, retry: RetryPolicy = FAST) -> tuple[Store, list[object]]:
    store = Store(tmp_path / "runs")
    store.create_run("r", "test", None, {}, [], [])
    tool = load_catalog(EXAMPLE_CATALOG).get("ollama")
    persona = load_persona(data_dir("personas") / "skeptic.yaml")
    engine = Engine(store, "r", PromptSet(), [Member(backend, 1)], retry=retry)
    # On virtual time: the member's pauses after a 429 take none of the test's.
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        stats = runner.run(engine.run(lambda b: iter([Cell(tool, persona, b)]), 1))
    return store, [stats]


def _valid(request: Request) -> str:
    return json.dumps(fill(request.schema, "x"))


def test_invalid_reply_is_reasked_once_with_the_error(tmp_path: Path) -> None:
    asked: list[Request] = []

    def responder(request: Request, n: int) -> str:
        asked.append(request)
        return "not json at all" if n == 1 else _valid(request)

    store, _ = _run(tmp_path, FakeBackend(responder=responder))
    (row,) = store.reviews("r")
    assert row.valid and row.asks == 2 and row.verdict in ("ship", "skip")
    second = asked[1].messages
    assert second[-2] == {"role": "assistant", "content": "not json at all"}
    assert "not valid JSON" in second[-1]["content"]
    asks = [r[0] for r in store.db.execute("SELECT ask FROM requests ORDER BY id")]
    assert asks == [1, 2]
    store.close()


def test_still_invalid_after_reask_is_stored_failed_with_reason_and_raw_reply(
    tmp_path: Path,
) -> None:
    def responder(request: Request, n: int) -> str:
        data = fill(request.schema, "x")
        del data["verdict"]
        return json.dumps(data)

    store, _ = _run(tmp_path, FakeBackend(responder=responder))
    (row,) = store.reviews("r")
    assert not row.valid and row.verdict is None and row.asks == 2
    assert row.error is not None and "invalid after re-ask" in row.error and "verdict" in row.error
    assert row.raw_reply is not None and '"answers"' in row.raw_reply
    store.close()


def test_transient_errors_are_retried_then_succeed(tmp_path: Path) -> None:
    def responder(request: Request, n: int) -> str:
        if n < 3:
            raise TransientError("503 from provider", status=503)
        return _valid(request)

    store, _ = _run(tmp_path, FakeBackend(responder=responder))
    (row,) = store.reviews("r")
    assert row.valid
    attempts = store.db.execute("SELECT attempts FROM replies").fetchone()[0]
    assert attempts == 3
    store.close()


def test_fatal_error_is_not_retried_and_fails_the_review(tmp_path: Path) -> None:
    backend = FakeBackend(responder=lambda request, n: (_ for _ in ()).throw(FatalError("401 bad key")))
    store, _ = _run(tmp_path, backend)
    (row,) = store.reviews("r")
    assert not row.valid and row.error == "fatal error from fake:schema: 401 bad key"
    assert backend.sent == 1
    status = store.db.execute("SELECT status FROM requests").fetchone()[0]
    assert status == "error"
    store.close()


def test_every_request_and_reply_is_recorded(tmp_path: Path) -> None:
    store, _ = _run(tmp_path, FakeBackend())
    req = store.db.execute("SELECT * FROM requests").fetchone()
    rep = store.db.execute("SELECT * FROM replies").fetchone()
    assert req["status"] == "done" and req["member"] == "fake:schema"
    messages = json.loads(req["messages"])
    assert messages[0]["role"] == "system" and "TOOL DATA START" in messages[1]["content"]
    assert json.loads(req["settings"])["seed"] == 1234
    assert rep["input_tokens"] > 0 and rep["output_tokens"] > 0 and rep["raw_text"]
    store.close()


def test_retry_callbacks_fire_only_before_a_real_retry() -> None:
    from panel.run.retry import call_with_retries

    seen: list[float] = []
    slept: list[float] = []

    async def always_busy() -> str:
        raise TransientError("503", status=503, retry_after=0.5)

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def run() -> None:
        policy = RetryPolicy(attempts=3, max_hint=1, sleep=sleep)
        await call_with_retries(always_busy, policy, lambda e, w: seen.append(w))

    with contextlib.suppress(TransientError):
        asyncio.run(run())
    assert seen == slept == [0.5, 0.5]  # three tries, two waits between them


def test_a_request_left_unanswered_by_a_dead_process_is_lost_and_charged_at_its_worst_case(
    tmp_path: Path,
) -> None:
    from panel.run.pricing import Price
    from panel.store import CellKey

    store = Store(tmp_path / "runs")
    store.create_run("r", "test", None, {}, [], [])
    # What a process killed mid-request leaves: the request recorded, its reply never stored.
    key = CellKey("ollama", "skeptic", "fake:schema")
    store.begin_request("r", key, "fake", "schema", 1, [], "s", {}, "k", reserved_usd=0.25)
    tool = load_catalog(EXAMPLE_CATALOG).get("ollama")
    persona = load_persona(data_dir("personas") / "skeptic.yaml")
    member = Member(FakeBackend(), 1, price=Price(0.0, 0.0))
    engine = Engine(store, "r", PromptSet(), [member], retry=FAST, max_cost=1.0)
    stats = asyncio.run(engine.run(lambda b: iter([Cell(tool, persona, b)]), 1))
    assert stats.lost == 1 and stats.spent == 0.25 and stats.valid == 1
    statuses = [r[0] for r in store.db.execute("SELECT status FROM requests ORDER BY id")]
    assert statuses == ["lost", "done"]
    assert store.spent("r") == 0.25
    store.close()


def test_429s_spend_no_attempts_but_transient_faults_do(tmp_path: Path) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    def responder(request: Request, n: int) -> str:
        if n in (1, 3):
            raise TransientError("503 from provider", status=503)
        if n < 12:
            raise RateLimitError("429 from provider", status=429, retry_after=2.0)
        return _valid(request)

    # Three attempts: two faults leave one, which nine 429s in between do not take.
    store, _ = _run(tmp_path, FakeBackend(responder=responder), RetryPolicy(attempts=3, sleep=sleep))
    (row,) = store.reviews("r")
    assert row.valid
    assert store.db.execute("SELECT attempts FROM replies").fetchone()[0] == 12
    assert waits.count(2.0) == 9
    store.close()


def test_waiting_out_429s_is_bounded_by_time(tmp_path: Path) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    def always_busy(request: Request, n: int) -> str:
        raise RateLimitError("429 from provider", status=429, retry_after=60.0)

    policy = RetryPolicy(attempts=3, max_rate_wait=300.0, sleep=sleep)
    store, _ = _run(tmp_path, FakeBackend(responder=always_busy), policy)
    (row,) = store.reviews("r")
    assert not row.valid and row.error is not None and row.error.startswith("rate_limit error")
    assert waits == [60.0] * 5  # five minutes of waits; a sixth would pass max_rate_wait
    store.close()


def test_every_request_is_on_disk_before_it_is_sent_while_commits_are_grouped(tmp_path: Path) -> None:
    """Writes are committed in groups, but a request reaches the backend only once another
    process (what `--resume` after a kill -9 would be) can read it; replies and reviews of
    the run are all committed when it ends."""
    import sqlite3

    db_path = tmp_path / "runs" / "panel.db"
    seen: list[tuple[int, int]] = []

    def responder(request: Request, n: int) -> str:
        with contextlib.closing(sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)) as other:
            pending = other.execute("SELECT COUNT(*) FROM requests WHERE status = 'pending'").fetchone()[0]
            answered = other.execute("SELECT COUNT(*) FROM replies").fetchone()[0]
        seen.append((pending, answered))
        return _valid(request)

    store = Store(tmp_path / "runs")
    store.create_run("r", "test", None, {}, [], [])
    tools = list(load_catalog(EXAMPLE_CATALOG))[:3]
    personas = [load_persona(data_dir("personas") / f"{p}.yaml") for p in ("skeptic", "builder")]
    backend = FakeBackend(responder=responder)
    engine = Engine(store, "r", PromptSet(), [Member(backend, 4)], retry=FAST)
    cells = [Cell(t, p, backend) for t in tools for p in personas]
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        stats = runner.run(engine.run(lambda b: iter(cells), len(cells)))
    assert stats.valid == 6 and len(seen) == 6
    # Each send saw its own request (at least) committed as pending by then.
    assert all(pending >= 1 for pending, _ in seen)
    with contextlib.closing(sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)) as other:
        assert other.execute("SELECT COUNT(*) FROM reviews").fetchone()[0] == 6
        assert other.execute("SELECT COUNT(*) FROM requests WHERE status = 'done'").fetchone()[0] == 6
    store.close()


def test_cache_keys_are_the_sha256_of_the_sorted_material(tmp_path: Path) -> None:
    """Keys are the sha256 of the request as sent, in the documented JSON: a store's rows can
    be checked (and found again) by anyone who follows `cache_key`'s docstring."""
    import hashlib

    from panel.backends.base import Sampling
    from panel.run.cache_key import cache_key

    tool = load_catalog(EXAMPLE_CATALOG).get("ollama")
    for persona_id in ("skeptic", "builder"):
        persona = load_persona(data_dir("personas") / f"{persona_id}.yaml")
        backend = FakeBackend()
        request = Cell(tool, persona, backend).request(PromptSet(), Sampling(seed=7))
        schema = json.dumps(request.schema, sort_keys=True).encode()
        material = {
            "backend": backend.name,
            "persona": persona.version,
            "request": {
                "model": backend.model,
                "messages": request.messages,
                "schema": "sha256:" + hashlib.sha256(schema).hexdigest(),
                "sampling": request.sampling.as_dict(),
            },
            "sampling": request.sampling.as_dict(),
            "source": backend.identity(),
        }
        whole = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
        assert cache_key(backend, request, persona.version) == whole
