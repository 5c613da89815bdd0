"""The batch route from the command line: `panel review --route batch`, `--detach` and its
resume command, batch progress, and `panel batches` (list and cancel), against the loopback
provider's OpenAI Batch API."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from panel.backends.batch import BatchStatus
from panel.catalog import load_catalog
from panel.cli.progress import batch_eta, batch_line
from panel.run.resume import resume_args
from panel.store import Store
from panel.testing.fake_provider import FakeProvider

from .conftest import EXAMPLE_CATALOG

TOOLS = ",".join(t.id for t in list(load_catalog(EXAMPLE_CATALOG))[:3])  # x 4 personas = 12 cells


@pytest.fixture
def config(fake: FakeProvider, tmp_path: Path) -> Path:
    path = tmp_path / "panel.toml"
    path.write_text(
        f'[[members]]\nspec = "openai:gpt-4.1-mini"\nbase_url = "{fake.base_url("openai")}"\ntimeout = 5\n'
    )
    return path


def _review(cli: Any, config: Path, runs: Path, *extra: str) -> Any:
    return cli(
        "review", str(EXAMPLE_CATALOG), "--tools", TOOLS, "--config", str(config), "--out", str(runs),
        "--poll-interval", "0", *extra,
    )  # fmt: skip


def _detached_slow(cli: Any, fake: FakeProvider, config: Path, runs: Path) -> str:
    """The id of a run whose one batch (of an hour) is submitted, the command detached."""
    fake.configure(batch_seconds=3600)
    detached = _review(cli, config, runs, "--route", "batch", "--detach")
    return shlex.split(_line_after(detached.err, "with: "))[3]


def _batch_counts(fake: FakeProvider) -> tuple[int, int]:
    """(batches created, requests sent live) at the fake provider."""
    stats = fake.stats()
    return stats["batches"]["created"].get("openai", 0), stats["requests"]


def _line_after(text: str, marker: str) -> str:
    (line,) = [line for line in text.splitlines() if marker in line]
    return line.split(marker, 1)[1].strip()


def test_route_batch_sends_every_cell_in_one_batch(
    cli: Any, fake: FakeProvider, config: Path, runs_dir: Path
) -> None:
    result = _review(cli, config, runs_dir, "--route", "batch", "--progress", "quiet")
    assert result.code == 0, result
    assert "12/12 reviews · 12 valid · 0 failed" in result.out
    assert _batch_counts(fake) == (1, 0)  # one batch, nothing live
    assert fake.stats()["batch_duplicates"] == 0
    # The summary says what the same replies would have cost live: twice as much.
    found = re.search(r"batch route \$([0-9.]+) \(the same replies live: \$([0-9.]+)\)", result.out)
    assert found is not None, result.out
    batch, live = float(found[1]), float(found[2])
    assert batch > 0 and live == pytest.approx(2 * batch, abs=0.00011)


def test_detach_prints_the_command_that_collects_and_it_collects(
    cli: Any, fake: FakeProvider, config: Path, runs_dir: Path
) -> None:
    fake.configure(batch_seconds=3600)
    detached = _review(cli, config, runs_dir, "--route", "batch", "--detach")
    assert detached.code == 0, detached
    collect = _line_after(detached.err, "Collect the results with: ")
    assert collect.startswith("panel review --resume ")
    run_id = shlex.split(collect)[3]
    assert "--out" in collect and "--poll-interval 0" in collect
    assert "detached: 1 batch (12 requests, openai:gpt-4.1-mini) in flight" in detached.err
    # The bar mode shows the batch as it was submitted.
    assert (
        f"batch b-{run_id}-openai-gpt-4-1-mini-1 (openai:gpt-4.1-mini): validating 0/12 done" in detached.err
    )
    assert "0/12 reviews" in detached.out and "detached with batches in flight" in detached.out
    assert "(live route: $" in detached.err  # the plan is priced at batch prices
    with Store(runs_dir, readonly=True) as store:
        (row,) = store.batches(run_id)
        assert row.state != "collected" and row.provider_batch_id
        assert store.get_run(run_id).status == "interrupted"  # type: ignore[union-attr]
    listed = cli("runs", "--out", str(runs_dir))
    assert "interrupted, 1 batch in flight" in listed.out
    assert not (runs_dir / run_id / "reviews.jsonl").exists()

    fake.advance_batches()  # the provider ends the batch
    collected = cli(*shlex.split(collect)[1:])
    assert collected.code == 0, collected
    assert f"{run_id}: 12/12 reviews · 12 valid" in collected.out
    assert _batch_counts(fake) == (1, 0)  # the resume submitted nothing new
    assert fake.stats()["batch_duplicates"] == 0
    with Store(runs_dir, readonly=True) as store:
        assert [r.state for r in store.batches(run_id)] == ["collected"]
        assert store.get_run(run_id).status == "done"  # type: ignore[union-attr]


def test_resume_last_with_detach_reattaches_and_submits_nothing(
    cli: Any, fake: FakeProvider, config: Path, runs_dir: Path
) -> None:
    fake.configure(batch_seconds=3600)
    assert _review(cli, config, runs_dir, "--route", "batch", "--detach").code == 0
    fake.advance_batches()
    again = cli("review", "--resume", "last", "--detach", "--config", str(config), "--out", str(runs_dir))
    assert again.code == 0, again
    assert "Collect the results with: panel review --resume" in again.err
    assert "): ended 12/12 done" in again.err  # looked at once, not collected
    assert _batch_counts(fake) == (1, 0)
    with Store(runs_dir, readonly=True) as store:
        (run_id,) = {row.run_id for row in store.batches(store.latest_batch_run() or "")}
        assert [r.state for r in store.batches(run_id)] == ["ended"]
        assert store.review_counts(run_id) == (0, 0)


def test_batches_lists_a_runs_batches_as_json_and_as_a_table(
    cli: Any, fake: FakeProvider, config: Path, runs_dir: Path
) -> None:
    run_id = _detached_slow(cli, fake, config, runs_dir)
    listed = cli("batches", run_id, "--out", str(runs_dir), "--json")
    assert listed.code == 0, listed
    (row,) = json.loads(listed.out)
    assert row["batch"] == f"b-{run_id}-openai-gpt-4-1-mini-1"
    assert (row["member"], row["state"], row["requests"], row["attempt"]) == (
        "openai:gpt-4.1-mini", "validating", 12, 1,
    )  # fmt: skip
    assert row["provider_id"] and row["counts"]["total"] == 12
    table = cli("batches", "--out", str(runs_dir))  # the newest run with batches
    assert table.code == 0, table
    lines = table.out.splitlines()
    assert lines[0] == f"run {run_id}"
    assert lines[1].split() == [
        "batch",
        "member",
        "provider",
        "id",
        "state",
        "requests",
        "counts",
        "attempt",
        "updated",
    ]
    assert row["batch"] in lines[2] and "0/12 done" in lines[2]


def test_batches_cancel_stops_a_slow_batch(
    cli: Any, fake: FakeProvider, config: Path, runs_dir: Path
) -> None:
    run_id = _detached_slow(cli, fake, config, runs_dir)
    cancelled = cli("batches", "cancel", run_id, "--out", str(runs_dir))
    assert cancelled.code == 0, cancelled
    assert "(cancel asked)" in cancelled.out
    assert f"asked the providers to cancel 1 of 1 unfinished batches of run {run_id}" in cancelled.out
    with Store(runs_dir, readonly=True) as store:
        (row,) = store.batches(run_id)
    assert row.state in ("cancelling", "cancelled")
    (at_fake,) = fake.stats()["batches"]["list"]
    assert at_fake["phase"] in ("cancelling", "cancelled")
    again = cli("batches", "cancel", run_id, "--out", str(runs_dir))
    assert again.code == 0 and "already" in again.out
    # A resume collects the cancelled batch: what it cut off is failed, with the reason.
    fake.advance_batches()
    collected = cli("review", "--resume", run_id, "--config", str(config), "--out", str(runs_dir),
                    "--poll-interval", "0", "--progress", "quiet")  # fmt: skip
    assert collected.code == 1, collected  # no review is valid
    with Store(runs_dir, readonly=True) as store:
        assert store.review_counts(run_id) == (0, 12)
        assert all("(cancelled)" in (r.error or "") for r in store.reviews(run_id))
        assert [r.state for r in store.batches(run_id)] == ["collected"]
    assert fake.stats()["batch_duplicates"] == 0


def test_batches_after_a_cancel_say_what_became_of_each_request(
    cli: Any, fake: FakeProvider, config: Path, runs_dir: Path
) -> None:
    """Not the provider's "12/12 done" (it counts what it cancelled as done): valid and cancelled."""
    run_id = _detached_slow(cli, fake, config, runs_dir)
    fake.advance_batches(seconds=360 + 2880 * 3 / 12)  # validated, then 3 of 12 processed
    assert cli("batches", "cancel", run_id, "--out", str(runs_dir)).code == 0
    fake.advance_batches()
    collected = cli("review", "--resume", run_id, "--config", str(config), "--out", str(runs_dir),
                    "--poll-interval", "0", "--progress", "quiet")  # fmt: skip
    assert collected.code == 0, collected
    table = cli("batches", run_id, "--out", str(runs_dir))
    (line,) = [line for line in table.out.splitlines() if line.startswith(f"b-{run_id}")]
    assert " collected " in line and "3 valid, 9 cancelled of 12" in line, table.out
    (row,) = json.loads(cli("batches", run_id, "--out", str(runs_dir), "--json").out)
    assert row["outcomes"] == {"valid": 3, "cancelled": 9}


def test_jsonl_progress_has_one_batch_event_per_poll(
    cli: Any, fake: FakeProvider, config: Path, runs_dir: Path
) -> None:
    result = _review(cli, config, runs_dir, "--route", "batch", "--progress", "jsonl")
    assert result.code == 0, result
    events = [json.loads(line) for line in result.err.splitlines()]
    batch = [e for e in events if e["event"] == "batch"]
    assert len(batch) >= 2  # at submission, then at each poll
    assert set(batch[0]) >= {"member", "batch", "state", "done", "total", "eta_s"}
    assert batch[0]["member"] == "openai:gpt-4.1-mini" and batch[0]["total"] == 12
    assert batch[-1]["state"] == "ended" and batch[-1]["done"] == 12


def test_bad_route_and_unknown_runs_are_one_line_exit_2(
    cli: Any, fake: FakeProvider, config: Path, runs_dir: Path
) -> None:
    boat = _review(cli, config, runs_dir, "--route", "boat")
    assert boat.code == 2 and boat.err.strip().count("\n") == 0
    assert "--route: 'boat' is not a route: use live or batch" in boat.err
    assert not runs_dir.exists()
    mixed = cli("review", "--resume", "last", "--route", "batch", "--out", str(runs_dir))
    assert mixed.code == 2 and "--resume finishes a run as it was planned" in mixed.err
    reask = _review(cli, config, runs_dir, "--reask", "never")
    assert reask.code == 2 and "--reask" in reask.err
    empty = cli("batches", "nosuchrun", "--out", str(runs_dir))
    assert empty.code == 2 and empty.err.strip().count("\n") == 0
    assert _review(cli, config, runs_dir, "--route", "batch", "--progress", "quiet").code == 0
    for args in (("batches", "nosuchrun"), ("batches", "cancel", "nosuchrun")):
        missing = cli(*args, "--out", str(runs_dir))
        assert missing.code == 2, missing
        assert missing.err.strip().count("\n") == 0 and "no run 'nosuchrun'" in missing.err


def test_the_resume_command_repeats_the_batch_options_it_needs() -> None:
    assert resume_args(Path("runs")) == []
    assert resume_args(Path("runs"), poll_interval=30.0) == []
    assert resume_args(Path("r"), poll_interval=5, reask_live=True) == [
        "--out", "r", "--poll-interval", "5", "--reask", "live",
    ]  # fmt: skip


def test_batch_eta_and_line() -> None:
    assert batch_eta(1200, 4000, 120.0) == pytest.approx(280.0)
    assert batch_eta(0, 4000, 120.0) is None
    status = BatchStatus("batch_1", "in_progress", {"total": 4000, "done": 1200, "errored": 3})
    line = batch_line("openai:gpt-4.1-mini", "b-r-1", status, 280.0)
    assert line == "batch b-r-1 (openai:gpt-4.1-mini): in_progress 1,200/4,000 done, 3 errored, eta 4m 40s"
