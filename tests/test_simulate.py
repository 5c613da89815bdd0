"""Simulated panels: what was planted is what the rows, the written run and the labels show."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

from panel.analysis.agreement import LONG_COLUMNS
from panel.analysis.judges import judgments
from panel.analysis.reference import community_reference, load_labels
from panel.store import Store
from panel.testing.simulate import PERSONAS, simulate_panel, write_labels, write_simulated_run

MEMBERS = ("sim:small-a", "sim:small-b", "sim:large")
PRICES = {"sim:small-a": 0.0004, "sim:small-b": 0.0003, "sim:large": 0.003}


def _accuracy() -> dict[tuple[str, str], float]:
    base = {"builder": 0.8, "skeptic": 0.7, "futurist": 0.6, "business_analyst": 0.75}
    bonus = {"sim:small-a": 0.0, "sim:small-b": -0.05, "sim:large": 0.12}
    return {(p, m): base[p] + bonus[m] for p in PERSONAS for m in MEMBERS}


def _within(observed: float, expected: float, n: int, sigmas: float = 4.0) -> bool:
    return abs(observed - expected) <= sigmas * math.sqrt(expected * (1 - expected) / n)


def _shares(rows: list[dict[str, Any]], truth: dict[str, str]) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(persona, member, truth) -> (ship verdicts, valid verdicts)."""
    out: dict[tuple[str, str, str], tuple[int, int]] = {}
    for r in rows:
        if r["verdict"] is None:
            continue
        key = (r["persona"], r["member"], truth[r["tool"]])
        ship, n = out.get(key, (0, 0))
        out[key] = (ship + (r["verdict"] == "ship"), n + 1)
    return out


def test_rows_have_the_long_table_columns_and_one_cell_each() -> None:
    panel = simulate_panel(7, PERSONAS, MEMBERS, accuracy=None, prices=PRICES, missing=0.2, seed=3)
    assert len(panel.rows) == 7 * 4 * 3 and all(tuple(r) == LONG_COLUMNS for r in panel.rows)
    assert len({(r["tool"], r["persona"], r["member"]) for r in panel.rows}) == len(panel.rows)
    assert {r["cost_usd"] for r in panel.rows if r["member"] == "sim:large"} == {0.003}
    assert all(r["valid"] == (r["verdict"] is not None) for r in panel.rows)
    again = simulate_panel(7, PERSONAS, MEMBERS, accuracy=None, prices=PRICES, missing=0.2, seed=3)
    assert again.rows == panel.rows and again.truth == panel.truth


def test_planted_accuracies_are_what_the_rows_show() -> None:
    planted = _accuracy()
    panel = simulate_panel(2000, PERSONAS, MEMBERS, accuracy=planted, missing=0.05, seed=11)
    truth = dict(zip(panel.tools, panel.truth, strict=True))
    assert _within(panel.truth.count("ship") / 2000, 0.5, 2000)
    right: dict[tuple[str, str], list[bool]] = {}
    for r in panel.rows:
        if r["verdict"] is not None:
            right.setdefault((r["persona"], r["member"]), []).append(r["verdict"] == truth[r["tool"]])
    for judge, a in planted.items():
        said = right[judge]
        assert _within(sum(said) / len(said), a, len(said)), (judge, sum(said) / len(said), a)
        assert panel.expected_accuracy(*judge) == pytest.approx(a)  # no bias: a on either truth
    failed = sum(r["verdict"] is None for r in panel.rows)
    assert _within(failed / len(panel.rows), 0.05, len(panel.rows))


def test_a_persona_bias_shifts_the_log_odds_of_ship_for_that_persona_only() -> None:
    panel = simulate_panel(
        2000, PERSONAS, MEMBERS, accuracy=None, default_accuracy=0.8, persona_bias={"skeptic": -1.0}, seed=5
    )
    # sigmoid(logit(0.8) - 1) = 4 / (4 + e): the skeptic says ship less on every tool.
    assert panel.p_ship("skeptic", "sim:large", "ship") == pytest.approx(4 / (4 + math.e))
    assert panel.p_ship("skeptic", "sim:large", "skip") == pytest.approx(0.25 / (0.25 + math.e))
    assert panel.p_ship("builder", "sim:large", "ship") == pytest.approx(0.8)
    shares = _shares(panel.rows, dict(zip(panel.tools, panel.truth, strict=True)))
    for (persona, member, truth), (ship, n) in shares.items():
        expected = panel.p_ship(persona, member, truth)
        assert _within(ship / n, expected, n), (persona, member, truth, ship / n, expected)


def test_a_member_bias_shifts_that_member_across_personas() -> None:
    panel = simulate_panel(2000, PERSONAS, MEMBERS, accuracy=None, member_bias={"sim:small-b": 1.5}, seed=6)
    shares = _shares(panel.rows, dict(zip(panel.tools, panel.truth, strict=True)))
    for (persona, member, truth), (ship, n) in shares.items():
        assert _within(ship / n, panel.p_ship(persona, member, truth), n)
    # P(ship | skip) of a judge of accuracy 0.8: 0.2, or sigmoid(-logit(0.8) + 1.5) on sim:small-b.
    assert (
        panel.confusion("futurist", "sim:small-b")[1][0]
        > 0.5
        > panel.confusion("futurist", "sim:large")[1][0]
    )


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        simulate_panel(5, PERSONAS, MEMBERS, accuracy={("builder", "sim:large"): 1.0})
    with pytest.raises(ValueError, match="not in the panel"):
        simulate_panel(5, PERSONAS, MEMBERS, accuracy={("nobody", "sim:large"): 0.7})


def test_the_written_run_reads_back_through_panel_agreement(cli: Any, tmp_path: Path) -> None:
    panel = simulate_panel(200, PERSONAS, MEMBERS, accuracy=_accuracy(), missing=0.1, prices=PRICES, seed=2)
    out = tmp_path / "runs"
    run_id = write_simulated_run(out, panel, community_votes=20)
    result = cli("agreement", run_id, "--format", "csv", "--out", str(out))  # type: ignore[operator]
    assert result.code == 0, result.err
    read = list(csv.DictReader(io.StringIO(result.out)))
    assert len(read) == len(panel.rows)
    planted = {(r["tool"], r["persona"], r["member"]): r for r in panel.rows}
    for row in read:
        want = planted[(row["tool"], row["persona"], row["member"])]
        assert row["run"] == run_id and (row["verdict"] or None) == want["verdict"]
        assert row["valid"] == str(want["valid"]) and float(row["cost_usd"]) == pytest.approx(
            want["cost_usd"]
        )
        assert (row["backend"], row["model"]) == tuple(want["member"].split(":"))
        assert (int(row["input_tokens"]), int(row["output_tokens"])) == (900, 250)
    # The analysis's matrix sees the planted verdicts and spend in the run's order.
    table = judgments([{**r, "verdict": r["verdict"] or None} for r in read], categories=["ship", "skip"])
    assert table.personas == sorted(PERSONAS) and table.cost.sum() == pytest.approx(
        200 * 4 * sum(PRICES.values())
    )
    report = cli("agreement", run_id, "--format", "json", "--resamples", "20", "--out", str(out))  # type: ignore[operator]
    assert report.code == 0, report.err
    assert json.loads(report.out)["stats"]["n_items"] == 200


def test_the_written_run_holds_real_personas_and_community_votes_from_the_truth(tmp_path: Path) -> None:
    panel = simulate_panel(400, PERSONAS, MEMBERS, accuracy=None, seed=4)
    run_id = write_simulated_run(tmp_path, panel, community_votes=30, community_accuracy=0.9)
    with Store(tmp_path, readonly=True) as store:
        run = store.get_run(run_id)
        assert run is not None and run.status == "done"
        assert run.config["kind"] == "simulated" and run.config["members"] == list(MEMBERS)
        personas = store.run_personas(run_id)
        tools = store.run_tools(run_id)
    assert [p["id"] for p in personas] == list(PERSONAS) and all(p["questions"] for p in personas)
    total = [t["community"]["ship"] + t["community"]["skip"] for t in tools]
    assert 27 <= sum(total) / len(total) <= 33 and min(total) < 25  # some fall under a threshold
    ref = community_reference(tools, panel.tools, ["ship", "skip"], min_votes=25)
    has = ref.labels >= 0
    agree = sum(
        ["ship", "skip"][int(code)] == t for code, t, h in zip(ref.labels, panel.truth, has, strict=True) if h
    )
    assert agree / int(has.sum()) > 0.97  # 90%-right voters, 25+ votes: the majority is the truth
    assert any("fewer than 25 community votes" in n for n in ref.notes)
    with pytest.raises(ValueError, match="already in"):
        write_simulated_run(tmp_path, panel)


def test_a_persona_not_in_the_project_is_refused(tmp_path: Path) -> None:
    panel = simulate_panel(3, ["builder", "oracle"], MEMBERS, accuracy=None)
    with pytest.raises(ValueError, match=r"not personas of the project: \['oracle'\]"):
        write_simulated_run(tmp_path, panel)


def test_labels_of_a_perfect_rater_are_the_truth(tmp_path: Path) -> None:
    panel = simulate_panel(50, PERSONAS, MEMBERS, accuracy=None, seed=8)
    path = write_labels(tmp_path / "labels.csv", panel)
    ref = load_labels(path, panel.tools, ["ship", "skip"], n_resamples=20)
    assert [["ship", "skip"][c] for c in ref.labels] == panel.truth
    assert ref.raters == ["rater-1"] and ref.human_agreement is None and ref.notes == []


def test_labels_of_noisy_raters_give_the_planted_human_agreement(tmp_path: Path) -> None:
    panel = simulate_panel(2000, PERSONAS, MEMBERS, accuracy=None, seed=9)
    ref = load_labels(write_labels(tmp_path / "l.csv", panel, 2, 0.8), panel.tools, ["ship", "skip"])
    # Two raters right 80% of the time agree on 0.8^2 + 0.2^2 = 68% of tools; by chance 50%.
    alpha = ref.human_agreement
    assert alpha is not None and alpha.low <= 0.36 <= alpha.high and abs(alpha.point - 0.36) < 0.05
    tied = sum(1 for row in ref.counts if row[0] == row[1])
    assert ref.notes == [f"{tied} tools have tied labels and no reference"]


def test_the_bench_script_writes_a_run_labels_and_the_command(tmp_path: Path, capsys: Any) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.simulated_panel import main

    run_id = main(["--tools", "30", "--out", str(tmp_path / "sim")])
    printed = capsys.readouterr().out
    assert (
        f"panel agreement {run_id} --out {tmp_path / 'sim'} --reference {tmp_path / 'sim' / 'labels.csv'}"
        in (printed)
    )
    assert "skeptic / sim:large" in printed and (tmp_path / "sim" / "labels.csv").is_file()
    with Store(tmp_path / "sim", readonly=True) as store:
        assert store.review_counts(run_id)[0] + store.review_counts(run_id)[1] == 30 * 12


class _Counted(str):
    """A tool id that counts how often it is compared for equality."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        _Counted.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_judgments_follow_the_runs_order_without_scanning_it_per_tool() -> None:
    n = 400
    ids = [f"t{i:04d}" for i in range(n)]
    rows = [
        {"tool": _Counted(t), "persona": "builder", "member": "m", "verdict": "ship", "cost_usd": 0.0}
        for t in reversed(ids)
    ]
    rows.append({"tool": _Counted("zz-unknown"), "persona": "builder", "member": "m", "verdict": "ship"})
    order = [_Counted(t) for t in [ids[1], *ids]]  # repeated: its first place counts
    _Counted.compared = 0
    j = judgments(rows, categories=["ship", "skip"], order={"tool": order})
    assert j.tools == [ids[1], ids[0], *ids[2:], "zz-unknown"]
    assert _Counted.compared < 10 * n  # a scan of the order per tool would be ~n * n / 2
