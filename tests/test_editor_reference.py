"""`panel agreement RUN --reference editors` scores the panel against the editors' labels in
force, with the figures a labels file gives; `panel labels export` writes that labels file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from panel.store import CellKey, Store
from panel.testing.simulate import SimulatedPanel, simulate_panel, write_simulated_run

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


def test_editors_labels_are_the_reference_and_export_reads_back_the_same(
    cli: Any, tmp_path: Path
) -> None:
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
