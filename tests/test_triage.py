"""`panel triage RUN`: the run's tools most doubtful first with why, as a table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from panel.report.triage import COLUMNS
from panel.store import Store
from tests.factories import store_verdicts


@pytest.fixture
def run(runs_dir: Path) -> str:
    """t0 unanimous ship, t1 split 2-2, t2 3-1, t3 with two valid reviews (no estimate)."""
    with Store(runs_dir) as store:
        verdicts: dict[str, list[str | None]] = {
            "a": ["ship", "ship", "ship", "ship"],
            "b": ["ship", "ship", "ship", "ship"],
            "c": ["ship", "skip", "ship", None],
            "d": ["ship", "skip", "skip", None],
        }
        store_verdicts(store, "r1", verdicts, status="done")
        with store.transaction() as db:
            db.execute(
                "UPDATE run_tools SET data = ? WHERE tool_id = 't1'",
                (json.dumps({"id": "t1", "name": "Evil\x1b[2J"}),),
            )
    return "r1"


def test_triage_json_ranks_the_most_doubtful_first_with_reasons(cli: Any, runs_dir: Path, run: str) -> None:
    result = cli("triage", run, "--format", "json", "--out", str(runs_dir))
    assert result.code == 0, result.err
    found = json.loads(result.out)
    assert found["rule"] is None and found["reference"] is None
    rows = found["tools"]
    # doubt 1 for t1 (2-2) and t3 (no estimate), then t2 (3-1: a ship share of (3+1)/(4+2),
    # doubt 0.67) and t0 (4-0, doubt 0.33); no margin from a Wilson interval on 4 reviews
    assert [r["tool_id"] for r in rows] == ["t1", "t3", "t2", "t0"]
    assert all(list(r) == list(COLUMNS) for r in rows)
    assert rows[0]["reasons"] == "split" and rows[0]["doubt"] == 1.0
    assert rows[1]["ship"] is None and rows[1]["method"] == "none" and rows[1]["reasons"] == "failed"
    assert rows[3]["contested"] is False and rows[3]["reasons"] == ""
    assert all(r["decision"] is None for r in rows) and rows[3]["verdict"] == "ship"


def test_triage_csv_and_limit(cli: Any, runs_dir: Path, run: str) -> None:
    result = cli("triage", "last", "--format", "csv", "--limit", "2", "--out", str(runs_dir))
    assert result.code == 0, result.err
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert [r["tool_id"] for r in rows] == ["t1", "t3"] and list(rows[0]) == list(COLUMNS)
    assert rows[0]["contested"] == "true" and rows[0]["ship"] == "0.5"


def test_triage_table_strips_control_characters_from_names(cli: Any, runs_dir: Path, run: str) -> None:
    result = cli("triage", run, "--out", str(runs_dir))
    assert result.code == 0, result.err
    assert "Evil" in result.out and "\x1b" not in result.out
    assert result.out.index("Evil") < result.out.index("t0")


def test_triage_says_what_its_figures_rest_on_above_the_table(cli: Any, runs_dir: Path, run: str) -> None:
    # 3 of the 4 tools have an estimate, each a ship share of a handful of reviews: the line
    # above the rows says so, and why no model of the judges could be fitted
    result = cli("triage", run, "--out", str(runs_dir))
    first = result.out.splitlines()[0]
    assert first.startswith("3 of 4 tools: a ship share of their reviews with a Wilson interval")
    assert "not a probability" in first
    assert "too few" in first
    csv_run = cli("triage", run, "--format", "csv", "--out", str(runs_dir))
    assert csv_run.err.startswith("3 of 4 tools: a ship share") and csv_run.out.startswith("rank,")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("nope",), "no run 'nope'"),
        (("r1", "--format", "xml"), "unknown format 'xml'"),
        (("r1", "--limit", "0"), "--limit 0"),
    ],
)
def test_triage_bad_input_is_one_line_and_exit_2(
    cli: Any, runs_dir: Path, run: str, args: tuple[str, ...], said: str
) -> None:
    result = cli("triage", *args, "--out", str(runs_dir))
    assert result.code == 2 and said in result.err and len(result.err.strip().splitlines()) == 1


def test_show_of_a_comparison_prints_each_tools_confidence(cli: Any, runs_dir: Path) -> None:
    made = cli(
        "compare", "ollama", "vllm", "-b", "fake", "--json", "--out", str(runs_dir), "--progress", "quiet"
    )
    assert made.code == 0, made.err
    record = json.loads(made.out)
    shown = cli("show", record["run_id"], "--out", str(runs_dir))
    assert shown.code == 0, shown.err
    flat = " ".join(shown.out.split())
    for card in record["tools"]:
        c = card["confidence"]
        assert c["method"] == "vote-share" and c["reviews"] == 4
        interval = f"(Wilson {c['low']:.2f}–{c['high']:.2f})"
        assert f"Ship share {c['ship']:.2f} of 4 reviews {interval}." in flat
        assert ("Contested:" in flat) == any(t["confidence"]["contested"] for t in record["tools"])


HOSTILE = {
    "osc": "Evil\x1b]0;title\x07Tool",
    "cr": "Evil\rTool",
    "bidi": "Evil\u202eTool",
    "formula": '=HYPERLINK("http://x","Evil")',
}


def _named(runs_dir: Path, run: str, name: str) -> None:
    with Store(runs_dir) as store, store.transaction() as db:
        db.execute(
            "UPDATE run_tools SET data = ? WHERE tool_id = 't1'", (json.dumps({"id": "t1", "name": name}),)
        )


@pytest.mark.parametrize("kind", ["osc", "cr", "bidi"])
def test_triage_json_and_csv_strip_controls_and_bidi_from_names(
    cli: Any, runs_dir: Path, run: str, kind: str
) -> None:
    _named(runs_dir, run, HOSTILE[kind])
    as_json = cli("triage", run, "--format", "json", "--out", str(runs_dir))
    as_csv = cli("triage", run, "--format", "csv", "--out", str(runs_dir))
    assert as_json.code == 0 and as_csv.code == 0, as_json.err + as_csv.err
    for text in (as_json.out, as_csv.out):
        assert not any(ch in text for ch in "\x1b\x07\r\u202e")
    name = next(r["name"] for r in json.loads(as_json.out)["tools"] if r["tool_id"] == "t1")
    rows = {r["tool_id"]: r for r in csv.DictReader(io.StringIO(as_csv.out))}
    assert name.startswith("Evil") and name.endswith("Tool") and rows["t1"]["name"] == name
    assert len(as_csv.out.strip().splitlines()) == 1 + 4  # the header and one line per tool


def test_triage_csv_quotes_a_formula_cell_and_json_keeps_it_as_text(
    cli: Any, runs_dir: Path, run: str
) -> None:
    _named(runs_dir, run, HOSTILE["formula"])
    as_csv = cli("triage", run, "--format", "csv", "--out", str(runs_dir))
    as_json = cli("triage", run, "--format", "json", "--out", str(runs_dir))
    rows = {r["tool_id"]: r for r in csv.DictReader(io.StringIO(as_csv.out))}
    assert rows["t1"]["name"] == "'" + HOSTILE["formula"]
    named = {r["tool_id"]: r["name"] for r in json.loads(as_json.out)["tools"]}
    assert named["t1"] == HOSTILE["formula"]
