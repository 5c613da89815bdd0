"""`panel triage --reference`: the rule of panel.analysis.escalation joined to a run, on a
simulated panel written as a real run whose truth is known."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from panel.resources import data_dir
from panel.store import CellKey, Store
from panel.testing.simulate import (
    SimulatedPanel,
    editor_labels,
    simulate_panel,
    write_editor_labels,
    write_simulated_run,
)

MEMBERS = ("sim:a", "sim:b")


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimulatedPanel]:
    out = tmp_path_factory.mktemp("sim") / "runs"
    # 8 judges of accuracy 0.7: good enough to publish most verdicts at 0.9, not all of them
    panel = simulate_panel(400, members=MEMBERS, default_accuracy=0.7, missing=0.02, run_id="sim-run", seed=4)
    write_simulated_run(out, panel)
    return out, panel


def _labels(tmp_path: Path, panel: SimulatedPanel, n: int) -> Path:
    return write_editor_labels(tmp_path / f"labels-{n}.csv", editor_labels(panel, n, seed=1))


def test_the_rule_publishes_verdicts_that_agree_with_the_truth(
    cli: Any, simulated: tuple[Path, SimulatedPanel], tmp_path: Path
) -> None:
    out, panel = simulated
    labels = _labels(tmp_path, panel, 200)
    result = cli("triage", "sim-run", "--reference", str(labels), "--target", "0.9", "--format", "json",
                 "--out", str(out))  # fmt: skip
    assert result.code == 0, result.err
    found = json.loads(result.out)
    rule = found["rule"]
    assert rule["guarantee"] is True and rule["labels"] == 200 and rule["target"] == 0.9
    assert rule["bound"] >= 0.9 and 0 < rule["threshold"] <= 1
    published = [r for r in found["tools"] if r["decision"] == "publish"]
    assert len(published) == rule["published"] and rule["coverage"] == len(published) / 400
    assert 200 < len(published) < 380  # most verdicts can go out unread, not all
    truth = dict(zip(panel.tools, panel.truth, strict=True))
    labelled = {r["tool_id"] for r in found["tools"] if r["reference"] is not None}
    unread = [r for r in published if r["tool_id"] not in labelled]
    right = sum(r["verdict"] == ("ship" if truth[r["tool_id"]] == "ship" else "not ship") for r in unread)
    assert right / len(unread) >= 0.9
    # every tool at or above the threshold is published, every one below goes to an editor
    for r in found["tools"]:
        own = None if r["ship"] is None or r["verdict"] is None else max(r["ship"], 1 - r["ship"])
        assert (r["decision"] == "publish") == (own is not None and own >= rule["threshold"])


def test_the_table_says_threshold_bound_coverage_and_labels_above_the_rows(
    cli: Any, simulated: tuple[Path, SimulatedPanel], tmp_path: Path
) -> None:
    out, panel = simulated
    labels = _labels(tmp_path, panel, 200)
    result = cli("triage", "last", "--reference", str(labels), "--limit", "3", "--out", str(out))
    assert result.code == 0, result.err
    head = " ".join(result.out.split("┏")[0].split())
    # first what the probabilities rest on, then the rule's outcome
    assert head.startswith("400 of 400 tools: Dawid–Skene on 400 tools and 8 judges")
    assert "Threshold 0." in head and "bound 0.9" in head and "coverage 0.7" in head
    # the bound holds for a random sample of labels only, and the line says so (JSON too)
    assert "on 200 reference labels (assuming the labelled tools are a random sample of the run)." in head
    assert "decision" in result.out and result.out.count("│ editor ") == 3  # the 3 most doubtful
    csv_run = cli("triage", "last", "--reference", str(labels), "--format", "csv", "--out", str(out))
    rows = list(csv.DictReader(io.StringIO(csv_run.out)))
    assert len(rows) == 400 and {r["decision"] for r in rows} == {"publish", "editor"}
    assert "Threshold" in csv_run.err
    as_json = cli("triage", "last", "--reference", str(labels), "--format", "json", "--out", str(out))
    assert json.loads(as_json.out)["sentence"].endswith(
        "(assuming the labelled tools are a random sample of the run)."
    )


def test_too_few_labels_refuses_and_sends_every_tool_to_an_editor(
    cli: Any, simulated: tuple[Path, SimulatedPanel], tmp_path: Path
) -> None:
    out, panel = simulated
    labels = _labels(tmp_path, panel, 20)
    result = cli("triage", "sim-run", "--reference", str(labels), "--format", "json", "--out", str(out))
    assert result.code == 0, result.err
    found = json.loads(result.out)
    assert found["rule"]["guarantee"] is False and found["rule"]["code"] == "too_few_labels"
    assert found["sentence"].startswith("No guarantee is possible: 20 labelled tools")
    assert {r["decision"] for r in found["tools"]} == {"editor"}
    table = cli("triage", "sim-run", "--reference", str(labels), "--limit", "1", "--out", str(out))
    assert "No guarantee is possible" in table.out and "ranked by doubt only" in " ".join(table.out.split())


def test_editors_labels_in_the_store_are_the_reference(
    cli: Any, simulated: tuple[Path, SimulatedPanel], tmp_path: Path
) -> None:
    out, panel = simulated
    copy = tmp_path / "runs"
    copy.mkdir()
    with Store(out) as src, Store(copy) as dst:  # a copy: the labels stay out of the shared run
        src.db.execute("VACUUM INTO ?", (str(copy / "panel-copy.db"),))
        del dst
    (copy / "panel.db").unlink()
    (copy / "panel-copy.db").rename(copy / "panel.db")
    none = cli("triage", "sim-run", "--reference", "editors", "--format", "json", "--out", str(copy))
    assert none.code == 0, none.err
    assert json.loads(none.out)["rule"]["labels"] == 0
    chosen = editor_labels(panel, 60, seed=2)
    with Store(copy) as store:
        for tool in chosen:  # an editor approves the builder's review on sim:a of 60 tools
            store.approve("sim-run", CellKey(tool, "builder", "sim:a", 0), True, editor="ana")
        approved = {f.tool_id for f in store.labels_in_force("sim-run")}
    result = cli("triage", "sim-run", "--reference", "editors", "--format", "json", "--out", str(copy))
    assert result.code == 0, result.err
    found = json.loads(result.out)
    assert found["rule"]["labels"] == len(approved) and found["reference"] == "editors"
    assert {r["tool_id"] for r in found["tools"] if r["reference"] is not None} == approved


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--reference", "nope.csv"), "--reference nope.csv: no such labels file"),
        (("--reference", "community", "--target", "1.5"), "--target 1.5"),
        (("--reference", "community", "--level", "0"), "--level 0.0: give a confidence of at least 0.5"),
        (("--reference", "community", "--level", "0.3"), "--level 0.3: give a confidence of at least 0.5"),
        (("--reference", "community", "--level", "1e-300"), "--level 0.0: give a confidence of at least 0.5"),
        (("--reference", "community", "--target", "0.99999"), "--target 1.0: give a share strictly"),
    ],
)
def test_bad_rule_input_is_one_line_naming_the_option(
    cli: Any, simulated: tuple[Path, SimulatedPanel], args: tuple[str, ...], said: str
) -> None:
    out, _ = simulated
    result = cli("triage", "sim-run", *args, "--out", str(out))
    assert result.code == 2 and said in result.err and len(result.err.strip().splitlines()) == 1


def test_a_target_past_the_third_decimal_is_the_same_rule(
    cli: Any, simulated: tuple[Path, SimulatedPanel], tmp_path: Path
) -> None:
    out, panel = simulated
    labels = _labels(tmp_path, panel, 200)
    found = []
    for target in ("0.9", "0.9000001"):
        result = cli("triage", "sim-run", "--reference", str(labels), "--target", target,
                     "--level", "0.95000004", "--format", "json", "--out", str(out))  # fmt: skip
        assert result.code == 0, result.err
        found.append(json.loads(result.out))
    assert found[1]["rule"]["target"] == 0.9 and found[1]["rule"]["level"] == 0.95
    assert found[1] == found[0]


def test_community_votes_are_a_reference(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    panel = simulate_panel(200, members=MEMBERS, default_accuracy=0.7, run_id="voted", seed=5)
    write_simulated_run(out, panel, community_votes=20, community_accuracy=0.9)
    with Store(out) as store:
        votes = [t.get("community") or {} for t in store.run_tools("voted")]
    # a tool's reference: the majority of at least 5 votes (a tie gives none)
    expected = sum(
        1 for v in votes if v.get("ship", 0) + v.get("skip", 0) >= 5 and v.get("ship") != v.get("skip")
    )
    result = cli("triage", "voted", "--reference", "community", "--format", "json", "--out", str(out))
    assert result.code == 0, result.err
    found = json.loads(result.out)
    assert found["reference"] == "community" and found["rule"]["labels"] == expected > 100
    assert "sentence" in found["rule"] and found["sentence"] == found["rule"]["sentence"]


def test_audit_draws_the_same_tools_for_the_same_seed(
    cli: Any, simulated: tuple[Path, SimulatedPanel]
) -> None:
    out, panel = simulated

    def drawn(*seed: str) -> list[str]:
        result = cli("triage", "sim-run", "--audit", "25", *seed, "--format", "json", "--out", str(out))
        assert result.code == 0, result.err
        found = json.loads(result.out)
        assert found["audit"] == {"tools": 25, "seed": int(seed[1])}
        jsonschema.validate(found, json.loads((data_dir("schema") / "triage.schema.json").read_text()))
        return [r["tool_id"] for r in found["tools"]]

    first, again, other = drawn("--seed", "7"), drawn("--seed", "7"), drawn("--seed", "8")
    assert first == again and len(set(first)) == 25 and set(first) <= set(panel.tools)
    assert set(first) != set(other)
    # not the doubt order's head: a draw over the whole run
    ranked = cli("triage", "sim-run", "--format", "json", "--out", str(out))
    head = [r["tool_id"] for r in json.loads(ranked.out)["tools"][:25]]
    assert set(first) != set(head)


@pytest.mark.parametrize(("n", "said"), [("401", "--audit 401"), ("0", "--audit 0")])
def test_audit_larger_than_the_run_is_refused_in_one_line(
    cli: Any, simulated: tuple[Path, SimulatedPanel], n: str, said: str
) -> None:
    out, _ = simulated
    result = cli("triage", "sim-run", "--audit", n, "--out", str(out))
    assert result.code == 2 and said in result.err and len(result.err.strip().splitlines()) == 1
