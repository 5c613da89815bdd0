"""Regenerating one review: the old one kept in the history with its reason, the new one
asked of the model with a new seed (again new each time, and the same after a crash and a
resume), the run `running` meanwhile and `done` after, its files written again."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from panel.errors import UserError
from panel.run.cells import SEED_STRIDE, CellResult
from panel.run.events import Event, ReviewMade
from panel.run.regenerate import regenerate_review
from panel.run.stats import RunStats
from panel.store import CellKey, Store

KEY = CellKey("ollama", "builder", "fake:schema")


def _requests(store: Store, run_id: str, key: CellKey) -> list[dict[str, Any]]:
    """The cell's requests, oldest first: their seed, and the request a cached reply came from."""
    rows = store.db.execute(
        """SELECT rq.settings, rp.cached_from FROM requests rq LEFT JOIN replies rp ON rp.request_id = rq.id
           WHERE rq.run_id = ? AND rq.tool_id = ? AND rq.persona_id = ? AND rq.member = ? AND rq.repeat = ?
           ORDER BY rq.id""",
        (run_id, *key),
    )
    return [{"seed": json.loads(r[0])["seed"], "cached_from": r[1]} for r in rows]


def test_a_regenerated_review_is_new_and_the_old_one_is_kept_with_its_reason(
    store: Store, made: str, runs_dir: Path
) -> None:
    old = store.review(made, KEY)
    assert old is not None
    (first,) = _requests(store, made, KEY)
    comparison = store.run_dir(made) / "comparison.json"
    comparison.unlink()
    seen: list[tuple[CellResult, RunStats, str]] = []

    def on_event(event: Event) -> None:
        assert isinstance(event, ReviewMade)
        run = store.get_run(made)
        assert run is not None
        seen.append((event.result, event.stats, run.status))

    result = asyncio.run(regenerate_review(store, made, KEY, "too vague", on_event=on_event))

    new = store.review(made, KEY)
    assert new is not None and result.valid and new.verdict == result.verdict
    assert new.input_tokens > 0 and new.output_tokens > 0  # its own request's tokens
    (kept,) = store.review_history(made, KEY)
    assert kept.reason == "too vague" and kept.review == old
    after = _requests(store, made, KEY)
    assert [r["seed"] for r in after] == [first["seed"], first["seed"] + SEED_STRIDE]
    assert after[-1]["cached_from"] is None  # asked of the model, not handed the old reply
    assert [(s.done, s.total, s.valid, status) for _, s, status in seen] == [(1, 1, 1, "running")]
    run = store.get_run(made)
    assert run is not None and run.status == "done"
    assert comparison.is_file()  # the run's files written again
    assert store.review_counts(made) == (4, 0)

    asyncio.run(regenerate_review(store, made, KEY, "still weak"))
    seeds = [r["seed"] for r in _requests(store, made, KEY)]
    assert seeds == [first["seed"], first["seed"] + SEED_STRIDE, first["seed"] + 2 * SEED_STRIDE]
    assert [h.reason for h in store.review_history(made, KEY)] == ["too vague", "still weak"]
    other = CellKey("vllm", "skeptic", "fake:schema")
    assert len(_requests(store, made, other)) == 1  # no other cell was asked again


@pytest.mark.parametrize(
    ("key", "says"),
    [
        (CellKey("nope", "builder", "fake:schema"), "has no tool 'nope'"),
        (CellKey("ollama", "futurist", "fake:schema"), "has no persona 'futurist'"),
        (CellKey("ollama", "builder", "fake:other"), "has no member 'fake:other'"),
        (CellKey("ollama", "builder", "fake:schema", 3), "has no repeat 3 (its repeats are 0 to 0)"),
    ],
)
def test_a_review_the_run_does_not_have_is_one_line_and_nothing_changes(
    store: Store, made: str, key: CellKey, says: str
) -> None:
    with pytest.raises(
        UserError, match=f"cannot regenerate the review of .*: run '{made}' {re.escape(says)}"
    ) as raised:
        asyncio.run(regenerate_review(store, made, key, "why not"))
    assert "\n" not in str(raised.value)
    run = store.get_run(made)
    assert run is not None and run.status == "done"
    assert store.review_history(made, KEY) == [] and store.review_counts(made) == (4, 0)


def test_a_regenerate_needs_a_reason(store: Store, made: str) -> None:
    with pytest.raises(UserError, match="say why the review of ollama by builder on fake:schema"):
        asyncio.run(regenerate_review(store, made, KEY, "  "))
    assert store.review_history(made, KEY) == []


def test_a_resume_after_a_crash_makes_the_cell_with_the_moved_seed(
    store: Store, made: str, cli: Any, runs_dir: Path
) -> None:
    # the process died after setting the review aside, before the new one was stored
    (first,) = _requests(store, made, KEY)
    store.archive_review(made, KEY, "too vague")
    store.mark_run(made, "running")
    store.close()
    resumed = cli("review", "--resume", made, "--out", str(runs_dir), "--progress", "quiet")
    assert resumed.code == 0, resumed.err
    with Store(runs_dir, readonly=True) as after:
        requests = _requests(after, made, KEY)
        assert [r["seed"] for r in requests] == [first["seed"], first["seed"] + SEED_STRIDE]
        assert requests[-1]["cached_from"] is None  # not the old reply from the cache
        assert after.has_review(made, KEY) and len(after.review_history(made, KEY)) == 1
        run = after.get_run(made)
        assert run is not None and run.status == "done"


def test_panel_regenerate_on_the_command_line(made: str, cli: Any, runs_dir: Path) -> None:
    args = ["regenerate", made, "ollama", "builder", "fake:schema", "--out", str(runs_dir)]
    done = cli(*args, "--reason", "too vague", "--json")
    assert done.code == 0, done.err
    outcome = json.loads(done.out)
    assert outcome["valid"] is True and outcome["run_status"] == "done"
    refused = cli(*args[:3], "futurist", *args[4:], "--reason", "x")
    assert refused.code == 2 and "has no persona 'futurist'" in refused.err and refused.out == ""
    assert cli(*args, "--reason", " ").code == 2
    with Store(runs_dir, readonly=True) as store:
        assert [h.reason for h in store.review_history(made, KEY)] == ["too vague"]


def test_a_mistyped_out_folder_is_one_line_and_makes_no_store(made: str, cli: Any, tmp_path: Path) -> None:
    typo = tmp_path / "runz"
    refused = cli("regenerate", made, "ollama", "builder", "fake:schema", "--out", str(typo), "--reason", "x")
    assert (
        refused.code == 2
        and "no run store here" in refused.err
        and len(refused.err.strip().splitlines()) == 1
    )
    assert not typo.exists()


def test_in_a_rebuttal_run_the_new_review_answers_round_two_again(cli: Any, runs_dir: Path) -> None:
    out = cli("compare", "ollama", "vllm", "-b", "fake", "-b", "fake:other", "-p", "builder", "-p", "skeptic",
              "--rebuttal", "--json", "--out", str(runs_dir))  # fmt: skip
    assert out.code == 0, out.err
    run_id = json.loads(out.out)["run_id"]
    with Store(runs_dir, readonly=True) as store:
        before = {r.key: r for r in store.rebuttals(run_id)}
    assert KEY in before
    done = cli("regenerate", run_id, *KEY[:3], "--out", str(runs_dir), "--reason", "thin", "--json")
    assert done.code == 0, done.err
    assert json.loads(done.out)["run_status"] == "done"
    with Store(runs_dir, readonly=True) as store:
        after = {r.key: r for r in store.rebuttals(run_id)}
        review = store.review(run_id, KEY)
        history = store.review_history(run_id, KEY)
    # every cell still has its round-2 answer; this one answers the new review
    assert set(after) == set(before) and len(history) == 1
    assert review is not None and after[KEY].verdict_before == review.verdict
