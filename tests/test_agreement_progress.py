"""`panel agreement`: progress of the analysis's phases, and `last` as a run id."""

from __future__ import annotations

import functools
import importlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("numpy")

from rich.console import Console

from panel.analysis.agreement import analyze
from panel.cli.progress_phases import PhaseBar
from panel.store import Store

from .factories import store_verdicts

# 20 tools: the fewest the variance split is read from (panel.analysis.sample.MIN_TOOLS)
VERDICTS = {"builder": ["ship", "skip", "ship", "skip"] * 5, "skeptic": ["ship", "skip", "skip", "skip"] * 5}


# --- the phases analyze tells ---------------------------------------------------------


def test_analyze_tells_each_phase_up_to_its_total(tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    with Store(tmp_path / "runs") as store:
        store_verdicts(store, "r", VERDICTS, status="done")
        analyze(store, ["r"], n_resamples=50, progress=lambda *call: calls.append(call))
    phases = list(dict.fromkeys(phase for phase, _, _ in calls))
    # Two judges are too few for the latent model, which then fits nothing and tells nothing.
    expected = [
        "reading reviews",
        "variance split",
        "bootstrap intervals",
        "pairwise kappas",
        "self-consistency",
    ]
    assert phases == expected
    last = {phase: (done, total) for phase, done, total in calls}
    assert last == {
        "reading reviews": (40, 40),
        "variance split": (50, 50),
        "bootstrap intervals": (50, 50),
        "pairwise kappas": (1, 1),
        "self-consistency": (1, 1),
    }
    for phase in phases:  # each phase only moves forward
        done = [d for p, d, _ in calls if p == phase]
        assert done == sorted(done)


# --- the bar --------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=terminal, width=100, emoji=False), buffer


def _work(bar: PhaseBar, clock: Clock, seconds_per_step: float) -> None:
    with bar:
        for done in range(0, 2001, 500):
            bar("bootstrap intervals", done, 2000)
            clock.now += seconds_per_step
        bar("pairwise kappas", 1, 1)


def test_a_quick_command_shows_no_bar() -> None:
    clock = Clock()
    console, buffer = _console(terminal=True)
    _work(PhaseBar(console, clock=clock), clock, seconds_per_step=0.1)  # 0.5 s in all
    assert buffer.getvalue() == ""


def test_a_slow_command_on_a_terminal_shows_its_phase_after_a_second() -> None:
    clock = Clock()
    console, buffer = _console(terminal=True)
    bar = PhaseBar(console, clock=clock)
    clock.now += 0.9  # imports and reading, before the first phase is told
    bar("reading reviews", 0, 40)
    assert buffer.getvalue() == ""
    _work(bar, clock, seconds_per_step=0.5)
    shown = buffer.getvalue()
    assert "bootstrap intervals" in shown.split("\r")[0]  # the first frame: the phase it was in
    assert "pairwise kappas" in shown and "1/1" in shown  # the last frame
    assert shown.endswith("\x1b[2K")  # and erased when the work ends


def test_a_slow_command_writes_nothing_when_stderr_is_not_a_terminal() -> None:
    clock = Clock()
    console, buffer = _console(terminal=False)
    _work(PhaseBar(console, clock=clock), clock, seconds_per_step=5.0)
    assert buffer.getvalue() == ""


def test_the_cli_json_stays_clean_with_the_bar_in_place(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stderr a terminal and the command slow from its start: the bar is drawn, on stderr
    alone, and stdout holds the JSON and nothing else."""
    from panel.cli.apps import err_console

    command = importlib.import_module("panel.cli.agreement")  # the package's `agreement` is the command

    # as the console would be made were stderr a terminal
    monkeypatch.setattr(err_console, "_force_terminal", True)
    monkeypatch.setattr(err_console, "is_interactive", True)
    monkeypatch.setenv("TERM", "xterm-256color")  # not a dumb terminal, whatever runs the tests
    monkeypatch.setattr(command, "PhaseBar", functools.partial(PhaseBar, delay=0.0))
    with Store(tmp_path / "runs") as store:
        store_verdicts(store, "r", VERDICTS, status="done")
    result = cli("agreement", "r", "--format", "json", "--resamples", "50", "--out", str(tmp_path / "runs"))
    assert result.code == 0, result.err
    assert "reading reviews" in result.err and "0/40" in result.err  # the bar was drawn, on stderr
    assert json.loads(result.out)["runs"] == ["r"]  # stdout parses whole: not one byte of the bar
    assert "\x1b" not in result.out and "\r" not in result.out


# --- `last` ---------------------------------------------------------------------------


def test_last_is_the_newest_finished_run(cli: Any, tmp_path: Path) -> None:
    out = str(tmp_path / "runs")
    with Store(tmp_path / "runs") as store:
        store_verdicts(store, "older", VERDICTS, status="done")
        store_verdicts(store, "newer", VERDICTS, status="done")
        store_verdicts(store, "stopped", VERDICTS, status="stopped")  # newest, but not finished

    def runs_of(*args: str) -> list[str]:
        result = cli("agreement", *args, "--format", "json", "--resamples", "20", "--out", out)
        assert result.code == 0, result.err
        runs: list[str] = json.loads(result.out)["runs"]
        return runs

    assert runs_of("last") == ["newer"]
    assert runs_of("older", "last") == ["older", "newer"]
    result = cli("agreement", "newer", "last", "--out", out)
    assert result.code == 2 and "given twice" in result.err


def test_last_with_no_finished_run_is_one_line(cli: Any, tmp_path: Path) -> None:
    with Store(tmp_path / "runs") as store:
        store_verdicts(store, "r", VERDICTS, status="stopped")
    result = cli("agreement", "last", "--out", str(tmp_path / "runs"))
    assert result.code == 2 and result.out == ""
    assert len(result.err.strip().splitlines()) == 1 and "no finished run" in result.err
