"""kill -9 on the batch route, at three moments, then a resume: nothing is submitted twice.

A child process runs a batch review against the loopback provider (in this process) and is
killed with SIGKILL once the store shows the moment wanted; the run is then resumed here.
The provider's counters say whether any custom_id reached it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from panel.backends.batch import BatchEntry, BatchStatus
from panel.run.plan import RunOptions, plan_resume, run_plan
from panel.store import Store
from panel.testing.fake_provider import FakeProvider
from tests.factories import catalog_file

from .batches import KEY

ROOT = Path(__file__).resolve().parent.parent
# Each wait polls the store at most this many times, pausing this long between polls.
_POLLS, _PAUSE_S = 3000, 0.01

_CHILD = """
import asyncio, sys
from pathlib import Path
from panel.backends.registry import parse_member
from panel.catalog import load_catalog
from panel.personas import load_personas
from panel.resources import data_dir
from panel.run.plan import Plan, RunOptions, build_members, run_plan
from panel.store import Store

catalog, base_url, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
spec = parse_member("openai:gpt-4.1-mini", {"base_url": base_url, "timeout": 30, "route": "batch"})
plan = Plan(tools=list(load_catalog(catalog)), personas=list(load_personas(data_dir("personas")).values()),
            members=build_members([spec]), specs=[spec], catalog_path=catalog)
with Store(out) as store:
    asyncio.run(run_plan(plan, store, "test", options=RunOptions(poll_interval=0.02)))
"""


def _query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    if not db.is_file():
        return []
    with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=5)) as conn:
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.OperationalError:  # the child has not made its tables yet
            return []


def _count(db: Path, sql: str) -> int:
    rows = _query(db, sql)
    return int(rows[0][0]) if rows else 0


def _wait(child: subprocess.Popen[bytes], ready: Callable[[], bool]) -> None:
    for _ in range(_POLLS):
        if ready():
            return
        assert child.poll() is None, "the child ended before the moment came"
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(_PAUSE_S)
    child.kill()
    child.wait()
    pytest.fail("the moment never came")


def _kill_when(child: subprocess.Popen[bytes], ready: Callable[[], bool]) -> None:
    _wait(child, ready)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()


def _resume(fake: FakeProvider, out: Path) -> tuple[str, Any]:
    fake.configure(batch_seconds=0, batch_error_rate=0.0)
    fake.advance_batches()
    with Store(out) as store:
        (run_id,) = [r[0] for r in store.db.execute("SELECT id FROM runs")]
        plan = plan_resume(store, run_id)
        _, stats = asyncio.run(
            run_plan(plan, store, "test", options=RunOptions(poll_interval=0.0), run_id=run_id)
        )
        reviews = store.reviews(run_id)
        assert len(reviews) == len(plan.tools) * len(plan.personas)
        assert all(r.valid or r.error for r in reviews)
        assert all(b.state == "collected" for b in store.batches(run_id))
    return run_id, stats


def _spawn(fake: FakeProvider, tmp_path: Path, tools: int) -> tuple[subprocess.Popen[bytes], Path]:
    out = tmp_path / "runs"
    catalog = catalog_file(tmp_path / "catalog.jsonl", tools)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": KEY}
    command = [sys.executable, "-c", _CHILD, str(catalog), fake.base_url("openai"), str(out)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out


def _no_twice(fake: FakeProvider) -> None:
    batches = fake.stats()["batches"]
    assert fake.stats()["batch_duplicates"] == 0 and batches["redundant"] == 0
    assert fake.stats()["requests"] == 0  # nothing went live either


def test_killed_while_the_batch_is_in_progress(fake: FakeProvider, tmp_path: Path) -> None:
    fake.configure(batch_seconds=3600)
    child, out = _spawn(fake, tmp_path, tools=10)
    db = out / "panel.db"
    _kill_when(child, lambda: bool(_query(db, "SELECT 1 FROM batches WHERE provider_batch_id IS NOT NULL")))
    _resume(fake, out)
    assert fake.stats()["batches"]["created"]["openai"] == 1
    _no_twice(fake)


def test_killed_while_the_results_are_being_stored(fake: FakeProvider, tmp_path: Path) -> None:
    fake.configure(batch_seconds=3600)
    child, out = _spawn(fake, tmp_path, tools=500)
    db = out / "panel.db"
    _wait(child, lambda: _count(db, "SELECT COUNT(*) FROM batches WHERE provider_batch_id IS NOT NULL") > 0)
    fake.advance_batches()
    # 2,000 results are committed 256 at a time: stop it with some stored, not all.
    _kill_when(child, lambda: _count(db, "SELECT COUNT(*) FROM replies") > 0)
    stored = _count(db, "SELECT COUNT(*) FROM replies")
    assert 0 < stored < 2000 and _count(db, "SELECT COUNT(*) FROM batches WHERE state = 'collected'") == 0
    _resume(fake, out)
    assert fake.stats()["batches"]["created"]["openai"] == 1
    _no_twice(fake)


def test_killed_while_a_follow_up_batch_is_in_flight(fake: FakeProvider, tmp_path: Path) -> None:
    fake.configure(batch_seconds=3600, batch_error_rate=0.3, fault_seed=5)
    child, out = _spawn(fake, tmp_path, tools=10)
    db = out / "panel.db"
    submitted = "SELECT COUNT(*) FROM batches WHERE provider_batch_id IS NOT NULL"
    _wait(child, lambda: _count(db, submitted) >= 1)
    fake.advance_batches()  # the first batch ends; the follow-up of its errored requests waits
    _kill_when(child, lambda: _count(db, submitted) >= 2)
    _resume(fake, out)
    _no_twice(fake)


def test_a_batch_the_provider_took_but_the_ledger_never_heard_of_is_found_again(
    fake: FakeProvider, tmp_path: Path
) -> None:
    """The crash falls between the provider accepting a batch and the ledger recording its id:
    the resume finds it by the batch key in its metadata instead of submitting it again."""
    from panel.backends.openai_batch import OpenAIBatchAPI

    class Dies(Exception):
        pass

    real = OpenAIBatchAPI.submit

    async def submit_then_die(
        self: OpenAIBatchAPI, entries: list[BatchEntry], metadata: dict[str, str]
    ) -> BatchStatus:
        await real(self, entries, metadata)
        raise Dies()

    out = tmp_path / "runs"
    child_catalog = catalog_file(tmp_path / "catalog.jsonl", 5)
    from panel.backends.registry import parse_member
    from panel.catalog import load_catalog
    from panel.personas import load_personas
    from panel.resources import data_dir
    from panel.run.plan import Plan, build_members

    spec = parse_member(
        "openai:gpt-4.1-mini", {"base_url": fake.base_url("openai"), "timeout": 5, "route": "batch"}
    )
    plan = Plan(
        tools=list(load_catalog(child_catalog)),
        personas=list(load_personas(data_dir("personas")).values()),
        members=build_members([spec]),
        specs=[spec],
        catalog_path=child_catalog,
    )
    OpenAIBatchAPI.submit = submit_then_die  # type: ignore[method-assign]
    try:
        with Store(out) as store, pytest.raises(Dies):
            asyncio.run(run_plan(plan, store, "test", options=RunOptions(poll_interval=0.0)))
    finally:
        OpenAIBatchAPI.submit = real  # type: ignore[method-assign]
    assert _query(out / "panel.db", "SELECT state, provider_batch_id FROM batches") == [("submitting", None)]
    _resume(fake, out)
    assert fake.stats()["batches"]["created"]["openai"] == 1
    _no_twice(fake)
