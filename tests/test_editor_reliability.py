"""Reliabilities learned from the editors' labels on earlier runs carry forward to a new run's
judges of the same model, persona version and prompts version, and only to them."""

from __future__ import annotations

from pathlib import Path

import pytest

from panel.analysis.editor_reliability import as_plain, judge_reliabilities
from panel.report.triage import triage
from panel.store import CellKey, Store

pytest.importorskip("numpy")

CATS = ["ship", "skip"]
TRUTH = ["ship", "ship", "skip", "skip", "ship", "skip"]
SKEPTIC = ["ship", "skip", "skip", "skip", "skip", "skip"]  # right on 4 of 6
BUILDER = ["ship", "ship", "ship", "skip", "ship", "ship"]


def _run(
    store: Store,
    run_id: str,
    at: float,
    versions: dict[str, str],
    verdicts: dict[str, list[str]],
    model: str = "x",
    entries: dict[str, str] | None = None,
) -> None:
    tools = [f"t{i}" for i in range(len(TRUTH))]
    store.create_run(
        run_id, "test", None, {"prompts": "p1"},
        tools=[(t, (entries or {}).get(t, "fp"), {"id": t}) for t in tools],
        personas=[(p, versions[p], {"id": p}) for p in verdicts],
    )  # fmt: skip
    store.db.execute("UPDATE runs SET created_at = ? WHERE id = ?", (at, run_id))
    for persona, column in verdicts.items():
        for tool, verdict in zip(tools, column, strict=True):
            store.save_review(
                run_id, CellKey(tool, persona, "a:x"), "a", model, data={"verdict": verdict},
                error=None, raw_reply=None, request_id=None, asks=1,
            )  # fmt: skip


def test_a_changed_persona_version_no_longer_carries_and_says_so(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        _run(store, "old", 1.0, {"builder": "3", "skeptic": "1"}, {"builder": BUILDER, "skeptic": SKEPTIC})
        for i, truth in enumerate(TRUTH):
            key = CellKey(f"t{i}", "skeptic", "a:x")
            if SKEPTIC[i] == truth:
                store.approve("old", key, editor="ana")
            else:  # the editor's edit is the label; the skeptic's own verdict stays wrong
                store.edit_review("old", key, "verdict", truth, editor="ana")
        _run(store, "new", 2.0, {"builder": "4", "skeptic": "1"}, {"builder": BUILDER, "skeptic": SKEPTIC})
        store.approve("new", CellKey("t0", "skeptic", "a:x"), editor="ana")  # the new run's own: not counted
        found = judge_reliabilities(store, "new", CATS)
    skeptic, builder = ("skeptic", "a:x"), ("builder", "a:x")
    assert found.judges == [builder, skeptic]
    # truth ship (t0, t1, t4): the skeptic said ship, skip, skip; truth skip (t2, t3, t5): skip x3
    assert found.confusion[skeptic] == [[1, 2], [0, 3]] and found.rests_on[skeptic] == 6
    assert found.rests_on[builder] == 0 and found.confusion[builder] == [[0, 0], [0, 0]]
    assert found.notes == [
        "builder / a:x: 6 labels under persona version 3, none under persona version 4: "
        "its old reliability no longer applies"
    ]
    assert found.identities[skeptic] == ("a:x", "skeptic", "1", "p1")
    model = found.fit()
    assert model is not None
    # Laplace-smoothed rows: (1+1)/(3+2) ship|ship for the skeptic; the builder's rows uniform
    assert model.confusion[1][0].tolist() == pytest.approx([2 / 5, 3 / 5])
    assert model.confusion[0][0].tolist() == pytest.approx([0.5, 0.5])
    plain = as_plain(found)
    assert plain["labels"] == 6 and plain["judges"][1]["labels"] == 6


def test_no_earlier_labels_carry_nothing(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        _run(store, "only", 1.0, {"builder": "1", "skeptic": "1"}, {"builder": BUILDER, "skeptic": SKEPTIC})
        store.approve("only", CellKey("t0", "skeptic", "a:x"), editor="ana")
        found = judge_reliabilities(store, "only", CATS)
    assert found.n_labels == 0 and found.fit() is None and found.notes == []
    assert set(found.rests_on.values()) == {0}


def test_a_changed_model_no_longer_carries_and_says_so(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        _run(store, "old", 1.0, {"skeptic": "1"}, {"skeptic": SKEPTIC}, model="y")
        store.approve("old", CellKey("t2", "skeptic", "a:x"), editor="ana")
        _run(store, "new", 2.0, {"skeptic": "1"}, {"skeptic": SKEPTIC})
        found = judge_reliabilities(store, "new", CATS)
    assert found.rests_on == {("skeptic", "a:x"): 0} and found.n_labels == 0
    assert found.notes == [
        "skeptic / a:x: 1 label under model a:y, none under model a:x: its old reliability no longer applies"
    ]


def test_one_label_counts_once_and_triage_leaves_the_references_tools_out(tmp_path: Path) -> None:
    three = {"builder": "1", "skeptic": "1", "critic": "1"}
    panel = {"builder": BUILDER, "skeptic": SKEPTIC, "critic": TRUTH}
    with Store(tmp_path) as store:
        for at, run_id in enumerate(("r1", "r2", "r3"), start=1):  # one entry of each tool
            _run(store, run_id, float(at), three, panel)
        _run(store, "r4", 4.0, three, panel, entries={"t3": "fp2"})  # t3's entry changed since
        store.approve("r1", CellKey("t0", "skeptic", "a:x"), editor="ana")
        store.approve("r2", CellKey("t3", "skeptic", "a:x"), editor="ana")
        found = judge_reliabilities(store, "r4", CATS)
        assert found.rests_on[("skeptic", "a:x")] == 2 and found.items == [("r1", "t0"), ("r2", "t3")]
        store.approve("r4", CellKey("t2", "skeptic", "a:x"), editor="ana")  # r4's own: not counted
        assert judge_reliabilities(store, "r4", CATS).items == found.items
        # r4's labels in force: its own on t2 and r1's on t0 (the same entry), not r2's on t3
        assert sorted(f.tool_id for f in store.labels_in_force("r4")) == ["t0", "t2"]
        alone = triage(store, "r4")
        checked = triage(store, "r4", reference="editors")
    assert alone.method == "editors" and alone.rests_on == 2
    # the rule is checked on t0 and t2: the reliabilities it ranks by rest on t3's label alone
    assert checked.method == "editors" and checked.rests_on == 1
    assert {r["tool_id"] for r in checked.rows if r["reference"]} == {"t0", "t2"}
