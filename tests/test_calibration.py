"""The reliability diagram and the expected calibration error (panel.analysis.calibration)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("numpy")

import numpy as np

from panel.analysis.calibration import MIN_TOOLS, calibration, cross_fitted
from panel.analysis.judges import MISSING


def test_a_calibrated_predictor_has_an_ece_near_zero() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(20_000)
    ship = rng.random(20_000) < p  # the reference ships exactly as often as predicted
    found = calibration(p, ship)
    assert found.n == 20_000 and found.sample is None
    assert found.ece is not None and found.ece < 0.015
    for b in found.bins:
        assert b.count > 1500 and b.predicted is not None and b.observed is not None
        assert b.low <= b.predicted < b.high and abs(b.observed - b.predicted) < 0.04


def test_a_constant_predictor_has_the_gap_to_the_base_rate_as_its_ece() -> None:
    ship = [True] * 30 + [False] * 70
    found = calibration([0.7] * 100, ship)
    assert found.ece == pytest.approx(0.4)
    full = [b for b in found.bins if b.count]
    assert [(b.low, b.count, b.predicted, b.observed) for b in full] == [(0.7, 100, pytest.approx(0.7), 0.3)]


def test_the_ece_weighs_each_bins_gap_by_its_count_and_skips_tools_without_a_reference() -> None:
    # 10 tools at 0.05 of which 1 ships (gap 0.05), 30 at 0.95 of which 24 ship (gap 0.15),
    # and two tools with no reference or no probability, left out.
    p: list[float | None] = [0.05] * 10 + [0.95] * 30 + [0.5, None]
    ship: list[bool | None] = [True] + [False] * 9 + [True] * 24 + [False] * 6 + [None, True]
    found = calibration(p, ship, bins=10, minimum=40)
    assert found.n == 40 and found.sample is None
    assert found.ece == pytest.approx((10 * 0.05 + 30 * 0.15) / 40)
    assert found.bins[9].count == 30 and found.bins[9].high == 1.0


def test_a_probability_of_one_falls_in_the_last_bin() -> None:
    found = calibration([1.0, 0.0], [True, False], bins=4, minimum=2)
    assert [b.count for b in found.bins] == [1, 0, 0, 1] and found.ece == 0.0


def test_cross_fitting_scores_each_labelled_tool_with_a_model_that_never_saw_its_label() -> None:
    rng = np.random.default_rng(1)
    truth = (rng.random(400) < 0.5).astype(np.int64)
    right = rng.random((400, 5)) < 0.8
    codes = np.where(right, truth[:, None], 1 - truth[:, None]).astype(np.int64)
    labels = np.where(np.arange(400) < 200, truth, MISSING)
    out = cross_fitted(codes, labels, ["ship", "skip"], seed=0)
    assert np.isnan(out[200:]).all() and not np.isnan(out[:200]).any()
    # Flip one labelled tool's label: only tools of the other half (whose model read it) move.
    flipped = labels.copy()
    flipped[0] = 1 - flipped[0]
    moved = ~np.isclose(cross_fitted(codes, flipped, ["ship", "skip"], seed=0), out, equal_nan=True).all(
        axis=1
    )
    assert not moved[0] and moved[:200].any()
    assert math.isclose(float(out[:200, 0].mean()), 0.5, abs_tol=0.1)


def test_panel_agreement_with_a_reference_reports_the_ece_and_its_tools(cli: Any, tmp_path: Path) -> None:
    from panel.testing.simulate import editor_labels, simulate_panel, write_editor_labels, write_simulated_run

    panel = simulate_panel(300, members=("sim:a", "sim:b"), missing=0.02, run_id="sim-cal", seed=4)
    run = write_simulated_run(tmp_path / "runs", panel)
    labels = write_editor_labels(tmp_path / "labels.csv", editor_labels(panel, 200))
    args = (
        "agreement",
        run,
        "--out",
        str(tmp_path / "runs"),
        "--resamples",
        "50",
        "--reference",
        str(labels),
    )
    result = cli(*args, "--format", "json")
    assert result.code == 0, result.err
    found = json.loads(result.out)["research"]["calibration"]
    assert [c["probability"] for c in found] == [
        "Dawid-Skene, without the reference",
        "reliabilities counted on the reference (cross-fitted)",
    ]
    for c in found:
        assert c["n"] == 200 and c["sample"] is None
        bins = [b for b in c["bins"] if b["count"]]
        assert sum(b["count"] for b in bins) == 200
        gap = sum(b["count"] * abs(b["observed"] - b["predicted"]) for b in bins) / 200
        assert c["ece"] == pytest.approx(gap) and 0.0 <= c["ece"] < 0.15
    page = tmp_path / "agreement.html"
    shown = cli(*args, "--report", str(page))
    assert shown.code == 0, shown.err
    assert "expected calibration error 0." in shown.out and "over 200 tools" in shown.out
    html = page.read_text(encoding="utf-8")
    assert "Reliability diagram" in html and "Expected calibration error" in html


def test_below_the_minimum_of_tools_there_is_no_calibration_error_only_the_reason() -> None:
    found = calibration([0.05] * 10 + [0.95] * 30, [False] * 10 + [True] * 30)
    assert found.n == 40 and found.ece is None and sum(b.count for b in found.bins) == 40
    assert found.sample is not None and found.sample.minimum == MIN_TOOLS
    assert "too small a sample" in found.sample.reason


def test_panel_agreement_on_ten_labelled_tools_prints_no_calibration_error(cli: Any, tmp_path: Path) -> None:
    from panel.testing.simulate import editor_labels, simulate_panel, write_editor_labels, write_simulated_run

    panel = simulate_panel(300, members=("sim:a", "sim:b"), missing=0.02, run_id="sim-few", seed=4)
    run = write_simulated_run(tmp_path / "runs", panel)
    labels = write_editor_labels(tmp_path / "labels.csv", editor_labels(panel, 10))
    out = str(tmp_path / "runs")
    args = ("agreement", run, "--out", out, "--resamples", "50", "--reference", str(labels))
    result = cli(*args, "--format", "json")
    assert result.code == 0, result.err
    found = json.loads(result.out)["research"]["calibration"]
    assert found and all(c["ece"] is None and c["n"] == 10 for c in found)
    assert all("10 tools is too small a sample" in c["sample"]["reason"] for c in found)
    shown = cli(*args)
    assert shown.code == 0, shown.err
    flat = " ".join(shown.out.split())
    assert "expected calibration error" not in flat
    assert "no calibration error: 10 tools is too small a sample" in flat
