"""Catalog re-reviews against the loopback fake provider: faults, crashes, cache, budget, staleness."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from panel.testing.fake_provider import FAULT_KINDS, FakeProvider

from .cloud import KEYS, write_config
from .conftest import EXAMPLE_CATALOG, ROOT

pytest.importorskip("openai")
pytest.importorskip("mistralai")


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider(history=5000) as provider:
        yield provider


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)


def _db(runs: Path) -> sqlite3.Connection:
    db = sqlite3.connect(runs / "panel.db")
    db.row_factory = sqlite3.Row
    return db


def _cells(db: sqlite3.Connection, run_id: str) -> Counter[tuple[str, str, str, int]]:
    rows = db.execute("SELECT tool_id, persona_id, member, repeat FROM reviews WHERE run_id = ?", (run_id,))
    return Counter(tuple(r) for r in rows)  # type: ignore[misc]


def _run_id(output: str) -> str:
    return output.split(":", 1)[0].strip()


def test_every_cell_ends_valid_or_failed_with_a_reason_under_20_percent_faults(
    cli: Any, fake: FakeProvider, tmp_path: Path, runs_dir: Path
) -> None:
    # Seed 149 draws every kind of fault within the first 21 requests.
    fake.configure(fault_rate=0.2, faults=list(FAULT_KINDS), hang_seconds=1.5, fault_seed=149)
    cfg = write_config(tmp_path / "panel.toml", fake, ["openai", "mistral"], timeout=0.4, concurrency=6)
    result = cli("review", "--config", str(cfg), "--out", str(runs_dir), "--progress", "quiet")
    assert result.code == 0, result.err
    run_id = _run_id(result.out)
    db = _db(runs_dir)
    cells = _cells(db, run_id)
    assert len(cells) == 9 * 4 * 2, "a cell was lost"
    assert set(cells.values()) == {1}, "a cell was reviewed twice"
    for row in db.execute("SELECT valid, verdict, error FROM reviews WHERE run_id = ?", (run_id,)):
        if row["valid"]:
            assert row["verdict"] in ("ship", "skip") and row["error"] is None
        else:
            assert row["error"], "a failed review must carry its reason"
    # Every request ended: a reply or an error was stored for each one.
    pending = db.execute("SELECT COUNT(*) FROM requests WHERE status = 'pending'").fetchone()[0]
    assert pending == 0
    stats = fake.stats()
    assert sum(stats["faults"].values()) > 0.1 * stats["requests"]
    assert set(stats["faults"]) == set(FAULT_KINDS), "every kind of fault was injected"
    retries = db.execute("SELECT SUM(attempts) - COUNT(*) FROM replies").fetchone()[0]
    assert retries > 0
    reasked = db.execute("SELECT COUNT(*) FROM reviews WHERE asks = 2").fetchone()[0]
    assert reasked > 0, "content faults must lead to re-asks"
    jsonl = (runs_dir / run_id / "reviews.jsonl").read_text().splitlines()
    assert len(jsonl) == 72
    assert len(list((runs_dir / run_id / "tools").glob("*.json"))) == 9


def test_identical_rerun_makes_no_calls_and_a_changed_tool_reruns_only_its_cells(
    cli: Any, fake: FakeProvider, tmp_path: Path, runs_dir: Path
) -> None:
    cfg = write_config(tmp_path / "panel.toml", fake, ["openai"])
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(EXAMPLE_CATALOG.read_text())
    args = ["review", str(catalog), "--config", str(cfg), "--out", str(runs_dir), "--progress", "quiet"]
    first = cli(*args)
    assert first.code == 0, first.err
    sent_first = fake.stats()["requests"]
    assert sent_first == 36

    second = cli(*args)
    assert second.code == 0
    assert fake.stats()["requests"] == sent_first, "an identical re-run must make zero backend calls"
    assert "0 sent · 36 from cache" in second.out

    data = yaml.safe_load(catalog.read_text())
    data["tools"][5]["facts"].append("Added a model library browser in this release.")
    changed_id = data["tools"][5]["id"]
    catalog.write_text(yaml.safe_dump(data, sort_keys=False))
    third = cli(*args, "--since", _run_id(second.out))
    assert third.code == 0, third.err
    recent = fake.stats()["recent"][-(fake.stats()["requests"] - sent_first) :]
    assert fake.stats()["requests"] - sent_first == 4
    assert all(changed_id in json.dumps(r["body"]) for r in recent)
    assert "4 sent" in third.out and "32 copied" in third.out
    third_id = _run_id(third.out)
    db = _db(runs_dir)
    copied = db.execute(
        "SELECT DISTINCT tool_id FROM reviews WHERE run_id = ? AND copied_from IS NULL", (third_id,)
    ).fetchall()
    assert [r[0] for r in copied] == [changed_id]
    diff = cli("diff", _run_id(second.out), third_id, "--out", str(runs_dir), "--json")
    flipped = json.loads(diff.out)["flipped"]
    # The diff must list exactly the cells whose stored verdicts differ, read here on their own.
    before = dict(_verdicts(db, _run_id(second.out)))
    expected = sorted(
        (key, before[key], verdict) for key, verdict in _verdicts(db, third_id) if before[key] != verdict
    )
    listed = sorted(
        ((f["tool_id"], f["persona_id"], f["member"], f["repeat"]), f["before"], f["after"]) for f in flipped
    )
    assert listed == expected
    assert all(key[0] == changed_id for key, _, _ in expected)  # copied reviews cannot flip
    assert json.loads(diff.out)["same"] + len(flipped) == 36


def _verdicts(db: sqlite3.Connection, run_id: str) -> list[tuple[tuple[str, str, str, int], str | None]]:
    rows = db.execute(
        "SELECT tool_id, persona_id, member, repeat, verdict FROM reviews WHERE run_id = ?", (run_id,)
    )
    return [((r[0], r[1], r[2], r[3]), r[4]) for r in rows]


def test_budget_stops_cleanly_and_resume_finishes(
    cli: Any, fake: FakeProvider, tmp_path: Path, runs_dir: Path
) -> None:
    cfg = write_config(tmp_path / "panel.toml", fake, ["openai"], concurrency=2)
    args = ["review", "--config", str(cfg), "--out", str(runs_dir), "--progress", "quiet"]
    stopped = cli(*args, "--max-cost", "0.01")
    assert stopped.code == 3
    assert "stopped before going over the budget of $0.0100" in stopped.err
    run_id = _run_id(stopped.out)
    db = _db(runs_dir)
    spent = db.execute("SELECT SUM(cost_usd) FROM replies").fetchone()[0]
    assert 0 < spent <= 0.01
    done = len(_cells(db, run_id))
    assert 0 < done < 36
    assert db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0] == "stopped"
    sent_before = fake.stats()["requests"]

    finished = cli(
        "review", "--resume", run_id, "--out", str(runs_dir), "--progress", "quiet", "--max-cost", "1"
    )
    assert finished.code == 0, finished.err
    assert set(_cells(db, run_id).values()) == {1} and len(_cells(db, run_id)) == 36
    assert fake.stats()["requests"] - sent_before == 36 - done
    assert fake.stats()["duplicates"] == 0


def _wait_for(condition: Any, proc: subprocess.Popen[Any], what: str) -> None:
    """Poll a count on the fake provider; fail (not hang) if the process ends or a minute passes."""
    deadline = time.monotonic() + 60
    while not condition():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within a minute"
        time.sleep(0.01)


def test_kill_mid_run_then_resume_sends_no_stored_request_twice(
    fake: FakeProvider, tmp_path: Path, runs_dir: Path
) -> None:
    fake.configure(latency=0.15)
    # A long timeout: a request held by the fake below must not time out and be retried.
    cfg = write_config(tmp_path / "panel.toml", fake, ["openai"], concurrency=3, timeout=120)
    env = {**os.environ, **KEYS}
    cmd = [sys.executable, "-m", "panel", "review", "--config", str(cfg), "--out", str(runs_dir)]
    proc = subprocess.Popen([*cmd, "--progress", "quiet"], cwd=ROOT, env=env)
    try:
        _wait_for(lambda: fake.stats()["requests"] >= 15, proc, "15 requests")
        # From here on the fake holds every request, so the run cannot end before the kill;
        # the kill comes when each of the 3 workers has a whole request on the server.
        fake.configure(latency=3600)
        _wait_for(lambda: fake.stats()["in_flight"] == 3, proc, "3 requests in flight")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    fake.configure(latency=0)

    db = _db(runs_dir)
    (run_id,) = [r[0] for r in db.execute("SELECT id FROM runs")]
    stored = len(_cells(db, run_id))
    assert 12 <= stored < 36, f"the kill must land mid-run, but {stored} reviews were stored"
    answered = [
        json.loads(r[0])
        for r in db.execute("SELECT messages FROM requests WHERE status = 'done' AND run_id = ?", (run_id,))
    ]
    unanswered = db.execute("SELECT COUNT(*) FROM requests WHERE status = 'pending'").fetchone()[0]
    db.close()
    assert unanswered >= 1
    resumed = subprocess.run(
        [*cmd, "--resume", run_id, "--progress", "quiet"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, f"resume exited {resumed.returncode}: {resumed.stderr[-2000:]}"

    stats = fake.stats()
    assert stats["requests"] == len(stats["recent"]), "history must hold every request"
    # A request the kill cut short reaches the fake without its whole body; it was never
    # answered, so only whole requests are compared with the stored ones.
    received = Counter(
        json.dumps(r["body"]["messages"], sort_keys=True) for r in stats["recent"] if r["body"] is not None
    )
    resent = [m for m in answered if received[json.dumps(m, sort_keys=True)] != 1]
    assert not resent, f"{len(resent)} of {len(answered)} stored requests were sent again"
    db = _db(runs_dir)
    cells = _cells(db, run_id)
    status = db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
    lost = db.execute("SELECT COUNT(*), SUM(reserved_usd) FROM requests WHERE status = 'lost'").fetchone()
    charged = db.execute("SELECT SUM(cost_usd) FROM replies").fetchone()[0] + lost[1]
    db.close()
    assert len(cells) == 36 and set(cells.values()) == {1}, cells
    assert status == "done"
    # The requests the kill left unanswered are charged at their worst case.
    replies = "reply" if unanswered == 1 else "replies"
    assert lost[0] == unanswered and lost[1] > 0
    assert f"{unanswered} {replies} lost when the run was cut off, charged at worst case" in resumed.stdout
    assert f"${charged:.4f}" in resumed.stdout


def test_a_second_writer_is_refused_naming_the_run_and_no_request_is_sent_twice(
    fake: FakeProvider, tmp_path: Path, runs_dir: Path
) -> None:
    fake.configure(latency=0.02)
    cfg = write_config(tmp_path / "panel.toml", fake, ["openai"], concurrency=2, timeout=120)
    env = {**os.environ, **KEYS}
    cmd = [sys.executable, "-m", "panel", "review", "--config", str(cfg), "--out", str(runs_dir)]
    cmd += ["--progress", "quiet"]
    first = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for(lambda: fake.stats()["requests"] >= 1, first, "a first request")
        # Frozen mid-run, the first process still holds the store: the two runs overlap for sure.
        os.kill(first.pid, signal.SIGSTOP)
        try:
            second = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        finally:
            os.kill(first.pid, signal.SIGCONT)
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    run_id = _run_id(out)
    assert second.returncode == 2
    assert second.stdout == ""
    assert second.stderr.strip() == (
        f"error: {runs_dir} is in use by run {run_id} (pid {first.pid}): "
        "wait for it to finish, or give another --out"
    )
    stats = fake.stats()
    assert stats["requests"] == 36 and stats["duplicates"] == 0
    db = _db(runs_dir)
    assert [r[0] for r in db.execute("SELECT id FROM runs")] == [run_id]
    db.close()


def test_resume_refuses_a_new_plan(cli: Any, runs_dir: Path) -> None:
    result = cli("review", "--resume", "x", "--tools", "ollama", "--out", str(runs_dir))
    assert result.code == 2 and "--resume finishes a run as it was planned" in result.err
