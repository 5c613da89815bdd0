"""`panel agreement RUN --reference editors` scores the panel against the editors' labels in
force, with the figures a labels file gives; `panel labels export` writes that labels file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from panel.analysis.editors import editors_reference
from panel.analysis.reference import load_labels
from panel.store import CellKey, Store
from panel.testing.simulate import SimulatedPanel, simulate_panel, write_simulated_run

from .factories import store_verdicts

pytest.importorskip("numpy")

PERSONAS = ("builder", "skeptic")
MEMBERS = ("sim:a", "sim:b")
FAST = ("--resamples", "200")


def _simulated(out: Path, n_tools: int = 40) -> tuple[str, SimulatedPanel]:
    panel = simulate_panel(n_tools, PERSONAS, MEMBERS, run_id="sim-editors", seed=3)
    return write_simulated_run(out, panel), panel


def _label(
    out: Path, run: str, panel: SimulatedPanel, tools: range, editor: str, *, wrong: bool = False
) -> None:
    """`editor` stands behind a verdict on each of `tools`: the truth (or its opposite), by
    approving a review that says it or, when none does, editing the builder's verdict to it."""
    truth = dict(zip(panel.tools, panel.truth, strict=True))
    with Store(out) as store:
        for i in tools:
            tool = panel.tools[i]
            want = truth[tool] if not wrong else ("skip" if truth[tool] == "ship" else "ship")
            reviews = [r for r in store.reviews(run, tool) if r.valid]
            saying = [r for r in reviews if r.verdict == want]
            if saying:
                store.approve(run, saying[0].key, editor=editor)
            else:
                store.edit_review(run, CellKey(tool, "builder", "sim:a"), "verdict", want, editor=editor)


def _research(cli: Any, out: Path, run: str, reference: str) -> dict[str, Any]:
    result = cli("agreement", run, "--out", str(out), "--format", "json", *FAST, "--reference", reference)
    assert result.code == 0, result.err
    research: dict[str, Any] = json.loads(result.out)["research"]
    return research


def test_editors_labels_are_the_reference_and_export_reads_back_the_same(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    run, panel = _simulated(out)
    _label(out, run, panel, range(0, 30), "ana")
    _label(out, run, panel, range(0, 5), "bo", wrong=True)  # disagrees with ana on 5 tools: ties
    research = _research(cli, out, run, "editors")
    ref = research["reference"]
    assert ref["raters"] == ["ana", "bo"]
    assert ref["tools"] == 25 and ref["tools_in_run"] == 40  # 30 labelled, 5 of them tied
    assert "5 tools have tied labels and no reference" in ref["notes"]
    everyone = next(a for a in research["accuracy"] if a["name"] == "all judges")
    assert everyone["n_tools"] == 25
    # ana labelled the truth: the planted panel's accuracy against her is the planted one
    truth = dict(zip(panel.tools, panel.truth, strict=True))
    right = sum(
        r["verdict"] == truth[r["tool"]]
        for r in panel.rows
        if r["verdict"] is not None and panel.tools.index(r["tool"]) in range(5, 30)
    )
    assert everyone["accuracy"]["point"] == pytest.approx(right / everyone["n_ratings"])

    exported = cli("labels", "export", "--out", str(out), "--run", run)
    assert exported.code == 0, exported.err
    lines = exported.out.splitlines()
    assert lines[0] == "tool,verdict,rater,source" and len(lines) == 1 + 35
    labels = tmp_path / "labels.csv"
    assert cli("labels", "export", "--out", str(out), "-o", str(labels)).code == 0
    assert labels.read_text() == exported.out
    from_file = _research(cli, out, run, str(labels))
    for data in (research, from_file):
        data["reference"].pop("source")
    assert from_file == research


def test_too_few_labels_leave_the_scores_out_and_none_is_one_line(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    run, panel = _simulated(out)
    none = cli("agreement", run, "--out", str(out), "--format", "json", *FAST, "--reference", "editors")
    assert none.code == 2
    assert f"--reference editors: no editor has labelled a tool of run '{run}' yet" in none.err
    _label(out, run, panel, range(0, 4), "ana")
    research = _research(cli, out, run, "editors")
    assert research["reference"]["tools"] == 4 and research["accuracy"] == []
    assert research["reference_sample"]["n_tools"] == 4 and research["reference_sample"]["minimum"] == 20


def test_publishes_alone_are_no_reference(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    run, _ = _simulated(out, 60)
    with Store(out) as store:
        assert store.label_publish(run, "ana") > 0  # the panel's majority, let stand
    refused = cli("agreement", run, "--out", str(out), "--format", "json", *FAST, "--reference", "editors")
    assert refused.code == 2 and refused.out == ""
    (line,) = refused.err.strip().splitlines()
    assert f"--reference editors: the labels on run '{run}' are only publishes or approvals made all" in line
    assert "none of one review" in line


def test_approving_every_review_at_once_is_no_reference(cli: Any, tmp_path: Path) -> None:
    # "Approve all" on every review would give each unanimous tool the panel's own verdict as
    # an editor's label, and the panel would be scored against itself: those rows are history
    out = tmp_path / "runs"
    run, _ = _simulated(out, 60)
    with Store(out) as store:
        for review in store.reviews(run):
            if review.valid:
                store.approve(run, review.key, editor="ana", bulk=True)
        assert store.labels_in_force(run) == []
        assert len(store.labels_in_force(run, count_publishes=True)) > 0
    # triage then promises nothing and says why; agreement refuses, one line
    ranked = cli("triage", run, "--out", str(out), "--reference", "editors", "--format", "json")
    assert ranked.code == 0, ranked.err
    found = json.loads(ranked.out)
    assert found["rule"]["guarantee"] is False and {t["decision"] for t in found["tools"]} == {"editor"}
    assert any("only publishes or approvals made all at once" in n for n in found["notes"])
    refused = cli("agreement", run, "--out", str(out), "--format", "json", *FAST, "--reference", "editors")
    assert refused.code == 2 and refused.out == ""
    (line,) = refused.err.strip().splitlines()
    assert "only publishes or approvals made all at once" in line


def test_export_keeps_the_newest_entry_and_quotes_formula_cells(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    verdicts: dict[str, list[str | None]] = {"builder": ["ship", "skip"], "futurist": ["ship", "ship"]}
    with Store(out) as store:
        store_verdicts(store, "r1", verdicts)
        store.approve("r1", CellKey("t0", "builder", "a:x"), editor="ana")
        store.approve("r1", CellKey("t1", "builder", "a:x"), editor="ana")  # t1's entry changes below
        store.approve("r1", CellKey("t0", "futurist", "a:x"), editor="=SUM(A1)")
        store.create_run(
            "r2", "test", None, {"members": ["a:x"]},
            tools=[("t0", "fp", {"id": "t0"}), ("t1", "other", {"id": "t1"})],
            personas=[(p, "v", {"id": p}) for p in verdicts],
        )  # fmt: skip
        store.db.execute("UPDATE runs SET created_at = created_at + 10 WHERE id = 'r2'")
        for key in (CellKey("t0", "builder", "a:x"), CellKey("t1", "builder", "a:x")):
            store.save_review("r2", key, "a", "x", data={"verdict": "ship"}, error=None, raw_reply=None,
                              request_id=None, asks=1)  # fmt: skip
        store.db.commit()
    labels = tmp_path / "labels.csv"
    exported = cli("labels", "export", "--out", str(out), "-o", str(labels))
    assert exported.code == 0, exported.err
    assert "left out 1 label made on an earlier entry of their tool" in exported.err
    assert labels.read_text().splitlines() == [
        "tool,verdict,rater,source",
        "t0,ship,'=SUM(A1),approve run r1",
        "t0,ship,ana,approve run r1",
    ]
    with Store(out, readonly=True) as store:
        editors = editors_reference(store, "r2", ["t0", "t1"], ["ship", "skip"], n_resamples=50)
    from_file = load_labels(labels, ["t0", "t1"], ["ship", "skip"], n_resamples=50)
    assert from_file.labels.tolist() == editors.labels.tolist() == [0, -1]
    assert from_file.raters == editors.raters == ["=SUM(A1)", "ana"]
