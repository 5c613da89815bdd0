"""Self-preference (issue 25 §1): a planted same-maker ship bias is recovered on a simulated
panel, and no bias is reported where none was planted."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from panel.analysis.self_preference import self_preference
from panel.testing.simulate import simulate_panel, write_simulated_run

MEMBERS = {"sim:a": "Alpha", "sim:b": "Beta", "sim:c": "Gamma"}


@pytest.mark.parametrize("seed", [1, 2, 5])
def test_a_planted_same_maker_bias_is_recovered_and_no_other(seed: int) -> None:
    panel = simulate_panel(
        300, members=list(MEMBERS), member_makers=MEMBERS, maker_bias={"sim:a": 0.15}, seed=seed
    )
    found = {f.member: f for f in self_preference(panel.rows, panel.tool_makers, MEMBERS, n_resamples=500)}
    a = found["sim:a"].estimate
    assert a.low <= 0.15 <= a.high and a.low > 0  # recovered, and told from none
    for other in ("sim:b", "sim:c"):
        e = found[other].estimate
        assert e.low <= 0.0 <= e.high, (other, e)
    assert (found["sim:a"].own_tools, found["sim:a"].other_tools) == (100, 200)


def test_a_member_that_ships_more_of_everything_has_no_self_preference() -> None:
    # A member bias (more ship on every tool) is not a same-maker bias.
    panel = simulate_panel(
        300, members=list(MEMBERS), member_makers=MEMBERS, member_bias={"sim:a": 1.0}, seed=4
    )
    (a, *_) = self_preference(panel.rows, panel.tool_makers, MEMBERS, n_resamples=500)
    assert a.estimate.low <= 0.0 <= a.estimate.high


def test_a_member_without_a_maker_is_not_measured_and_one_without_tools_is_nan() -> None:
    panel = simulate_panel(30, members=list(MEMBERS), member_makers=MEMBERS, seed=5)
    found = self_preference(panel.rows, panel.tool_makers, {"sim:a": None, "sim:b": "Nobody"}, n_resamples=50)
    assert [f.member for f in found] == ["sim:b"] and math.isnan(found[0].estimate.point)


def test_panel_agreement_reports_it_for_a_run_with_makers(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    panel = simulate_panel(
        300, ("builder", "skeptic"), list(MEMBERS), member_makers=MEMBERS, maker_bias={"sim:a": 0.15}, seed=1
    )
    run = write_simulated_run(out, panel)
    made = cli("agreement", run, "--out", str(out), "--resamples", "300", "--format", "json")
    assert made.code == 0, made.err
    data = json.loads(made.out)
    assert "self_preference" not in data  # moved under the Biases section
    found = {f["member"]: f for f in data["biases"]["self_preference"]["members"]}
    assert set(found) == set(MEMBERS)
    assert found["sim:a"]["low"] <= 0.15 <= found["sim:a"]["high"] and found["sim:a"]["low"] > 0
    assert "excludes 0" in found["sim:a"]["reading"] and found["sim:a"]["sample"] is None
    page = tmp_path / "agreement.html"
    table = cli("agreement", run, "--out", str(out), "--resamples", "300", "--report", str(page))
    assert table.code == 0 and "Self-preference" in table.out
    assert "Self-preference: does a member favour its maker&#39;s tools?" in page.read_text(encoding="utf-8")


def test_below_its_minimum_a_members_self_preference_is_too_small(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    panel = simulate_panel(
        24, ("builder", "skeptic"), list(MEMBERS), member_makers=MEMBERS, maker_bias={"sim:a": 0.15}, seed=1
    )
    run = write_simulated_run(out, panel)
    made = cli("agreement", run, "--out", str(out), "--resamples", "100", "--format", "json")
    assert made.code == 0, made.err
    (a, *_) = json.loads(made.out)["biases"]["self_preference"]["members"]
    assert (a["own_tools"], a["estimate"], a["low"], a["sample"]["minimum"]) == (8, None, None, 10)
    assert a["reading"].startswith("Too small a sample: 8 tools")


def test_a_run_without_makers_has_no_self_preference(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    run = write_simulated_run(out, simulate_panel(40, ("builder", "skeptic"), list(MEMBERS), seed=1))
    made = cli("agreement", run, "--out", str(out), "--resamples", "100", "--format", "json")
    assert made.code == 0
    part = json.loads(made.out)["biases"]["self_preference"]
    assert part["members"] == [] and "names a maker" in part["absent"]
