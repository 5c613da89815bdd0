"""Simulated head-to-head answers (issue 25 §3): what was planted (tools' strengths, each judge's
position bias) is what the report reads back from the store a run of them leaves."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from panel.report.head_to_head import JudgeBias, answers_from_store, judge_bias, pair_results, tally
from panel.run.head_to_head import parse_head_to_head
from panel.store import HEAD_TO_HEAD_ROUND, Store
from panel.testing.simulate import SimulatedPanel, simulate_panel, write_simulated_run
from panel.testing.simulate_h2h import (
    FAILED_ERROR,
    SimulatedHeadToHead,
    position_from,
    simulate_head_to_head,
)

MEMBERS = ("sim:a", "sim:b")
PERSONAS = ("builder", "skeptic")


def _stored(
    tmp_path: Path, panel: SimulatedPanel, sim: SimulatedHeadToHead
) -> dict[tuple[str, str], JudgeBias]:
    """Write the run, read its head-to-head answers back as the report does, per judge."""
    write_simulated_run(tmp_path / "runs", panel, head_to_head=sim)
    with Store(tmp_path / "runs", readonly=True) as store:
        results = pair_results(answers_from_store(store.head_to_heads(panel.run_id)))
    return {(j.persona_id, j.member): j for j in judge_bias(results)}


def test_a_judge_that_always_picks_the_first_shown_ties_every_pair(tmp_path: Path) -> None:
    panel = simulate_panel(20, PERSONAS, MEMBERS, seed=1)
    sim = simulate_head_to_head(
        panel, 30, position_bias={("builder", "sim:a"): 1.0, ("skeptic", "sim:b"): -1.0}, missing=0.0
    )
    judges = _stored(tmp_path, panel, sim)
    first = judges[("builder", "sim:a")]
    assert (first.pairs, first.first_shown, first.consistent, first.second_shown) == (30, 30, 0, 0)
    assert first.position_bias.value == 1.0 and first.consistency.value == 0.0
    second = judges[("skeptic", "sim:b")]  # the other way round: always the second-shown
    assert (second.second_shown, second.position_bias.value) == (30, 0.0)
    with Store(tmp_path / "runs", readonly=True) as store:
        results = pair_results(answers_from_store(store.head_to_heads(panel.run_id)))
    # Each pair: a first-shown tie for that judge, and a tie for the other position-bound one.
    builder_a = {
        frozenset(r.tools): r.outcome for r in results if r.member == "sim:a" and r.persona_id == "builder"
    }
    assert builder_a == {frozenset(pair): "first-shown" for pair in sim.pairs}
    assert all(tally(results, pair).ties >= 2 for pair in sim.pairs)


def test_a_fair_judge_with_strong_gaps_is_consistent_and_picks_the_stronger(tmp_path: Path) -> None:
    panel = simulate_panel(10, PERSONAS, MEMBERS, seed=2)
    strengths = {tool: 10.0 * i for i, tool in enumerate(panel.tools)}
    sim = simulate_head_to_head(panel, 45, strengths=strengths, missing=0.0)
    judges = _stored(tmp_path, panel, sim)
    for judge in judges.values():
        assert (judge.pairs, judge.consistent) == (45, 45), judge
        assert judge.position_bias.n == 0 and not judge.position_bias.enough
    with Store(tmp_path / "runs", readonly=True) as store:
        results = pair_results(answers_from_store(store.head_to_heads(panel.run_id)))
    assert all(r.winner == max(r.tools, key=strengths.__getitem__) for r in results)


def test_a_planted_position_bias_of_0_7_is_recovered_within_its_wilson_interval(tmp_path: Path) -> None:
    panel = simulate_panel(60, PERSONAS, MEMBERS, seed=3)
    sim = simulate_head_to_head(panel, 300, position_bias={("skeptic", "sim:a"): 0.7}, missing=0.05)
    judge = _stored(tmp_path, panel, sim)[("skeptic", "sim:a")]
    assert judge.failed > 0  # failed asks are kept, and counted apart
    point, low, high = position_from(judge)
    assert low <= 0.7 <= high and abs(point - 0.7) < 0.1
    assert high < 0.9 and low > 0.5  # told apart from its neighbours
    # The report's own readings hold what the model says they should on these pairs.
    expected = sim.expected("skeptic", "sim:a")
    c_low, c_high = judge.consistency.interval or (1.0, 0.0)
    s_low, s_high = judge.position_bias.interval or (1.0, 0.0)
    assert c_low <= expected.consistency <= c_high
    assert s_low <= expected.first_shown_share <= s_high
    fair = _stored(tmp_path / "fair", panel, simulate_head_to_head(panel, 300))[("skeptic", "sim:a")]
    _, f_low, f_high = position_from(fair)
    assert f_low <= 0.0 <= f_high  # the same judge without the bias shows none


def test_the_stored_answers_are_a_real_runs_head_to_head_round(tmp_path: Path) -> None:
    panel = simulate_panel(8, PERSONAS, MEMBERS, seed=4, prices={"sim:a": 0.01, "sim:b": 0.02})
    sim = simulate_head_to_head(panel, 6, missing=0.2, seed=9)
    write_simulated_run(tmp_path / "runs", panel, head_to_head=sim)
    with Store(tmp_path / "runs", readonly=True) as store:
        rows = store.head_to_heads(panel.run_id)
        requests = store.db.execute(
            "SELECT id, tool_id, rival, ask FROM requests WHERE run_id = ? AND round = ?",
            (panel.run_id, HEAD_TO_HEAD_ROUND),
        ).fetchall()
        config = store.get_run(panel.run_id).config  # type: ignore[union-attr]
    assert len(rows) == 6 * 2 * len(PERSONAS) * len(MEMBERS)
    failed = [r for r in rows if not r.valid]
    assert failed and all(r.error == FAILED_ERROR and r.asks == 2 for r in failed)
    assert len(requests) == len(rows) + len(failed)  # a failed ask was re-asked once
    by_id = {r["id"]: r for r in requests}
    for row in rows:
        asked = by_id[row.request_id]
        assert (asked["tool_id"], asked["rival"], asked["ask"]) == (row.first_tool, row.second_tool, row.asks)
        assert row.cost_usd == pytest.approx(row.asks * panel.prices[row.member])
        if row.valid:  # the reply names a position, as a model's does, and it is the tool stored
            said = parse_head_to_head(row.raw_reply or "")
            assert row.picked == (row.first_tool if said["ship_with"] == "A" else row.second_tool)
    assert config["simulation"]["head_to_head"]["pairs"] == 6


def test_a_larger_position_bias_only_turns_answers_to_the_first_shown() -> None:
    panel = simulate_panel(30, PERSONAS, MEMBERS, seed=5)
    fair = simulate_head_to_head(panel, 100, missing=0.0)
    leaning = simulate_head_to_head(panel, 100, missing=0.0, position_bias={("builder", "sim:b"): 0.5})
    for a, b in zip(fair.answers, leaning.answers, strict=True):
        if (a.persona_id, a.member) != ("builder", "sim:b"):
            assert a == b  # the other judges' answers do not move
        elif a.picked != b.picked:
            assert b.picked == b.first


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pairs": 0}, "pairs must be between 1 and"),
        ({"pairs": 50}, "pairs must be between 1 and 45"),
        ({"pairs": [("sim-01", "sim-01")]}, "needs two of the panel's tools"),
        ({"pairs": [("sim-01", "sim-02"), ("sim-02", "sim-01")]}, "given twice"),
        ({"pairs": 3, "position_bias": {("builder", "sim:a"): 1.5}}, "must be in [-1, 1]"),
        ({"pairs": 3, "position_bias": {("critic", "sim:a"): 0.5}}, "not in the panel"),
        ({"pairs": 3, "missing": 1.0}, "missing must be in [0, 1)"),
        ({"pairs": 3, "strengths": {"sim-01": 0.0}}, "no strength for"),
    ],
)
def test_bad_parameters_are_refused(kwargs: dict[str, Any], message: str) -> None:
    panel = simulate_panel(10, PERSONAS, MEMBERS, seed=6)
    with pytest.raises(ValueError, match=re.escape(message)):
        simulate_head_to_head(panel, **kwargs)


def test_the_bench_script_writes_head_to_head_answers_with_a_planted_position_bias(
    tmp_path: Path, capsys: Any
) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.simulated_panel import POSITION_BIASED, main

    run_id = main(
        ["--tools", "12", "--out", str(tmp_path / "sim"), "--head-to-head", "20", "--position-bias", "1"]
    )
    assert "20 pairs x 12 judges x 2 orders = 480 asks" in capsys.readouterr().out
    with Store(tmp_path / "sim", readonly=True) as store:
        results = pair_results(answers_from_store(store.head_to_heads(run_id)))
        config = store.get_run(run_id).config  # type: ignore[union-attr]
    assert json.dumps(config["simulation"]["head_to_head"]["pairs"]) == "20"
    for judge in judge_bias(results):
        if judge.member in POSITION_BIASED:
            assert judge.consistent == 0 and judge.second_shown == 0 and judge.first_shown > 0
        else:
            assert judge.consistent > judge.first_shown


def test_the_bench_script_refuses_a_position_bias_without_pairs(tmp_path: Path, capsys: Any) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.simulated_panel import main

    with pytest.raises(SystemExit) as stopped:
        main(["--tools", "12", "--out", str(tmp_path / "sim"), "--position-bias", "0.5"])
    assert stopped.value.code == 2 and "--position-bias needs --head-to-head" in capsys.readouterr().err
    assert not (tmp_path / "sim").exists()


def test_the_biases_bench_prints_planted_against_recovered(capsys: Any) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.bench_biases import main

    summary = main(["--seeds", "1", "--tools", "60", "--pairs", "40", "--resamples", "100"])
    printed = capsys.readouterr().out
    assert "(a) Self-preference" in printed and "(b) Position bias per judge" in printed
    selves = {row["member"]: row for row in summary["self_preference"]}
    assert selves["sim:large"]["planted"] == 0.15 and selves["sim:small-a"]["planted"] == 0.0
    judges = {row["judge"]: row for row in summary["position"]}
    # the judge that always names the first-shown tool: every pair a first-shown tie, read as such
    assert judges["business_analyst / sim:small-a"]["planted"] == 1.0
    assert judges["business_analyst / sim:small-a"]["b_held"] == "1/1"
    assert "| business_analyst / sim:small-a | +1.00 | +1.000 [" in printed
