"""Progress where stderr is no terminal (`make demo 2>log`, CI, cron): plain lines a log keeps,
one at each tenth of the run or every ten seconds by the clock; a run the cache served whole
says so."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from rich.console import Console

from panel.cli.progress import Reporter
from panel.run.stats import RunStats


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _reporter(total: int, clock: Clock) -> tuple[Reporter, io.StringIO]:
    log = io.StringIO()  # a file, not a terminal
    return Reporter("bar", total, Console(file=log, width=200), clock=clock), log


def test_a_log_gets_a_line_at_each_tenth_of_the_run_and_every_ten_seconds() -> None:
    clock = Clock()
    reporter, log = _reporter(40, clock)
    with reporter:
        for done in range(1, 41):
            clock.now += 0.1
            if done == 7:
                clock.now += 10.0  # a slow stretch: a line though no tenth is passed
            reporter.update(None, RunStats(total=40, done=done, valid=done - done // 8, failed=done // 8))
        reporter.finish(RunStats(total=40, done=40, valid=35, failed=5, sent=40))
    lines = log.getvalue().splitlines()
    assert lines[:3] == [
        "reviews 4/40 (10%), 0 failed, $0.0000",
        "reviews 7/40 (17%), 0 failed, $0.0000",
        "reviews 8/40 (20%), 1 failed, $0.0000",
    ]
    assert len(lines) == 11 and lines[-1] == "reviews 40/40 (100%), 5 failed, $0.0000"
    assert "\x1b" not in log.getvalue() and "\r" not in log.getvalue()  # no bar drawn over itself


def test_a_run_served_from_the_cache_says_so_on_stderr(cli: Any, runs_dir: Path) -> None:
    args = ["review", "-b", "fake", "--tools", "ollama,vllm", "--out", str(runs_dir)]
    first = cli(*args)
    assert first.code == 0, first
    progress = [line for line in first.err.splitlines() if line.startswith("reviews ")]
    assert progress[-1] == "reviews 8/8 (100%), 0 failed, $0.0000", first.err
    assert "from the cache" not in first.err
    again = cli(*args)
    assert again.code == 0, again
    assert again.err.splitlines()[-1] == "8 of 8 from the cache, $0", again.err


def test_a_rankings_rounds_on_a_terminal_keep_one_bar_not_one_per_round() -> None:
    # a 200-tool ranking has dozens of rounds: a bar each would stack past the screen's height
    from panel.run.events import HeadToHeadBegun
    from panel.run.stats import RoundStats

    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    reporter = Reporter("bar", 0, console)
    with reporter:
        for _ in range(3):
            reporter.show(HeadToHeadBegun(RoundStats(12)))
        progress = reporter._progress
        assert progress is not None
        shown = [t.description for t in progress.tasks if t.visible]
    assert shown == ["head-to-head"]  # no empty "reviewing" bar either: a ranking makes no reviews
