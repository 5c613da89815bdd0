"""`panel agreement --reference`, end to end on a simulated run with planted judges.

The run is written into a real store by panel.testing.simulate: 4 personas x 3 members,
each judge right with a planted accuracy, the skeptic biased against ship (a persona
effect, no member effect), some failed reviews, member prices, community votes. What the
command reports must recover what was planted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from panel.testing.simulate import SimulatedPanel, simulate_panel, write_labels, write_simulated_run

pytest.importorskip("numpy")

PERSONAS = ("builder", "skeptic", "futurist", "business_analyst")
MEMBERS = ("sim:small-a", "sim:small-b", "sim:large")
PRICES = {"sim:small-a": 0.0004, "sim:small-b": 0.0003, "sim:large": 0.003}
ACCURACY = {
    (p, m): a
    for p, row in {
        "builder": (0.80, 0.75, 0.92),
        "skeptic": (0.75, 0.70, 0.88),
        "futurist": (0.65, 0.60, 0.75),
        "business_analyst": (0.78, 0.72, 0.90),
    }.items()
    for m, a in zip(MEMBERS, row, strict=True)
}
FAST = ("--resamples", "300")


@dataclass
class Sim:
    out: Path
    run: str
    panel: SimulatedPanel
    labels: Path


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    root = tmp_path_factory.mktemp("research")
    panel = simulate_panel(
        1000, PERSONAS, MEMBERS, accuracy=ACCURACY, persona_bias={"skeptic": -1.0},
        missing=0.02, prices=PRICES, run_id="sim-1000", seed=12,
    )  # fmt: skip
    out = root / "runs"
    run = write_simulated_run(out, panel, community_votes=30, community_accuracy=0.85)
    yield Sim(out, run, panel, write_labels(root / "labels.csv", panel))


def _json(cli: Any, sim: Sim, *args: str) -> dict[str, Any]:
    result = cli("agreement", sim.run, "--out", str(sim.out), "--format", "json", *FAST, *args)
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data["research"]


def _truth_accuracy(sim: Sim) -> dict[str, float]:
    truth = dict(zip(sim.panel.tools, sim.panel.truth, strict=True))
    seen: dict[str, list[bool]] = {}
    for r in sim.panel.rows:
        if r["verdict"] is not None:
            seen.setdefault(f"{r['persona']} / {r['member']}", []).append(r["verdict"] == truth[r["tool"]])
    return {k: sum(v) / len(v) for k, v in seen.items()}


def test_every_judge_is_measured_against_the_labels_and_recovers_its_planted_accuracy(
    cli: Any, sim: Sim
) -> None:
    research = _json(cli, sim, "--reference", str(sim.labels))
    judges = {r["name"]: r for r in research["accuracy"] if r["kind"] == "judge"}
    assert len(judges) == 12
    drawn = _truth_accuracy(sim)
    covered = 0
    for (persona, member), _ in ACCURACY.items():
        name = f"{persona} / {member}"
        row = judges[name]
        # The labels are the truth here, so the point is exactly the share the rows got right.
        assert row["accuracy"]["point"] == pytest.approx(drawn[name])
        expected = sim.panel.expected_accuracy(persona, member)
        covered += row["accuracy"]["low"] <= expected <= row["accuracy"]["high"]
    assert covered >= 11
    kinds = [r["kind"] for r in research["accuracy"]]
    assert kinds == ["judge"] * 12 + ["persona"] * 4 + ["member"] * 3 + ["panel"]
    assert research["reference"]["tools"] == 1000 and research["reference"]["source"] == str(sim.labels)


def test_the_latent_model_recovers_each_judges_accuracy_without_the_labels(cli: Any, sim: Sim) -> None:
    research = _json(cli, sim)  # no reference at all
    assert research["reference"] is None and research["pooling"] is None
    covered = 0
    for row in research["judges"]:
        expected = sim.panel.expected_accuracy(row["persona"], row["member"])
        estimate = row["estimated_accuracy"]
        assert abs(estimate["point"] - expected) < 0.05, (row["judge"], estimate, expected)
        covered += estimate["low"] <= expected <= estimate["high"]
    assert covered >= 10
    assert research["latent"]["converged"]


def test_pooled_verdicts_beat_the_best_single_judge_and_cost_what_was_spent(cli: Any, sim: Sim) -> None:
    pooling = _json(cli, sim, "--reference", str(sim.labels))["pooling"]
    by_method = {p["method"]: p for p in pooling["pooled"]}
    assert list(by_method) == [
        "majority vote", "ship share >= 0.5", "reliability-weighted (Dawid-Skene)", "best single judge",
    ]  # fmt: skip
    single = by_method["best single judge"]
    assert single["judges"] == ["builder / sim:large"]  # planted 0.92, the most accurate
    assert single["cost_per_tool"] == pytest.approx(0.003)
    everyone = sum(PRICES.values()) * len(PERSONAS)
    assert by_method["majority vote"]["cost_per_tool"] == pytest.approx(everyone)
    weighted = by_method["reliability-weighted (Dawid-Skene)"]
    assert weighted["kappa"]["point"] > single["kappa"]["point"]
    assert weighted["kappa"]["point"] >= by_method["majority vote"]["kappa"]["point"] - 0.02
    assert pooling["search"] == "every sub-panel" and [p["k"] for p in pooling["by_size"]] == list(
        range(1, 13)
    )
    frontier = pooling["by_cost"]
    assert [p["cost_per_tool"] for p in frontier] == sorted(p["cost_per_tool"] for p in frontier)


def test_the_variance_split_names_the_persona_not_the_member(cli: Any, sim: Sim) -> None:
    variance = _json(cli, sim)["variance"]
    parts = {c["name"]: c["share"] for c in variance["components"]}
    assert parts["persona"]["low"] > 0.01
    assert parts["member"]["low"] < 0.005
    assert any("personas" in line and "not the members" in line for line in variance["reading"])


def test_community_votes_serve_as_the_reference(cli: Any, sim: Sim) -> None:
    research = _json(cli, sim, "--reference", "community", "--min-votes", "25")
    ref = research["reference"]
    assert ref["source"].startswith("community")
    # Votes per tool are Binomial(60, 1/2): most tools but not all reach 25.
    assert 500 < ref["tools"] < 1000 and ref["tools_in_run"] == 1000
    judge = next(r for r in research["accuracy"] if r["name"] == "builder / sim:large")
    assert judge["accuracy"]["point"] > 0.75  # a community 85% right on each vote is mostly right


def test_tables_and_the_report_page_carry_the_research(cli: Any, sim: Sim, tmp_path: Path) -> None:
    page = tmp_path / "agreement.html"
    result = cli(
        "agreement",
        sim.run,
        "--out",
        str(sim.out),
        *FAST,
        "--reference",
        str(sim.labels),
        "--report",
        str(page),
    )
    assert result.code == 0, result.err
    for title in ("Agreement with the reference", "Pooled", "Best sub-panel per size", "Cost frontier",
                  "Reliability without labels", "Where disagreement comes from"):  # fmt: skip
        assert title in result.out
    html = page.read_text(encoding="utf-8")
    assert "builder / sim:large" in html and "Content-Security-Policy" in html
    assert f"wrote {page}" in result.out
    assert "all judges, pooled" in result.out and "()" not in result.out  # no empty kind beside it


BAD_LABELS = {
    "unknown tool": ("tool,verdict\nsim-0001,ship\nno-such-tool,ship\n", ":3: tool 'no-such-tool'"),
    "unknown verdict": ("tool,verdict\nsim-0001,maybe\n", ":2: verdict 'maybe'"),
    "duplicate rows": (
        "tool,verdict,rater\nsim-0001,ship,ann\nsim-0002,skip,ann\nsim-0001,skip,ann\n",
        ":4: duplicate label",
    ),
    "empty file": ("", ":1: the labels file is empty"),
}


@pytest.mark.parametrize("case", list(BAD_LABELS))
def test_a_bad_labels_file_is_one_line_naming_file_and_row(
    cli: Any, sim: Sim, tmp_path: Path, case: str
) -> None:
    text, where = BAD_LABELS[case]
    labels = tmp_path / "labels.csv"
    labels.write_text(text, encoding="utf-8")
    page = tmp_path / "report.html"
    result = cli(
        "agreement", sim.run, "--out", str(sim.out), *FAST, "--reference", str(labels), "--report", str(page)
    )
    assert result.code == 2
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {labels}{where}"), result.err
    assert "Traceback" not in result.err and not page.exists()


def test_a_judge_whose_every_review_failed_leaves_notes_not_a_crash(sim: Sim) -> None:
    from panel.analysis.research import research

    rows = [dict(r) for r in sim.panel.rows[:1200]]  # 100 tools
    for r in rows:
        if r["persona"] == "futurist" and r["member"] == "sim:large":
            r["verdict"], r["valid"] = None, False
    tools = sorted({r["tool"] for r in rows})
    labels = {t: v for t, v in zip(sim.panel.tools, sim.panel.truth, strict=True) if t in tools}
    path = sim.out.parent / "labels-100.csv"
    path.write_text("tool,verdict\n" + "".join(f"{t},{v}\n" for t, v in labels.items()), encoding="utf-8")
    found = research(
        rows, run=sim.run, personas=[{"verdicts": ["ship", "skip"]}], tool_data=[], order={},
        reference=str(path), n_resamples=100,
    )  # fmt: skip
    silent = next(j for j in found.judges if j.judge == "futurist / sim:large")
    assert silent.reviews == 0 and math.isnan(silent.estimated_accuracy.point)
    assert found.variance is None
    assert any("variance split is left out" in n and "futurist / sim:large" in n for n in found.notes)
    measured = next(a for a in found.accuracy if a.name == "futurist / sim:large")
    assert measured.n_tools == 0 and math.isnan(measured.accuracy.point)
    assert found.pooling is not None and found.pooling.pooled[0].n_tools == 100
    json.dumps(found.to_dict(), allow_nan=False)  # the report stays strict JSON


def test_a_reference_with_only_the_long_table_is_refused_not_ignored(cli: Any, sim: Sim) -> None:
    result = cli(
        "agreement", sim.run, "--out", str(sim.out), "--format", "csv", "--reference", str(sim.labels)
    )
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("error: --reference: --format csv prints only the long table")


def test_an_unwritable_report_path_is_refused_before_the_work(cli: Any, sim: Sim, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    for report, expected in (
        (tmp_path, "it is a folder; give a file name"),
        (blocker / "sub" / "r.html", f"{blocker} is a file, not a folder"),
    ):
        result = cli("agreement", sim.run, "--out", str(sim.out), "--report", str(report), "--format", "json")
        assert result.code == 2 and result.out == ""
        assert result.err.strip() == f"error: cannot write {report}: {expected}", result.err
    result = cli("agreement", sim.run, "--out", str(sim.out), "--plots", str(blocker))
    assert result.code == 2 and "it is a file, not a folder" in result.err


def test_more_resamples_than_the_latent_model_refits_say_so_in_a_note(sim: Sim) -> None:
    from panel.analysis.research import research

    rows = sim.panel.rows[:600]  # 50 tools
    found = research(rows, run=sim.run, personas=[{"verdicts": ["ship", "skip"]}], tool_data=[], order={},
                     n_resamples=1200)  # fmt: skip
    assert any(
        n.startswith("The latent model's intervals rest on 1000 resamples, not 1200") for n in found.notes
    )
    assert all(j.estimated_accuracy.resamples_used <= 1000 for j in found.judges)
