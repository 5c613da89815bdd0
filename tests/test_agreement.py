"""`panel agreement` on real runs made against the loopback fake provider.

The runs come from `panel review` with two OpenAI-protocol members, four personas and eight
tools. The fake's verdicts are arbitrary, so the tests check structure and that every
number equals panel.analysis.stats applied to a matrix rebuilt here from the long table.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from panel.analysis import intervals, stats
from panel.analysis.agreement import CONSTANT_RATER_NOTE, LONG_COLUMNS, analyze, ratings_matrix
from panel.store import Store
from panel.testing.fake_provider import FakeProvider

from .cloud import KEYS, MEMBERS, write_config
from .conftest import _loopback_only
from .factories import store_verdicts

pytest.importorskip("openai")
pytest.importorskip("mistralai")

TOOLS = [
    "smolvlm2-2b", "mistral-large-3", "moondream2", "paligemma",
    "llama-cpp", "ollama", "vllm", "amazon-textract",
]  # fmt: skip
PERSONAS = ["builder", "skeptic", "futurist", "business_analyst"]
SPECS = [MEMBERS["openai"], MEMBERS["mistral"]]
PNG = b"\x89PNG\r\n\x1a\n"
FAST = ["--resamples", "200"]


@dataclass
class Runs:
    out: Path
    single: str  # 2 members x 4 personas x 8 tools, one repeat
    repeated: str  # the same panel, two repeats at temperature 0.7


def _panel(*args: str) -> tuple[int, str, str]:
    """`panel ARGS...` in-process, for the module fixture (the `cli` fixture is per test)."""
    from panel.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        sys.argv = ["panel", *args]
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    root = tmp_path_factory.mktemp("agreement")
    with pytest.MonkeyPatch.context() as mp, FakeProvider(history=50) as fake:
        mp.setattr(socket.socket, "connect", _loopback_only)
        mp.setattr(sys, "argv", ["panel"])
        for name, value in KEYS.items():
            mp.setenv(name, value)
        cfg = write_config(root / "panel.toml", fake, ["openai", "mistral"], concurrency=8)
        base = ["review", "--config", str(cfg), "--out", str(root / "runs"), "--progress", "quiet"]
        ids = []
        for extra in ([], ["--repeats", "2", "--temperature", "0.7"]):
            code, out, err = _panel(*base, "--tools", ",".join(TOOLS), *extra)
            assert code == 0, err
            ids.append(out.split(":", 1)[0].strip())
        yield Runs(root / "runs", ids[0], ids[1])


def _long(cli: Any, runs: Runs, *run_ids: str) -> list[dict[str, str]]:
    result = cli("agreement", *run_ids, "--format", "csv", "--out", str(runs.out))
    assert result.code == 0, result.err
    return list(csv.DictReader(io.StringIO(result.out)))


def _report(cli: Any, runs: Runs, *args: str) -> dict[str, Any]:
    result = cli("agreement", *args, "--format", "json", "--out", str(runs.out))
    assert result.code == 0, result.err

    def no_nan(name: str) -> None:
        raise AssertionError(f"strict JSON has no {name}")

    report: dict[str, Any] = json.loads(result.out, parse_constant=no_nan)
    return report


def _verdict(row: dict[str, str]) -> str | None:
    return row["verdict"] or None


def _same(reported: float | None, expected: float) -> bool:
    return math.isnan(expected) if reported is None else reported == pytest.approx(expected)


def _same_matrix(reported: list[list[float | None]], expected: Any) -> bool:
    return len(reported) == len(expected) and all(
        _same(a, float(b))
        for ra, rb in zip(reported, expected, strict=True)
        for a, b in zip(ra, rb, strict=True)
    )


def _pick(rows: list[dict[str, str]], **where: str) -> dict[tuple[str, ...], str | None]:
    return {
        (r["tool"], r["persona"], r["member"]): _verdict(r)
        for r in rows
        if all(r[k] == v for k, v in where.items())
    }


def test_table_plots_and_export(cli: Any, runs: Runs, tmp_path: Path) -> None:
    plots, export = tmp_path / "plots", tmp_path / "export"
    result = cli(
        "agreement", runs.single, "--format", "table", "--plots", str(plots), "--export", str(export),
        *FAST, "--out", str(runs.out),
    )  # fmt: skip
    assert result.code == 0, result.err
    for text in (
        "Fleiss' kappa", "Krippendorff's alpha", "effective independent votes", "Leniency", "resamples used",
        f"persona x persona — {SPECS[0]}", f"persona x persona — {SPECS[1]}", "persona x persona — pooled",
        "member x member — builder", "member x member — pooled", "Self-consistency", "is the ceiling",
    ):  # fmt: skip
        assert text in result.out, text

    with (export / "long.csv").open(newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert tuple(reader.fieldnames or ()) == LONG_COLUMNS
    assert len(rows) == 64
    assert {(r["tool"], r["persona"], r["member"]) for r in rows} == {
        (t, p, m) for t in TOOLS for p in PERSONAS for m in SPECS
    }
    assert {r["run"] for r in rows} == {runs.single} and {r["repeat"] for r in rows} == {"0"}

    slugs = ["openai-gpt-4.1-mini", "mistral-mistral-small-latest", "pooled"]
    expected = {f"kappa_personas_{s}.png" for s in slugs}
    expected |= {f"kappa_members_{p}.png" for p in [*PERSONAS, "pooled"]} | {"ship_rate.png"}
    assert {p.name for p in plots.iterdir()} == expected
    for png in plots.iterdir():
        data = png.read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000, png.name
        assert f"wrote {png}" in result.out


def test_json_numbers_are_panel_stats_on_the_same_matrix(cli: Any, runs: Runs) -> None:
    report = _report(cli, runs, runs.single, "--resamples", "200", "--seed", "7")
    assert set(report) == {
        "runs", "by", "basis", "items", "missing", "stats", "cohen", "self_consistency", "notes", "research",
        "rounds", "cost", "sample", "biases",
    }  # fmt: skip
    assert report["rounds"] is None  # no rebuttal round in this run
    assert report["basis"] == {"run": runs.single, "repeat": 0} and report["by"] == "rater"
    assert report["items"] == TOOLS
    cells = _pick(_long(cli, runs, runs.single))
    raters = report["stats"]["raters"]
    assert sorted(raters) == sorted(f"{p} / {m}" for p in PERSONAS for m in SPECS)
    matrix = [[cells[(t, *r.split(" / "))] for r in raters] for t in TOOLS]
    assert report["missing"] == sum(v is None for row in matrix for v in row)

    got = report["stats"]
    for key, fn in [
        ("percent_agreement", stats.percent_agreement),
        ("fleiss_kappa", stats.fleiss_kappa),
        ("krippendorff_alpha", stats.krippendorff_alpha_nominal),
        ("effective_votes", stats.effective_votes),
    ]:
        e = intervals.bootstrap_ci(fn, matrix, 200, 7)
        assert _same(got[key]["point"], e.point), key
        assert _same(got[key]["low"], e.low) and _same(got[key]["high"], e.high), key
        assert got[key]["resamples_used"] == e.resamples_used, key
    for name, rate in zip(raters, stats.ship_rate(matrix), strict=True):
        assert _same(got["ship_rate"][name], rate)
    _, kappa = stats.cohen_matrix(matrix)
    assert _same_matrix(got["cohen_kappa"], kappa)

    # The Cohen matrices: persona x persona within each member and pooled over (tool, member).
    by_title = {(m["axis"], m["within"]): m for m in report["cohen"]}
    assert set(by_title) == {("persona", s) for s in [*SPECS, None]} | {
        ("member", p) for p in [*PERSONAS, None]
    }
    pooled = by_title[("persona", None)]
    assert pooled["raters"] == PERSONAS and pooled["n_items"] == 16
    _, expected = stats.cohen_matrix([[cells[(t, p, m)] for p in PERSONAS] for t in TOOLS for m in SPECS])
    assert _same_matrix(pooled["kappa"], expected)
    for persona in PERSONAS:
        within = by_title[("member", persona)]
        assert within["raters"] == SPECS and within["n_items"] == 8
        a, b = ([cells[(t, persona, m)] for t in TOOLS] for m in SPECS)
        assert _same(within["kappa"][0][1], stats.cohen_kappa(a, b))
    member = by_title[("persona", SPECS[1])]
    a, b = ([cells[(t, p, SPECS[1])] for t in TOOLS] for p in ("skeptic", "futurist"))
    assert _same(member["kappa"][1][2], stats.cohen_kappa(a, b))

    # One run, one repeat: no self-consistency to read, and the report says so.
    assert len(report["self_consistency"]) == 8
    for entry in report["self_consistency"]:
        assert entry["within_run"] is None and entry["across_runs"] is None and entry["pairs"] == []
    assert any("ceiling" in note for note in report["notes"])


def test_repeats_give_self_consistency_within_the_run(cli: Any, runs: Runs) -> None:
    rows = _long(cli, runs, runs.repeated)
    assert len(rows) == 128 and {r["repeat"] for r in rows} == {"0", "1"}
    first, second = _pick(rows, repeat="0"), _pick(rows, repeat="1")
    report = _report(cli, runs, runs.repeated, *FAST)
    assert report["stats"]["n_items"] == 8, "inter-rater statistics read repeat 0 only"
    entries = report["self_consistency"]
    assert len(entries) == 8
    for entry in entries:
        persona, member = entry["persona"], entry["member"]
        (pair,) = entry["pairs"]
        assert (pair["a"], pair["b"], pair["n_items"]) == (f"{runs.repeated}#0", f"{runs.repeated}#1", 8)
        a = [first[(t, persona, member)] for t in TOOLS]
        b = [second[(t, persona, member)] for t in TOOLS]
        kappa = stats.cohen_kappa(a, b)
        assert _same(pair["kappa"], kappa) and _same(entry["within_run"], kappa)
        assert entry["within_run_agreement"] == pytest.approx(
            sum(x == y for x, y in zip(a, b, strict=True)) / 8
        )
        assert entry["across_runs"] is None


def test_two_runs_give_self_consistency_across_runs(cli: Any, runs: Runs) -> None:
    rows = _long(cli, runs, runs.single, runs.repeated)
    assert len(rows) == 64 + 128
    one, other = _pick(rows, run=runs.single), _pick(rows, run=runs.repeated, repeat="0")
    report = _report(cli, runs, runs.single, runs.repeated, *FAST)
    assert report["runs"] == [runs.single, runs.repeated]
    assert report["basis"]["run"] == runs.single
    for entry in report["self_consistency"]:
        persona, member = entry["persona"], entry["member"]
        across = [p for p in entry["pairs"] if (p["a"], p["b"]) == (runs.single, runs.repeated)]
        assert len(across) == 1 and len(entry["pairs"]) == 2  # plus the second run's repeat pair
        kappa = stats.cohen_kappa(
            [one[(t, persona, member)] for t in TOOLS], [other[(t, persona, member)] for t in TOOLS]
        )
        assert _same(across[0]["kappa"], kappa) and _same(entry["across_runs"], kappa)
    flipped = _report(cli, runs, runs.repeated, runs.single, *FAST)
    assert flipped["basis"]["run"] == runs.repeated, "the first run given is the basis"


@pytest.mark.parametrize(
    ("by", "raters", "n_items"),
    [
        ("rater", [f"{p} / {m}" for p in PERSONAS for m in SPECS], 8),
        ("persona", PERSONAS, 16),
        ("backend", SPECS, 32),
    ],
)
def test_by_chooses_the_raters(cli: Any, runs: Runs, by: str, raters: list[str], n_items: int) -> None:
    report = _report(cli, runs, runs.single, "--by", by, "--resamples", "50")
    assert report["by"] == by
    assert report["stats"]["raters"] == raters
    assert report["stats"]["n_items"] == len(report["items"]) == n_items
    assert len({item.split(" / ")[0] for item in report["items"]}) == 8
    assert len(report["cohen"]) == 8, "the Cohen matrices do not depend on --by"


def test_ratings_matrix_pools_and_marks_failed_reviews_missing() -> None:
    def row(
        tool: str, persona: str, member: str, verdict: str | None, run: str = "r1", repeat: int = 0
    ) -> dict[str, Any]:
        return {"run": run, "tool": tool, "persona": persona, "member": member, "repeat": repeat,
                "verdict": verdict}  # fmt: skip

    rows = [
        row("t1", "builder", "a:x", "ship"), row("t1", "skeptic", "a:x", None),
        row("t1", "builder", "b:y", "skip"), row("t1", "skeptic", "b:y", "ship"),
        row("t2", "builder", "a:x", "ship"), row("t2", "builder", "a:x", "skip", repeat=1),
        row("t2", "builder", "a:x", "skip", run="r2"),
    ]  # fmt: skip
    by_rater = ratings_matrix(rows, "rater")
    assert by_rater.items == ["t1", "t2"]
    assert by_rater.raters == ["builder / a:x", "builder / b:y", "skeptic / a:x", "skeptic / b:y"]
    assert by_rater.ratings == [["ship", "skip", None, "ship"], ["ship", None, None, None]]
    by_persona = ratings_matrix(rows, "persona", order={"persona": ["skeptic", "builder"]})
    assert by_persona.raters == ["skeptic", "builder"]
    assert by_persona.items == ["t1 / a:x", "t1 / b:y", "t2 / a:x"]
    assert by_persona.ratings == [[None, "ship"], ["ship", "skip"], [None, "ship"]]
    by_backend = ratings_matrix(rows, "backend", run="r2")
    assert (by_backend.items, by_backend.raters, by_backend.ratings) == (
        ["t2 / builder"],
        ["a:x"],
        [["skip"]],
    )


def test_unknown_run_exits_2_with_one_line(cli: Any, runs: Runs) -> None:
    for args in (["no-such-run"], [runs.single, "no-such-run"]):
        result = cli("agreement", *args, "--out", str(runs.out))
        assert result.code == 2
        assert result.out == ""
        assert len(result.err.strip().splitlines()) == 1 and "'no-such-run'" in result.err


def test_missing_extras_are_named(
    cli: Any, runs: Runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now fails
    result = cli(
        "agreement", runs.single, "--format", "csv", "--export", str(tmp_path), "--out", str(runs.out)
    )
    assert result.code == 0, "the CSV is written and printed all the same"
    assert len(result.out.splitlines()) == 65
    assert (tmp_path / "long.csv").read_text() == result.out and not (tmp_path / "long.parquet").exists()
    (line,) = [x for x in result.err.splitlines() if "parquet" in x]
    assert "pip install 'toolpanel[parquet]'" in line

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = cli("agreement", runs.single, "--plots", str(tmp_path / "p"), "--out", str(runs.out))
    assert result.code == 2 and "pip install 'toolpanel[analysis]'" in result.err
    assert len(result.err.strip().splitlines()) == 1 and not (tmp_path / "p").exists()


def test_parquet_export_holds_the_long_table(cli: Any, runs: Runs, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    result = cli(
        "agreement", runs.repeated, "--format", "csv", "--export", str(tmp_path), "--out", str(runs.out)
    )
    assert result.code == 0, result.err
    table = pq.read_table(tmp_path / "long.parquet")
    assert table.num_rows == 128 and tuple(table.column_names) == LONG_COLUMNS
    assert set(table.column("repeat").to_pylist()) == {0, 1}


def test_plots_into_a_path_that_is_a_file_is_one_line(cli: Any, runs: Runs, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    blocker = tmp_path / "plots"
    blocker.write_text("not a folder")
    result = cli("agreement", runs.single, "--plots", str(blocker), "--out", str(runs.out))
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.err
    # Refused before the analysis runs, naming the folder that is a file.
    assert lines[0] == f"error: cannot write into {blocker}: it is a file, not a folder"
    assert result.out == ""


def test_heatmap_draws_undefined_kappa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An undefined kappa (None or NaN) is a grey cell marked "n/a", not a coloured one nor a gap."""
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    from panel.analysis import plots

    texts: list[list[str]] = []
    draw_png = plots._png

    def keeping_texts(draw: Any, dpi: int = 100) -> bytes:
        def drawn(plt: Any) -> Any:
            figure = draw(plt)
            texts.append([t.get_text() for t in figure.axes[0].texts])
            return figure

        return draw_png(drawn, dpi)

    monkeypatch.setattr(plots, "_png", keeping_texts)

    def grey_pixels(kappa: list[list[float | None]], name: str) -> int:
        path = plots.kappa_heatmap(["a", "b"], kappa, "undefined", tmp_path / name)
        assert path.read_bytes().startswith(PNG)
        pixels = (imread(path)[:, :, :3] * 255).round().astype(int)
        return int((pixels == (0xD9, 0xD9, 0xD9)).all(axis=2).sum())

    undefined = grey_pixels([[1.0, None], [None, float("nan")]], "k.png")
    defined = grey_pixels([[1.0, 0.5], [0.5, 1.0]], "all.png")
    # A cell is some 50,000 pixels at 120 dpi: three grey cells; a few edge pixels when all are defined.
    assert defined < 100 and undefined > 3 * 30_000
    assert texts == [["1.00", "n/a", "n/a", "n/a"], ["1.00", "0.50", "0.50", "1.00"]]


def test_analyze_leaves_out_a_rater_whose_every_review_failed(tmp_path: Path) -> None:
    verdicts = {
        "builder": ["ship", "skip", "ship", "skip", None],
        "skeptic": ["ship", "ship", "skip", "skip", "skip"],
        "futurist": [None] * 5,
    }
    tools = [f"t{i}" for i in range(5)]
    with Store(tmp_path / "runs") as store:
        store_verdicts(store, "r", verdicts)
        report = analyze(store, ["r"], "rater", n_resamples=50)
    assert report.stats.raters == ["builder / a:x", "skeptic / a:x"]
    assert any("futurist / a:x" in note for note in report.notes)
    matrix = [[b, s] for b, s in zip(verdicts["builder"], verdicts["skeptic"], strict=True)]
    assert report.missing == 1 and report.items == tools
    assert report.stats.fleiss_kappa.point == pytest.approx(stats.fleiss_kappa(matrix))
    assert report.stats.krippendorff_alpha.point == pytest.approx(stats.krippendorff_alpha_nominal(matrix))
    (pooled,) = report.cohen  # one member: only the pooled persona matrix
    assert pooled.raters == list(verdicts) and math.isnan(pooled.kappa[2][2])


def test_the_note_on_a_rater_with_one_verdict_says_what_the_report_holds(tmp_path: Path) -> None:
    verdicts: dict[str, list[str | None]] = {
        "builder": ["ship"] * 4,
        "skeptic": ["ship", "skip", "ship", "skip"],
        "futurist": ["skip", "skip", "ship", "ship"],
    }
    with Store(tmp_path / "runs") as store:
        store_verdicts(store, "r", verdicts)
        report = analyze(store, ["r"], "rater", n_resamples=50)
    assert CONSTANT_RATER_NOTE in report.notes
    assert "Cohen's kappa 0 with every other rater" in CONSTANT_RATER_NOTE
    data = report.to_dict()
    (pooled,) = data["cohen"]
    assert pooled["kappa"][0] == [None, 0.0, 0.0]  # builder: null with itself, 0 with the others
    assert data["stats"]["fleiss_kappa"]["point"] == pytest.approx(-0.125)
    assert data["stats"]["krippendorff_alpha"]["point"] is not None


def test_intervals_say_how_many_resamples_they_used(tmp_path: Path) -> None:
    verdicts: dict[str, list[str | None]] = {
        "builder": ["ship", "skip", "ship", "skip"],
        "skeptic": ["ship", "skip", "ship", "ship"],
    }
    with Store(tmp_path / "runs") as store:
        store_verdicts(store, "r", verdicts)
        report = analyze(store, ["r"], "rater", n_resamples=200, seed=1)
    fleiss = report.to_dict()["stats"]["fleiss_kappa"]
    # Resamples of four tools that draw only agreeing rows leave one category: no kappa.
    assert 0 < fleiss["resamples_used"] < 200
    assert report.to_dict()["stats"]["percent_agreement"]["resamples_used"] == 200
    assert any("resamples_used" in note for note in report.notes)
