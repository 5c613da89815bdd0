"""The store's runs in summary, as the view's runs list and run pages show them: which runs
match a status and a tool, each run's tools by name, its counts, a review run's ship tallies,
and the state an agreement page's kept figures are checked against."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from panel.store import CellKey, RunTotals, Store, ToolName, ToolTally
from panel.store.lock import LOCK_NAME

from .factories import store_verdicts


def _store(root: Path) -> None:
    with Store(root) as store:
        store_verdicts(store, "old", {"p1": ["ship", "skip"], "p2": ["ship", None]}, status="done")
        store_verdicts(store, "mid", {"p1": [None]}, status="stopped")
        store_verdicts(store, "new", {"p1": ["ship", "ship", "skip"]}, status="interrupted")


def test_runs_match_by_status_and_tool_newest_first(tmp_path: Path) -> None:
    _store(tmp_path)
    with Store(tmp_path, readonly=True) as store:
        assert store.matching_runs() == ["new", "mid", "old"]
        assert store.matching_runs("done") == ["old"]
        assert store.matching_runs("interrupted") == ["new"]
        assert store.matching_runs(tool="t2") == ["new"]
        assert store.matching_runs("stopped", tool="t0") == ["mid"]
        assert store.matching_runs("done", tool="t2") == []


def test_tools_counts_and_tallies(tmp_path: Path) -> None:
    _store(tmp_path)
    with Store(tmp_path, readonly=True) as store:
        tools = store.runs_tools(["old", "new"])
        assert tools == {
            "old": [ToolName("t0", "t0"), ToolName("t1", "t1")],
            "new": [ToolName(f"t{i}", f"t{i}") for i in range(3)],
        }
        assert store.runs_tools([]) == {}
        assert store.run_totals(["old", "mid", "new"]) == {
            "old": RunTotals(reviews=4, valid=3, spend_usd=0.0),
            "mid": RunTotals(reviews=1, valid=0, spend_usd=0.0),
            "new": RunTotals(reviews=3, valid=3, spend_usd=0.0),
        }
        assert store.tool_names() == [ToolName(f"t{i}", f"t{i}") for i in range(3)]
        assert store.tool_tallies("old") == {"t0": ToolTally(2, 2, 0), "t1": ToolTally(1, 0, 1)}


def test_the_run_state_moves_with_a_new_review_or_an_edit(tmp_path: Path) -> None:
    _store(tmp_path)
    with Store(tmp_path) as store:
        before = store.run_state("old")
        assert before[0] is not None and before[0][0] == 4  # (reviews, newest row) of the run
        assert store.run_state("old") == before  # reading changes nothing
        store.edit_review("old", CellKey("t0", "p1", "a:x"), "verdict", "skip", editor="ed")
        edited = store.run_state("old")
        assert edited != before and edited[0] == before[0]  # the edits table moved, not the reviews
        store.archive_review("old", CellKey("t1", "p2", "a:x"), "regenerate", editor="ed")
        store.save_review(
            "old", CellKey("t1", "p2", "a:x"), "a", "x",
            data={"verdict": "ship"}, error=None, raw_reply=None, request_id=None, asks=1,
        )  # fmt: skip
        regenerated = store.run_state("old")
        assert regenerated[0] is not None and before[0] is not None and regenerated[0][1] > before[0][1]
        assert store.run_state("mid") != regenerated


def test_tallies_count_repeat_0_alone(tmp_path: Path) -> None:
    """A review run's ship tallies are the panel's own reading, repeat 0: later repeats (of a
    self-consistency run) are neither ship, valid nor failed on the run's page."""
    with Store(tmp_path) as store:
        store_verdicts(store, "rep", {"p1": ["ship", "skip"]}, status="done")
        for repeat, verdict in ((1, "ship"), (2, None)):
            for tool in ("t0", "t1"):
                store.save_review(
                    "rep", CellKey(tool, "p1", "a:x", repeat), "a", "x",
                    data={"verdict": verdict} if verdict else None, error=None if verdict else "failed",
                    raw_reply=None, request_id=None, asks=1,
                )  # fmt: skip
        assert store.tool_tallies("rep") == {"t0": ToolTally(1, 1, 0), "t1": ToolTally(1, 0, 0)}


def test_totals_sum_the_cost_of_the_run_s_replies_alone(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        store_verdicts(store, "a", {"p1": ["ship"]}, status="done")
        store_verdicts(store, "b", {"p1": ["ship"]}, status="done")
        for run_id, costs in (("a", (0.25, 0.5)), ("b", (4.0,))):
            for cost in costs:
                request = store.begin_request(run_id, CellKey("t0", "p1", "a:x"), "a", "x", 1, [], "s", {})
                store.finish_request(request, None, 1, cost_usd=cost)
        totals = store.run_totals(["a", "b"])
    assert totals["a"].spend_usd == 0.75 and totals["b"].spend_usd == 4.0


def test_runs_made_in_the_same_instant_list_newest_first(tmp_path: Path) -> None:
    """The runs list's order does not depend on the clock's resolution: runs stamped with the
    same time list in the order they were made, newest first."""
    with Store(tmp_path) as store:
        for run_id in ("first", "second", "third"):
            store_verdicts(store, run_id, {"p1": ["ship"]}, status="done")
        store.db.execute("UPDATE runs SET created_at = 1000.0")
    with Store(tmp_path, readonly=True) as store:
        assert store.matching_runs() == store.matching_runs("done") == ["third", "second", "first"]


def test_a_running_run_with_no_writer_matches_interrupted(tmp_path: Path) -> None:
    """As `panel runs` shows it: a run marked running whose process is gone is interrupted."""
    with Store(tmp_path) as store:
        store_verdicts(store, "made", {"p1": ["ship"]})
        store.mark_run("made", "running")
        assert store.matching_runs("running") == ["made"]  # this process writes it
        assert store.matching_runs("interrupted") == []
    # the writer is gone: the lock file names a process that has ended
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": gone.pid}))
    with Store(tmp_path, readonly=True) as store:
        assert not store.writer_alive()
        assert store.matching_runs("running") == []
        assert store.matching_runs("interrupted") == ["made"]
