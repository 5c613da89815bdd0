"""What the confidence remembers: each tool's previous run found without reading every earlier
review, the run's fit made once however many threads ask, and kept across an edit that leaves
what it was fitted to as it was."""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from panel.report import confidence, confidence_cache
from panel.report.confidence import cached_confidence, run_confidence
from panel.store import CellKey, Store
from tests.factories import personas, store_verdicts
from tests.factories import tool as a_tool


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    confidence_cache.clear()
    with Store(tmp_path) as s:
        yield s
    confidence_cache.clear()


def plan(store: Store, run_id: str, reviewed: Mapping[str, bool], status: str) -> None:
    """A run planning these tools, each with a review of persona p on a:x if ``reviewed``."""
    store.create_run(run_id, "test", None, {"members": ["a:x"]},
                     tools=[(t, "fp", {"id": t}) for t in reviewed],
                     personas=[("p", "v", {"id": "p"})])  # fmt: skip
    for tool, done in reviewed.items():
        if done:
            store.save_review(run_id, CellKey(tool, "p", "a:x"), "a", "x", data={"verdict": "ship"},
                              error=None, raw_reply=None, request_id=None, asks=1)  # fmt: skip
    store.finish_run(run_id, status)
    time.sleep(0.002)  # the store orders runs by when they were created


def test_previous_runs_skip_unfinished_runs_and_reach_past_the_newest(store: Store) -> None:
    plan(store, "oldest", {"a": True, "b": True, "c": True}, "done")
    plan(store, "older", {"a": True, "c": False}, "done")  # c planned, never reviewed
    plan(store, "stopped", {"a": True, "b": True, "c": True}, "stopped")
    plan(store, "newer", {"a": True}, "done")
    plan(store, "now", {"a": True, "b": True, "c": True, "d": True}, "done")
    plan(store, "later", {"a": True, "b": True}, "done")
    assert store.previous_runs("now") == {"a": "newer", "b": "oldest", "c": "oldest"}
    assert store.previous_runs("oldest") == {}
    assert store.previous_runs("later") == {"a": "now", "b": "now"}


def test_previous_runs_agree_with_reading_every_earlier_review(store: Store) -> None:
    rng = random.Random(7)
    runs = []
    for i in range(12):
        reviewed = {f"t{j}": rng.random() < 0.6 for j in range(15) if rng.random() < 0.7}
        plan(store, f"r{i}", reviewed, rng.choice(["done", "done", "stopped", "failed"]))
        runs.append((f"r{i}", reviewed, store.get_run(f"r{i}")))
    for i, (run_id, reviewed, _) in enumerate(runs):
        expected = {}
        for tool in reviewed:
            for other, theirs, row in reversed(runs[:i]):
                if row is not None and row.status == "done" and theirs.get(tool):
                    expected[tool] = other
                    break
        assert store.previous_runs(run_id) == expected, run_id


def counted_fits(monkeypatch: pytest.MonkeyPatch, release: threading.Event | None = None) -> list[int]:
    """Make every fit of the judges count itself (and wait for ``release`` if given)."""
    calls: list[int] = []
    real = confidence._fit

    def fit(*args: Any) -> Any:
        calls.append(1)
        if release is not None:
            release.wait(timeout=30)
        return real(*args)

    monkeypatch.setattr(confidence, "_fit", fit)
    return calls


def test_concurrent_misses_of_one_run_pay_one_fit(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store_verdicts(store, "r", {p: ["ship", "skip", "ship"] for p in "abcd"}, status="done")
    release = threading.Event()
    calls = counted_fits(monkeypatch, release)
    found: list[Any] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            with Store(store.path.parent, readonly=True) as mine:
                found.append(cached_confidence(mine, "r"))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    key = confidence.result_key(store, "r")
    for _ in range(3000):  # until the others wait for the first (or, unlocked, all fit)
        if len(calls) == len(threads) or confidence_cache.RESULTS.waiting(key) == len(threads) - 1:
            break
        time.sleep(0.01)
    release.set()
    for t in threads:
        t.join(timeout=60)
    assert errors == [] and len(found) == len(threads)
    assert len(calls) == 1
    assert all(f == found[0] for f in found)


def test_many_runs_from_many_threads_never_fail(store: Store) -> None:
    """More runs than are remembered, asked for from six threads taking turns often."""
    for i in range(10):
        store_verdicts(store, f"r{i}", {p: ["ship", "skip"][: 1 + i % 2] for p in "abc"}, status="done")
    errors: list[BaseException] = []

    def ask(seed: int) -> None:
        rng = random.Random(seed)
        try:
            with Store(store.path.parent, readonly=True) as mine:
                for _ in range(60):
                    run = f"r{rng.randrange(10)}"
                    assert set(cached_confidence(mine, run)) == {f"t{j}" for j in range(1 + int(run[1:]) % 2)}
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=ask, args=(s,)) for s in range(6)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert len(confidence_cache.RESULTS._done) <= confidence_cache.RESULTS.size


def test_an_editors_edit_does_not_refit_the_run(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store_verdicts(store, "r", {p: ["ship", "skip", "ship"] for p in "abcd"}, status="done")
    calls = counted_fits(monkeypatch)
    first = cached_confidence(store, "r")
    store.edit_review("r", CellKey("t1", "a", "a:x"), "review", "Clearer words.")
    again = cached_confidence(store, "r")
    assert len(calls) == 1 and again == first
    store.edit_review("r", CellKey("t1", "b", "a:x"), "verdict", "ship")  # the models said skip
    assert cached_confidence(store, "r") == first and len(calls) == 1
    # a regenerated review says the other verdict: what the judges are fitted to moved
    key = CellKey("t1", "a", "a:x")
    store.archive_review("r", key, "regenerate")
    store.save_review("r", key, "a", "x", data={"verdict": "ship"}, error=None, raw_reply=None,
                      request_id=None, asks=1)  # fmt: skip
    assert cached_confidence(store, "r")["t1"].ship != first["t1"].ship
    assert len(calls) == 2


def test_an_edit_here_keeps_the_previous_runs_verdicts(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store_verdicts(store, "old", {p: ["ship", "ship"] for p in "abcd"}, status="done")
    time.sleep(0.01)
    store_verdicts(store, "new", {p: ["skip", "ship"] for p in "abcd"}, status="done")
    read: list[str] = []
    real = confidence._previous

    def previous(s: Store, run_id: str) -> Any:
        read.append(run_id)
        return real(s, run_id)

    monkeypatch.setattr(confidence, "_previous", previous)
    assert [r.code for r in cached_confidence(store, "new")["t0"].reasons] == ["flipped_since"]
    store.edit_review("new", CellKey("t1", "a", "a:x"), "review", "Other words.")
    cached_confidence(store, "new")
    assert read == ["new"]
    store.edit_review("old", CellKey("t0", "a", "a:x"), "verdict", "skip")  # there: read again
    store.edit_review("new", CellKey("t1", "b", "a:x"), "review", "More words.")
    cached_confidence(store, "new")
    assert read == ["new", "new"]


def test_the_same_input_fits_to_the_same_key_and_another_to_another(store: Store) -> None:
    store_verdicts(store, "r", {p: ["ship", "skip"] for p in "abcd"}, status="done")
    store_verdicts(store, "s", {p: ["ship", "skip"] for p in "abcd"}, status="done")
    assert run_confidence(store, "r") == run_confidence(store, "s")
    tools = {"t0": confidence.ToolVotes({("a", "m"): "ship"})}
    other = {"t0": confidence.ToolVotes({("a", "m"): "skip"})}
    assert confidence_cache.digest(tools, None) != confidence_cache.digest(other, None)
    assert confidence_cache.digest(tools, None) != confidence_cache.digest(
        tools, {("a", "m"): [[1, 0], [0, 1]]}
    )


def test_a_tool_page_reads_the_versions_of_its_own_reviews_only(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.testclient import TestClient

    from panel.view import actions
    from panel.view.app import create_app

    shown = personas()
    store.create_run("r", "test", None, {"members": ["a:x"]},
                     tools=[(t, "fp", a_tool(t).model_dump(mode="json")) for t in ("t0", "t1", "t2")],
                     personas=[(p.id, "v", p.model_dump(mode="json")) for p in shown])  # fmt: skip
    for t in ("t0", "t1", "t2"):
        for p in shown:
            data = {"answers": {}, "review": "r", "verdict_note": "n", "verdict": "ship"}
            store.save_review("r", CellKey(t, p.id, "a:x"), "a", "x", data=data, error=None,
                              raw_reply=None, request_id=None, asks=1)  # fmt: skip
    store.finish_run("r", "done")
    read: list[int] = []
    real = actions.run_versions

    def versions(s: Store, run_id: str, tool_id: str | None = None) -> Any:
        found = real(s, run_id, tool_id)
        read.append(len(found))
        return found

    monkeypatch.setattr(actions, "run_versions", versions)
    with TestClient(
        create_app(store.path.parent, token=None, port=8765), base_url="http://127.0.0.1:8765"
    ) as c:
        page = c.get("/runs/r/tools/t1")
    assert page.status_code == 200 and 'name="version"' in page.text
    assert read == [len(shown)]  # t1's reviews, not the run's


def test_a_review_run_and_show_of_one_tool_each_fit_the_run_once(
    cli: Any, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    confidence_cache.clear()
    calls = counted_fits(monkeypatch)
    made = cli("review", "-b", "fake", "--out", str(runs_dir), "--progress", "quiet")
    assert made.code == 0, made
    assert len(calls) == 1  # the files, the record and the summary at the end share one fit
    run_id = made.out.split(":")[0]
    first_line = (runs_dir / run_id / "reviews.jsonl").read_text(encoding="utf-8").splitlines()[0]
    tool_id = json.loads(first_line)["tool_id"]
    confidence_cache.clear()  # a command of its own: nothing remembered
    shown = cli("show", run_id, "--tool", tool_id, "--out", str(runs_dir))
    assert shown.code == 0, shown
    assert len(calls) == 2


def test_a_review_regenerated_in_an_earlier_run_moves_the_cached_flip(tmp_path: Path) -> None:
    # the app's tool pages read cached_confidence: a flip since the earlier run must go away
    # once the earlier run's reviews of the tool are regenerated to this run's verdict
    with Store(tmp_path) as store:
        store_verdicts(store, "old", {p: ["ship", "ship"] for p in "abcd"}, status="done")
        time.sleep(0.01)  # the store orders runs by when they were created
        store_verdicts(store, "new", {p: ["skip", "ship"] for p in "abcd"}, status="done")
        before = cached_confidence(store, "new")
        assert [r.code for r in before["t0"].reasons] == ["flipped_since"]
        for persona in "abcd":
            key = CellKey("t0", persona, "a:x")
            store.archive_review("old", key, "regenerate")
            store.save_review("old", key, "a", "x", data={"verdict": "skip"}, error=None, raw_reply=None,
                              request_id=None, asks=1)  # fmt: skip
        after = cached_confidence(store, "new")
    assert "flipped_since" not in [r.code for r in after["t0"].reasons]
