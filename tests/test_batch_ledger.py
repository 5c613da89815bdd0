"""The batch ledger in the run store: batches and the requests they carry, across crashes."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from panel.backends.base import Reply
from panel.store import MIGRATIONS, CellKey, Store, custom_id_for, normal_state

from .conftest import ROOT


def _store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "runs")
    store.create_run("r", "test", None, {}, [], [])
    return store


def _requests(store: Store, n: int, member: str = "openai:m", reserved: float = 0.01) -> list[int]:
    return [
        store.begin_request("r", CellKey(f"t{i}", "p", member), "openai", "m", 1, [], "s", {}, None, reserved)
        for i in range(n)
    ]


def _batch(store: Store, ids: list[int], member: str = "openai:m", attempt: int = 1) -> str:
    pairs = [(i, custom_id_for(i)) for i in ids]
    return store.new_batch("r", member, "openai", attempt, 0.01 * len(ids), pairs)


def _status(store: Store, request_id: int) -> str:
    return str(store.db.execute("SELECT status FROM requests WHERE id = ?", (request_id,)).fetchone()[0])


def test_a_new_batch_and_its_requests_are_written_in_one_transaction(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ids = _requests(store, 3)
    statements: list[str] = []
    store.db.set_trace_callback(statements.append)
    key = _batch(store, ids)
    store.db.set_trace_callback(None)
    assert [s for s in statements if s.split()[0] in ("BEGIN", "COMMIT")] == ["BEGIN IMMEDIATE", "COMMIT"]
    (batch,) = store.batches("r")
    assert (batch.batch_key, batch.state, batch.requests, batch.attempt) == (key, "submitting", 3, 1)
    assert key == "b-r-openai-m-1" and batch.provider_batch_id is None
    # one bad pair (a request that does not exist) and nothing of the batch is written
    with pytest.raises(ValueError, match="unknown or already in a batch"):
        store.new_batch("r", "openai:m", "openai", 1, 0.0, [(ids[0] + 100, "x1"), (ids[0] + 101, "x2")])
    with pytest.raises(ValueError, match="already in a batch"):
        _batch(store, ids[:1])  # a request goes out in one batch only
    assert [b.batch_key for b in store.batches("r")] == [key]
    assert store.db.execute("SELECT COUNT(*) FROM batch_requests").fetchone()[0] == 3


def test_a_custom_id_maps_back_to_its_one_request(tmp_path: Path) -> None:
    store = _store(tmp_path)
    a, b = _requests(store, 2, "openai:m"), _requests(store, 1, "mistral:m")
    key = _batch(store, a)
    _batch(store, b, member="mistral:m")
    assert store.batch_request(custom_id_for(a[1]), "r", "openai:m") == a[1]
    assert store.batch_request(custom_id_for(a[1]), "r", "mistral:m") is None  # another member's batch
    assert store.batch_request("req-999999", "r", "openai:m") is None  # a line for an unknown custom_id
    assert store.batch_custom_ids(key) == [(custom_id_for(i), i) for i in a]
    with pytest.raises(ValueError, match="custom_id"):
        store.new_batch("r", "openai:m", "openai", 1, 0.0, [(a[0], "tool:persona/openai")])


def test_results_answer_a_batch_and_only_then_it_is_collected(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ids = _requests(store, 2)
    key = _batch(store, ids)
    store.batch_submitted(key, "batch_abc", normal_state("validating"), {"total": 2})
    store.batch_progress(key, normal_state("completed"), {"total": 2, "completed": 1, "failed": 1})
    store.finish_request(ids[0], Reply(text="{}"), 1)
    assert store.unanswered_in_batch(key) == [(custom_id_for(ids[1]), ids[1])]
    with pytest.raises(ValueError, match="1 requests without a reply"):
        store.batch_collected(key)
    store.finish_request(ids[1], None, 1, error="errored: server_error")
    store.batch_collected(key)
    (batch,) = store.batches("r")
    assert (batch.provider_batch_id, batch.state, batch.counts["failed"]) == ("batch_abc", "collected", 1)
    assert store.batches("r", unfinished_only=True) == []


def test_provider_states_are_normalised_and_unknown_ones_refused(tmp_path: Path) -> None:
    assert [normal_state(s) for s in ("SUCCESS", "TIMEOUT_EXCEEDED", "canceling", "QUEUED", "RUNNING")] == [
        "ended",
        "expired",
        "cancelling",
        "validating",
        "in_progress",
    ]
    store = _store(tmp_path)
    key = _batch(store, _requests(store, 1))
    with pytest.raises(ValueError, match="not one of"):
        store.batch_progress(key, "completed", {})  # the provider's name, not ours
    with pytest.raises(KeyError):
        store.batch_progress("b-r-none-9", "ended", {})


_CRASH = """
import os, signal
from panel.store import CellKey, Store, custom_id_for
store = Store({root!r})
store.create_run("r", "test", None, {{}}, [], [])
store.group_commits(True)
store.begin_request("r", CellKey("live", "p", "local"), "local", "m", 1, [], "s", {{}}, None, 0.5)
with store.transaction():
    ids = [store.begin_request("r", CellKey(f"t{{i}}", "p", "openai:m"), "openai", "m", 1, [], "s", {{}},
                               reserved_usd=0.25) for i in range(3)]
    store.new_batch("r", "openai:m", "openai", 1, 0.75, [(i, custom_id_for(i)) for i in ids])
store.commit()  # durable before the submit call
os.kill(os.getpid(), signal.SIGKILL)  # dies before the provider's answer is recorded
"""


def test_a_crash_before_the_provider_answers_leaves_a_submitting_batch_and_loses_only_live_requests(
    tmp_path: Path,
) -> None:
    root = tmp_path / "runs"
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_CRASH.format(root=str(root)))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    store = Store(root)
    (batch,) = store.batches("r", unfinished_only=True)
    assert (batch.state, batch.provider_batch_id, batch.requests) == ("submitting", None, 3)
    assert store.mark_lost("r") == 1  # the live request only
    ids = [rid for _, rid in store.batch_custom_ids(batch.batch_key)]
    assert [_status(store, i) for i in ids] == ["pending"] * 3
    assert store.lost_requests("r") == 1
    assert store.spent("r") == pytest.approx(0.5)  # the lost live request at its worst case
    assert store.in_flight_reserved("r") == pytest.approx(0.75)  # the batch: reserved, not spent


def test_mark_lost_keeps_requests_of_batches_in_flight_pending(tmp_path: Path) -> None:
    store = _store(tmp_path)
    live = _requests(store, 1, "local")[0]
    out = _requests(store, 2)
    key = _batch(store, out)
    store.batch_submitted(key, "msgbatch_1", "in_progress", {"processing": 2})
    store.batch_progress(key, "ended", {"succeeded": 2})  # ended, not yet downloaded
    store.close()
    store = Store(tmp_path / "runs")
    assert store.mark_lost("r") == 1
    assert (_status(store, live), [_status(store, i) for i in out]) == ("lost", ["pending", "pending"])
    assert [b.batch_key for b in store.batches("r", unfinished_only=True)] == [key]


def test_the_batch_ledger_migrates_a_store_made_by_the_previous_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import panel.store.connection as connection

    monkeypatch.setattr(connection, "MIGRATIONS", MIGRATIONS[:3])
    old = _store(tmp_path)
    # A request as that schema held it (today's code writes columns later migrations add).
    rid = old.db.execute(
        """INSERT INTO requests (run_id, tool_id, persona_id, member, repeat, backend, model, ask,
               messages, schema_name, settings, created_at)
           VALUES ('r', 't0', 'p', 'openai:m', 0, 'openai', 'm', 1, '[]', 's', '{}', 0)"""
    ).lastrowid
    assert rid is not None
    old.commit()
    old.close()
    assert (
        not sqlite3.connect(tmp_path / "runs" / "panel.db")
        .execute("SELECT 1 FROM sqlite_master WHERE name = 'batches'")
        .fetchall()
    )
    monkeypatch.undo()
    store = Store(tmp_path / "runs")
    names = [r[0] for r in store.db.execute("SELECT name FROM migrations ORDER BY rowid")]
    assert names == [m.__name__ for m in MIGRATIONS] and "_m004_batch_ledger" in names
    key = store.new_batch("r", "openai:m", "openai", 1, 0.0, [(rid, custom_id_for(rid))])
    assert store.batch_request(custom_id_for(rid), "r", "openai:m") == rid
    indexes = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"batches_run_state", "batch_requests_custom"} <= indexes
    assert store.batches("r")[0].batch_key == key
