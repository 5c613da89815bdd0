"""Self-preference (issue 25 §1): a planted same-maker ship bias is recovered on a simulated
panel, and no bias is reported where none was planted."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from panel.analysis.self_preference import MIN_TOOLS, self_preference
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
    assert a["reading"].startswith("Too small a sample: 8 own tools (10 needed)")


def test_a_run_without_makers_has_no_self_preference(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    run = write_simulated_run(out, simulate_panel(40, ("builder", "skeptic"), list(MEMBERS), seed=1))
    made = cli("agreement", run, "--out", str(out), "--resamples", "100", "--format", "json")
    assert made.code == 0
    part = json.loads(made.out)["biases"]["self_preference"]
    assert part["members"] == [] and "names a maker" in part["absent"]


def test_self_preference_on_one_own_tool_is_too_few_not_a_finding() -> None:
    said = [("t1", "a", "ship"), ("t1", "b", "skip"), ("t1", "c", "skip"),
            ("t2", "a", "skip"), ("t2", "b", "skip"), ("t2", "c", "ship")]  # fmt: skip
    rows = [{"tool": t, "member": m, "repeat": 0, "verdict": v, "valid": True} for t, m, v in said]
    found = {
        f.member: f for f in self_preference(rows, {"t1": "A", "t2": "C"}, {"a": "A", "b": "B", "c": "C"})
    }
    a = found["a"]
    # Two tools, one review each, once read "+1.000, 95% CI +1.000 to +1.000": a certain bias.
    assert (a.own_tools, a.other_tools, a.tools) == (1, 1, 2)
    assert math.isnan(a.estimate.point) and math.isnan(a.estimate.low) and a.estimate.resamples_used == 0
    assert a.too_few == f"too few: 1 own tool and 1 other tool ({MIN_TOOLS} each needed)"


def test_the_table_and_json_say_too_few_with_the_counts(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    # 12 tools of 3 makers: each member has 4 of its maker's and 8 others (10 of each needed)
    panel = simulate_panel(12, ("builder", "skeptic"), list(MEMBERS), member_makers=MEMBERS, seed=1)
    run = write_simulated_run(out, panel)
    made = cli("agreement", run, "--out", str(out), "--resamples", "100", "--format", "json")
    assert made.code == 0, made.err
    members = json.loads(made.out)["biases"]["self_preference"]["members"]
    a = next(f for f in members if f["member"] == "sim:a")
    assert (a["estimate"], a["low"], a["high"]) == (None, None, None)
    assert (a["own_tools"], a["other_tools"], a["tools"]) == (4, 8, 12)
    assert a["too_few"] == "too few: 4 own tools and 8 other tools (10 each needed)"
    table = cli("agreement", run, "--out", str(out), "--resamples", "100")
    assert table.code == 0 and table.out.count("too few: 4 own tools and 8 other tools") == 3, table.out


def _two_runs(tmp_path: Path, second: dict[str, str | None]) -> tuple[Any, list[str]]:
    """Runs of the same four tools: with makers, then with `second`'s; the store (open) and ids."""
    import asyncio

    from panel.config import load_config
    from panel.run.plan import plan_run, run_plan
    from panel.store import Store

    from .test_makers import _catalog, _toml

    toml = (
        '[[members]]\nspec = "fake"\nname = "a"\nmaker = "Acme"\n'
        '[[members]]\nspec = "fake:two"\nname = "o"\nmaker = "Other"\n'
        '[[members]]\nspec = "fake:three"\nname = "n"\n'
    )
    made: dict[str, str | None] = {"acme-one": "Acme", "acme-two": "Acme", "other": "Other", "more": "Other"}
    store = Store(tmp_path / "runs")
    runs = []
    for makers in (made, second):
        sub = tmp_path / str(len(runs))
        sub.mkdir()
        plan = plan_run(None, catalog=_catalog(sub, makers), persona_ids=["builder", "skeptic"],
                        config=load_config(_toml(sub, toml)))  # fmt: skip
        runs.append(asyncio.run(run_plan(plan, store, "test"))[0])
    return store, runs


def test_self_preference_over_two_runs_does_not_depend_on_their_order(tmp_path: Path) -> None:
    from panel.analysis.self_preference import run_self_preference

    # the same tools again from an older catalog without makers: it erased them when read last
    store, runs = _two_runs(tmp_path, dict.fromkeys(["acme-one", "acme-two", "other", "more"]))
    with store:
        forward = run_self_preference(store, runs, n_resamples=50)
        backward = run_self_preference(store, runs[::-1], n_resamples=50)
    assert [(f.member, f.own_tools, f.other_tools) for f in forward] == [("a", 2, 2), ("o", 2, 2)]
    assert [(f.member, f.own_tools, f.other_tools) for f in backward] == [("a", 2, 2), ("o", 2, 2)]
    assert forward.notes == backward.notes == []


def test_a_tool_two_runs_give_different_makers_is_left_out_and_said(cli: Any, tmp_path: Path) -> None:
    from panel.analysis.self_preference import run_self_preference

    store, runs = _two_runs(tmp_path, {"acme-one": "Other", "acme-two": "acme", "other": None, "more": None})
    with store:
        found = run_self_preference(store, runs, n_resamples=50)
    (note,) = found.notes
    assert note == (
        f"self-preference: tool 'acme-one' has different makers ('Acme' in run {runs[0]}, "
        f"'Other' in run {runs[1]}): left out"
    )
    assert [(f.member, f.own_tools, f.other_tools) for f in found] == [("a", 1, 2), ("o", 2, 1)]
    said = cli("agreement", *runs, "--out", str(tmp_path / "runs"), "--resamples", "50")
    assert said.code == 0, said.err
    assert [x for x in said.err.splitlines() if x.startswith("note: self-preference")] == [f"note: {note}"]


def test_the_agreement_report_page_has_the_self_preference_table(cli: Any, tmp_path: Path) -> None:
    from .test_makers import _catalog, _toml

    catalog = _catalog(tmp_path, {"acme-one": "Acme", "acme-two": "Acme", "other": "Other", "more": "Other"})
    config = _toml(
        tmp_path,
        '[[members]]\nspec = "fake"\nname = "a"\nmaker = "Acme"\n'
        '[[members]]\nspec = "fake:two"\nname = "o"\nmaker = "Other"\n'
        '[[members]]\nspec = "fake:three"\nname = "n"\n',
    )
    runs = str(tmp_path / "runs")
    made = cli("review", str(catalog), "--config", str(config), "-p", "builder", "-p", "skeptic",
               "--out", runs, "--progress", "quiet")  # fmt: skip
    assert made.code == 0, made.err
    table = cli("agreement", "last", "--out", runs)
    assert table.code == 0 and "Self-preference" in table.out, table.err  # the table has it ...
    page = tmp_path / "agreement.html"
    assert cli("agreement", "last", "--out", runs, "--report", str(page)).code == 0
    assert "Self-preference" in page.read_text(encoding="utf-8")  # ... the page does not
