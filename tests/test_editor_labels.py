"""The editors' decisions stored as labels: append-only rows, the latest per editor per tool
in force, two editors kept apart, what each action labels, and the panel then."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from panel.store import CellKey, Store

from .factories import store_verdicts

B0 = CellKey("t0", "builder", "a:x")
S0 = CellKey("t0", "skeptic", "a:x")
F0 = CellKey("t0", "futurist", "a:x")


@pytest.fixture
def run(tmp_path: Path) -> str:
    with Store(tmp_path) as store:
        store_verdicts(
            store, "r1",
            {"builder": ["ship", "skip"], "skeptic": ["skip", "skip"], "futurist": ["ship", "ship"]},
        )  # fmt: skip
    return "r1"


def _in_force(store: Store, run_id: str) -> set[tuple[str, str, str]]:
    return {(f.tool_id, f.editor, f.verdict) for f in store.labels_in_force(run_id)}


def test_rows_are_append_only_and_the_latest_per_editor_per_tool_counts(tmp_path: Path, run: str) -> None:
    with Store(tmp_path) as store:
        store.approve(run, B0, editor="ana")  # builder said ship
        store.approve(run, B0, False, editor="ana")  # withdrawn: a row that takes it back
        store.edit_review(run, B0, "verdict", "skip", editor="ana")  # ana now says skip
        store.approve(run, F0, editor="bo")  # bo stands behind the futurist's ship
        rows = store.editor_labels(run)
        assert [(r.action, r.editor, r.verdict, r.key) for r in rows] == [
            ("approve", "ana", "ship", B0),
            ("withdraw", "ana", "ship", B0),
            ("edit", "ana", "skip", B0),
            ("approve", "bo", "ship", F0),
        ]
        assert rows[0].panel == {"members": {"a:x": "a:x"}, "personas": {
            "builder": "v", "skeptic": "v", "futurist": "v"}, "prompts": None}  # fmt: skip
        # both editors kept, each with their latest
        assert _in_force(store, run) == {("t0", "ana", "skip"), ("t0", "bo", "ship")}
    db = sqlite3.connect(tmp_path / "panel.db")
    for sql in ("UPDATE editor_labels SET verdict = 'ship'", "DELETE FROM editor_labels"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(sql)


def test_an_edit_of_prose_writes_no_label_and_an_approval_labels_the_edited_verdict(
    tmp_path: Path, run: str
) -> None:
    with Store(tmp_path) as store:
        store.edit_review(run, S0, "verdict_note", "fine", editor="ana")
        assert store.editor_labels(run) == []
        store.edit_review(run, S0, "verdict", "ship", editor="ana")
        store.approve(run, S0, editor="ana")
        labels = [(r.action, r.verdict) for r in store.editor_labels(run)]
        assert labels == [("edit", "ship"), ("approve", "ship")]


def test_approvals_that_disagree_give_no_label_and_a_publish_neither_settles_nor_counts(
    tmp_path: Path, run: str
) -> None:
    with Store(tmp_path) as store:
        store.approve(run, B0, editor="ana")  # ship
        store.approve(run, S0, editor="ana")  # skip: ana stood behind both
        assert _in_force(store, run) == set()
        # publish: the pooled verdict of t0 (ship 2, skip 1) and of t1 (skip 2, ship 1), kept as rows
        assert store.label_publish(run, "ana") == 2
        assert [r.action for r in store.editor_labels(run)][-2:] == ["publish", "publish"]
        assert _in_force(store, run) == set()  # a publish judges nothing of its own
        # counted when asked, and then only where ana has no approval or edit (t1, not t0)
        counted = {(f.tool_id, f.editor, f.verdict) for f in store.labels_in_force(run, count_publishes=True)}
        assert counted == {("t1", "ana", "skip")}


def test_an_edit_to_ship_then_a_publish_leaves_ship_in_force(tmp_path: Path) -> None:
    five = {p: ["skip"] for p in ("builder", "skeptic", "futurist", "analyst", "critic")}
    with Store(tmp_path) as store:
        store_verdicts(store, "r5", five)
        store.edit_review("r5", CellKey("t0", "critic", "a:x"), "verdict", "ship", editor="ana")
        assert store.label_publish("r5", "ana") == 1  # the pooled verdict is still skip (4 to 1)
        edited = [("t0", "ana", "ship", "edit")]
        assert [(f.tool_id, f.editor, f.verdict, f.action) for f in store.labels_in_force("r5")] == edited
        counted = store.labels_in_force("r5", count_publishes=True)  # a publish never overrides an edit
        assert [(f.tool_id, f.editor, f.verdict, f.action) for f in counted] == edited


def test_a_withdrawn_approval_leaves_no_label_and_an_earlier_edit_stays(tmp_path: Path, run: str) -> None:
    with Store(tmp_path) as store:
        store.approve(run, B0, editor="ana")
        store.approve(run, B0, False, editor="ana")
        assert _in_force(store, run) == set()
        store.approve(run, B0, False, editor="ana")  # nothing in force to take back: no row
        assert [r.action for r in store.editor_labels(run)] == ["approve", "withdraw"]
        # an edit, approved and then withdrawn: the edited verdict stays the label
        store.edit_review(run, S0, "verdict", "ship", editor="bo")
        store.approve(run, S0, editor="bo")
        store.approve(run, S0, False, editor="bo")
        assert _in_force(store, run) == {("t0", "bo", "ship")}


def test_a_tie_publishes_no_label(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        store_verdicts(store, "r2", {"builder": ["ship"], "skeptic": ["skip"]})
        assert store.label_publish("r2", "ana") == 0
        assert store.editor_labels("r2") == []


def test_labels_of_another_run_count_only_for_the_same_entry_of_the_tool(tmp_path: Path, run: str) -> None:
    with Store(tmp_path) as store:
        store.approve(run, F0, editor="ana")
        store.create_run(
            "r3", "test", None, {}, tools=[("t0", "fp", {"id": "t0"}), ("t1", "other", {"id": "t1"})],
            personas=[("builder", "v", {"id": "builder"})],
        )  # fmt: skip
        store.save_review("r3", CellKey("t1", "builder", "a:x"), "a", "x", data={"verdict": "ship"},
                          error=None, raw_reply=None, request_id=None, asks=1)  # fmt: skip
        store.approve("r3", CellKey("t1", "builder", "a:x"), editor="ana")
        assert _in_force(store, "r3") == {("t0", "ana", "ship"), ("t1", "ana", "ship")}
        # r1's t1 is another entry (fingerprint 'fp', not 'other'): r3's label does not count there
        assert _in_force(store, run) == {("t0", "ana", "ship")}
        assert {f.tool_id for f in store.labels_in_force("r3", same_entry=False)} == {"t1"}
