"""The researcher's numbers: what the reviews analysed cost on a `--since` run, variance shares
that add up to 100%, and samples too small to read said to be so.

Runs are made by `panel review` against the loopback provider (priced members), or written
by panel.testing.simulate with planted judges.
"""

from __future__ import annotations

import html
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from panel.analysis.judges import judgments
from panel.analysis.variance import variance_split
from panel.testing.fake_provider import FakeProvider
from panel.testing.simulate import simulate_panel, write_simulated_run

from .cloud import write_config
from .conftest import EXAMPLE_CATALOG

pytest.importorskip("numpy")

#: the fewest tools a model's figure is read from (panel.analysis.sample.MIN_TOOLS), as documented
MIN_TOOLS = 20
COLLAPSED = "one point: not a meaningful interval"
PRICES = "price_input = 2.0\nprice_output = 8.0\n"  # USD per million tokens


def _run_id(out: str) -> str:
    return out.split(":", 1)[0].strip()


def _json(cli: Any, out: Path, *args: str) -> dict[str, Any]:
    result = cli("agreement", *args, "--out", str(out), "--format", "json", "--resamples", "200")
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def _spend(out: Path, run_id: str) -> dict[tuple[str, str, str], float]:
    """Each review's own spend in a run, read from the store's requests and replies."""
    db = sqlite3.connect(out / "panel.db")
    rows = db.execute(
        """SELECT rq.tool_id, rq.persona_id, rq.member, SUM(rp.cost_usd) FROM requests rq
           JOIN replies rp ON rp.request_id = rq.id WHERE rq.run_id = ?
           GROUP BY rq.tool_id, rq.persona_id, rq.member""",
        (run_id,),
    ).fetchall()
    db.close()
    return {(t, p, m): float(c) for t, p, m, c in rows}


def test_a_since_run_reports_what_its_copied_reviews_cost_and_which_run_paid(
    cli: Any, fake: FakeProvider, tmp_path: Path, runs_dir: Path
) -> None:
    cfg = write_config(tmp_path / "panel.toml", fake, ["openai"], extra=PRICES)
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(EXAMPLE_CATALOG.read_text())
    args = ["review", str(catalog), "--config", str(cfg), "--out", str(runs_dir), "--progress", "quiet"]
    first = cli(*args)
    assert first.code == 0, first.err
    paid_first = _run_id(first.out)
    data = yaml.safe_load(catalog.read_text())
    data["tools"][0]["facts"].append("Added a plugin browser in this release.")
    catalog.write_text(yaml.safe_dump(data, sort_keys=False))
    second = cli(*args, "--since", paid_first)
    assert second.code == 0 and "4 sent" in second.out and "32 copied" in second.out, second.out
    since = _run_id(second.out)

    before, own = _spend(runs_dir, paid_first), _spend(runs_dir, since)
    assert len(own) == 4 and all(v > 0 for v in own.values())
    expected = sum(v for k, v in before.items() if k not in own) + sum(own.values())
    report = _json(cli, runs_dir, since)
    cost = report["cost"]
    assert cost["usd"] == pytest.approx(expected) and cost["reviews"] == 36
    assert list(cost["paid_by"]) == [since, paid_first]
    assert cost["paid_by"][paid_first]["reviews"] == 32 and cost["paid_by"][since]["reviews"] == 4
    assert cost["paid_by"][paid_first]["usd"] == pytest.approx(expected - sum(own.values()))
    copied = cost["paid_by"][paid_first]["usd"]
    assert cost["sentence"] == (
        f"${expected:.4f} for the reviews analysed, ${copied:.4f} of it paid by run {paid_first} "
        "(32 reviews copied with --since)."
    )
    # Each judge's cost per tool counts the copied reviews at what they cost.
    judges = report["research"]["judges"]
    n_tools = len(report["items"])
    assert sum(j["cost_per_tool"] for j in judges) * n_tools == pytest.approx(expected)

    page = tmp_path / "agreement.html"
    made = cli("agreement", since, "--out", str(runs_dir), "--resamples", "200", "--report", str(page))
    assert made.code == 0, made.err
    assert "Cost of the reviews analysed" in page.read_text()
    assert f"paid by run {paid_first} (32 reviews copied with --since)" in page.read_text()
    long_csv = cli("agreement", since, "--out", str(runs_dir), "--format", "csv")
    header, *lines = long_csv.out.splitlines()
    assert header.endswith(",paid_by") and sum(line.endswith(f",{paid_first}") for line in lines) == 32


def _split(n_tools: int, seed: int) -> Any:
    panel = simulate_panel(n_tools, ("builder", "skeptic"), ("sim:a", "sim:b"), seed=seed)
    return variance_split(judgments(panel.rows, categories=("ship", "skip")), 0, 200, seed)


def test_variance_shares_add_up_to_100_and_are_each_variance_over_the_total() -> None:
    # No effect is planted: some parts are estimated below 0 on this draw.
    split = _split(40, 5)
    assert split.truncated, "the draw must hold a part estimated below 0"
    for name in split.truncated:
        assert split.component(name).variance.point == 0.0 and split.component(name).share.point == 0.0
    assert sum(c.share.point for c in split.components) == pytest.approx(1.0)
    total = sum(c.variance.point for c in split.components)
    assert split.total.point == pytest.approx(total)
    for c in split.components:
        assert c.share.point == pytest.approx(c.variance.point / total), c.name
    said = [line for line in split.reading if line.startswith("Estimated below 0 and shown as 0")]
    assert said == [
        f"Estimated below 0 and shown as 0: {', '.join(split.truncated)} (a part too small to tell from "
        "sampling noise); the shares are of the parts shown, so they add up to 100%."
    ]


def test_the_page_shows_the_total_the_shares_are_of(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    panel = simulate_panel(
        MIN_TOOLS + 20, ("builder", "skeptic"), ("sim:a", "sim:b"), seed=5, run_id="sim-40"
    )
    run = write_simulated_run(out, panel)
    variance = _json(cli, out, run)["research"]["variance"]
    shares = [c["share"]["point"] for c in variance["components"]]
    assert sum(shares) == pytest.approx(1.0)
    page = tmp_path / "agreement.html"
    assert cli("agreement", run, "--out", str(out), "--resamples", "200", "--report", str(page)).code == 0
    text = page.read_text()
    assert "Total (the parts shown)" in text and "Estimated below 0 and shown as 0" in text


def _two_tools(cli: Any, out: Path) -> str:
    members = ["-b", "fake", "-b", "fake:other"]
    made = cli("compare", "ollama", "vllm", *members, "--out", str(out), "--progress", "quiet")
    assert made.code == 0, made.err
    return "last"


def test_a_two_tool_run_says_its_sample_is_too_small_to_read(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    run_id = _two_tools(cli, out)
    data = _json(cli, out, run_id)
    research = data["research"]
    reason = (
        "2 tools is too small a sample to read each judge's estimated accuracy or the variance split "
        f"(the minimum is {MIN_TOOLS})"
    )
    assert research["sample"] == {"n_tools": 2, "minimum": MIN_TOOLS, "reason": reason}
    assert research["variance"] is None
    assert all(j["estimated_accuracy"]["point"] is None for j in research["judges"])
    assert data["sample"]["n_tools"] == 2 and data["sample"]["minimum"] == MIN_TOOLS
    page = tmp_path / "agreement.html"
    assert cli("agreement", run_id, "--out", str(out), "--resamples", "200", "--report", str(page)).code == 0
    text = html.unescape(page.read_text())
    assert text.count("Too few tools to read") == 3  # the headline, the latent model, the variance split
    assert f"Too small a sample: {reason}. Its figures are left out (null in the JSON)." in text
    printed = cli("agreement", run_id, "--out", str(out), "--resamples", "200")
    assert f"Left out: {reason}." in " ".join(printed.out.split())


def test_an_interval_that_is_one_point_is_flagged(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    run_id = _two_tools(cli, out)
    stats = _json(cli, out, run_id)["stats"]
    points = [
        stats[k] for k in ("percent_agreement", "fleiss_kappa", "krippendorff_alpha", "effective_votes")
    ]
    one = [e for e in points if e["low"] is not None and e["low"] == e["high"]]
    assert one, "the two-tool run must hold an interval that is one point"
    assert all(e["note"] == COLLAPSED for e in one)
    assert all("note" not in e for e in points if e not in one)
    printed = cli("agreement", run_id, "--out", str(out), "--resamples", "200")
    assert COLLAPSED in " ".join(printed.out.split())
