"""Reliabilities carried forward: a second run of the same judges after editor labels on a first
run gets method "editors" by default, resting on those labels; the triage rule never reads
them for the tools it is checked on; a changed persona says its old reliability no longer
applies."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from panel.report.confidence import run_confidence
from panel.resources import data_dir
from panel.store import CellKey, Store
from panel.testing.simulate import SimulatedPanel, simulate_panel, write_simulated_run

pytest.importorskip("scipy")

MEMBERS = ("sim:a", "sim:b")


def _panel(run_id: str) -> SimulatedPanel:
    return simulate_panel(120, members=MEMBERS, default_accuracy=0.7, missing=0.02, run_id=run_id, seed=7)


def _label(store: Store, panel: SimulatedPanel, n: int) -> None:
    """An editor stands behind the truth of the first n tools: approves the builder's review on
    sim:a when it says the truth, else edits its verdict to the truth."""
    for tool, truth in list(zip(panel.tools, panel.truth, strict=True))[:n]:
        key = CellKey(tool, "builder", "sim:a", 0)
        said = store.verdicts_in_force(panel.run_id, tool).get(key)
        if said == truth:
            store.approve(panel.run_id, key, editor="ana")
        else:
            store.edit_review(panel.run_id, key, "verdict", truth, editor="ana")


@pytest.fixture
def two_runs(runs_dir: Path) -> Path:
    first = _panel("run-1")
    write_simulated_run(runs_dir, first)
    with Store(runs_dir) as store:
        _label(store, first, 80)
    write_simulated_run(runs_dir, _panel("run-2"))
    return runs_dir


def test_a_second_run_of_the_same_judges_uses_the_editors_reliabilities(cli: Any, two_runs: Path) -> None:
    result = cli("triage", "run-2", "--format", "json", "--out", str(two_runs))
    assert result.code == 0, result.err
    found = json.loads(result.out)
    assert found["method"] == "editors" and 70 <= found["rests_on"] <= 80
    c = found["tools"][0]
    assert c["method"] == "editors"
    shown = cli("show", "run-2", "--tool", found["tools"][0]["tool_id"], "--out", str(two_runs))
    assert f"judges' reliability from {found['rests_on']} editor labels" in " ".join(shown.out.split())
    # the first run itself has no earlier labels: its own are never read for its confidence
    own = json.loads(cli("triage", "run-1", "--format", "json", "--out", str(two_runs)).out)
    assert own["method"] == "dawid-skene" and own["rests_on"] == 0


def test_the_rule_leaves_the_labelled_tools_out_of_the_reliabilities(cli: Any, two_runs: Path) -> None:
    # run-2's tools are run-1's entries: the 80 labels are its reference too, so the rule's
    # probabilities must not rest on them (nothing else is labelled: no carry-forward at all)
    result = cli("triage", "run-2", "--reference", "editors", "--format", "json", "--out", str(two_runs))
    assert result.code == 0, result.err
    found = json.loads(result.out)
    assert found["rule"]["labels"] == 80 and found["method"] == "dawid-skene" and found["rests_on"] == 0


def test_a_changed_persona_says_its_old_reliability_no_longer_applies(
    cli: Any, two_runs: Path, tmp_path: Path
) -> None:
    personas = tmp_path / "personas"
    shutil.copytree(data_dir("personas"), personas)
    with (personas / "builder.yaml").open("a", encoding="utf-8") as handle:
        handle.write("# reworded since the labels\n")
    write_simulated_run(two_runs, _panel("run-3"), personas_dir=personas)
    result = cli("triage", "run-3", "--limit", "1", "--out", str(two_runs))
    assert result.code == 0, result.err
    flat = " ".join(result.out.split())
    assert "builder / sim:a:" in flat and "its old reliability no longer applies" in flat
    data = json.loads(cli("triage", "run-3", "--format", "json", "--out", str(two_runs)).out)
    assert any(n.startswith("builder / sim:b:") for n in data["notes"])
    assert data["method"] == "editors"  # the other personas' labels still carry
    shown = " ".join(cli("show", "run-3", "--out", str(two_runs)).out.split())
    assert "Editors' labels of earlier runs: builder / sim:a:" in shown


def test_a_labels_file_leaves_only_its_own_tools_out_of_the_reliabilities(
    cli: Any, two_runs: Path, tmp_path: Path
) -> None:
    panel = _panel("run-2")
    labels = tmp_path / "labels.csv"  # a researcher's labels on 40 of the 80 tools the editor labelled
    rows = [f"{t},{v}" for t, v in list(zip(panel.tools, panel.truth, strict=True))[:40]]
    labels.write_text("tool,verdict\n" + "\n".join(rows) + "\n", encoding="utf-8")
    everything = json.loads(cli("triage", "run-2", "--format", "json", "--out", str(two_runs)).out)
    result = cli("triage", "run-2", "--reference", str(labels), "--format", "json", "--out", str(two_runs))
    assert result.code == 0, result.err
    found = json.loads(result.out)
    assert found["rule"]["labels"] == 40 and found["method"] == "editors"
    # the reliabilities rest on the editor's other 40 tools only (a judge misses a failed review)
    assert 35 <= found["rests_on"] <= 40 < everything["rests_on"]


def test_the_rule_reads_the_models_verdicts_not_the_editors_edits(cli: Any, two_runs: Path) -> None:
    # run-1's editor edited the builder's wrong verdicts to the truth: those edits are labels,
    # and must not be votes of the probability the rule checks them against. run-2 holds the
    # same draws with no edit: the rule on run-1 reads the same probabilities as run-2 without labels.
    with Store(two_runs) as store:
        edited = {e.key.tool_id for e in store.edits("run-1") if e.field == "verdict"}
        plain = run_confidence(store, "run-2", carry_forward=False)
    assert len(edited) >= 10
    result = cli("triage", "run-1", "--reference", "editors", "--format", "json", "--out", str(two_runs))
    assert result.code == 0, result.err
    rows = {r["tool_id"]: r for r in json.loads(result.out)["tools"]}
    assert all(rows[t]["ship"] == plain[t].ship for t in edited)
