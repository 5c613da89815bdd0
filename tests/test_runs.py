"""Runs you can interrupt, resume, list and trust, in-process with the `fake` backend.

Ctrl-C is the real SIGINT, raised in the middle of a run from the engine's result callback,
so asyncio's own handler cancels the run exactly as it does for a person at a terminal.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import re
import shlex
import signal
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import panel.cli.apps
from panel.backends.base import Reply, Request
from panel.backends.fake import FakeBackend
from panel.cli.progress import Reporter

TWO_TOOLS = ["--tools", "ollama,vllm"]  # 2 tools x 4 personas = 8 reviews


def _status(runs: Path, run_id: str) -> str:
    db = sqlite3.connect(runs / "panel.db")
    try:
        return str(db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0])
    finally:
        db.close()


def _cells(runs: Path, run_id: str) -> Counter[tuple[str, ...]]:
    db = sqlite3.connect(runs / "panel.db")
    try:
        rows = db.execute(
            "SELECT tool_id, persona_id, member, repeat FROM reviews WHERE run_id = ?", (run_id,)
        )
        return Counter(tuple(str(c) for c in r) for r in rows)
    finally:
        db.close()


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(autouse=True)
def terminal_sigint() -> Iterator[None]:
    """Ctrl-C as at a terminal. A job started in the background (as `cmd &` in a script, which
    is how a CI runner may start this suite) inherits SIGINT ignored, and Python then never
    raises KeyboardInterrupt for it."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def yielding_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake backend awaits once per call, as a real one does, so a cancel can land mid-run."""
    original = FakeBackend.generate

    async def generate(self: FakeBackend, request: Request) -> Reply:
        await asyncio.sleep(0)
        return await original(self, request)

    monkeypatch.setattr(FakeBackend, "generate", generate)


def _interrupt_after(monkeypatch: pytest.MonkeyPatch, n: int, how: Callable[[], None]) -> None:
    """Ctrl-C once, when the engine has reported its `n`th result (later runs go through)."""
    original = Reporter.update
    seen = [0]

    def update(self: Reporter, result: Any, stats: Any) -> None:
        original(self, result, stats)
        seen[0] += 1
        if seen[0] == n:
            how()

    monkeypatch.setattr(Reporter, "update", update)


def _sigint() -> None:
    signal.raise_signal(signal.SIGINT)


def _keyboard_interrupt() -> None:
    raise KeyboardInterrupt


RESUME_LINE = re.compile(
    r"^interrupted: run (\S+) has (\d+) of 8 reviews; resume with: (panel review --resume \S+.*)$"
)


def test_ctrl_c_says_how_to_resume_and_the_command_finishes_the_run(
    cli: Any, runs_dir: Path, monkeypatch: pytest.MonkeyPatch, yielding_fake: None
) -> None:
    _interrupt_after(monkeypatch, 3, _sigint)
    result = cli("review", "-b", "fake", *TWO_TOOLS, "--out", str(runs_dir), "--progress", "quiet")
    assert result.code == 130, result
    match = RESUME_LINE.match(_one_line(result.err))
    assert match, result.err
    run_id, done, command = match.group(1), int(match.group(2)), match.group(3)
    assert 3 <= done < 8
    assert command == f"panel review --resume {run_id} --out {runs_dir}"
    assert _status(runs_dir, run_id) == "interrupted"

    resumed = cli(*shlex.split(command)[1:], "--progress", "quiet")
    assert resumed.code == 0, resumed
    assert _status(runs_dir, run_id) == "done"
    cells = _cells(runs_dir, run_id)
    assert len(cells) == 8 and set(cells.values()) == {1}
    assert (runs_dir / run_id / "reviews.jsonl").read_text().count("\n") == 8


def test_interrupted_compare_resumes_with_review_and_writes_its_record(
    cli: Any, runs_dir: Path, monkeypatch: pytest.MonkeyPatch, yielding_fake: None
) -> None:
    # A KeyboardInterrupt raised in the callback itself (no signal handler in between).
    _interrupt_after(monkeypatch, 2, _keyboard_interrupt)
    result = cli("compare", "ollama", "vllm", "-b", "fake", "--out", str(runs_dir), "--progress", "quiet")
    assert result.code == 130, result
    match = RESUME_LINE.match(_one_line(result.err))
    assert match, result.err
    run_id = match.group(1)
    assert _status(runs_dir, run_id) == "interrupted"
    assert not (runs_dir / run_id / "comparison.json").exists()

    resumed = cli("review", "--resume", "last", "--out", str(runs_dir), "--progress", "quiet")
    assert resumed.code == 0, resumed
    assert resumed.out.startswith(f"{run_id}: 8/8 reviews")
    record = json.loads((runs_dir / run_id / "comparison.json").read_text())
    assert record["run_id"] == run_id and record["counts"]["reviews"] == 8
    assert _status(runs_dir, run_id) == "done"


def test_resume_last_takes_the_newest_unfinished_run(
    cli: Any, runs_dir: Path, monkeypatch: pytest.MonkeyPatch, yielding_fake: None
) -> None:
    nothing = cli("review", "--resume", "last", "--out", str(runs_dir))
    assert _one_line(nothing.err) == f"error: --resume last: no unfinished run in {runs_dir}"
    assert nothing.code == 2 and not runs_dir.exists()
    done = cli("review", "-b", "fake", *TWO_TOOLS, "--out", str(runs_dir), "--progress", "quiet")
    assert done.code == 0
    none_left = cli("review", "--resume", "last", "--out", str(runs_dir), "--progress", "quiet")
    assert none_left.code == 2
    assert _one_line(none_left.err) == f"error: --resume last: no unfinished run in {runs_dir}"

    _interrupt_after(monkeypatch, 1, _sigint)
    cut = cli("review", "-b", "fake", "--tools", "ollama", "--out", str(runs_dir), "--progress", "quiet")
    assert cut.code == 130
    cut_id = RESUME_LINE.pattern and cut.err.split()[2]
    resumed = cli("review", "--resume", "last", "--out", str(runs_dir), "--progress", "quiet")
    assert resumed.code == 0 and resumed.out.startswith(f"{cut_id}: 4/4 reviews"), resumed


def test_runs_prints_whole_ids_as_a_table_or_json_and_filters_by_status(
    cli: Any, runs_dir: Path, monkeypatch: pytest.MonkeyPatch, yielding_fake: None
) -> None:
    finished = cli("review", "-b", "fake", "--tools", "ollama", "--out", str(runs_dir), "--progress", "quiet")
    done_id = finished.out.split(":")[0]
    _interrupt_after(monkeypatch, 1, _sigint)
    cut = cli("review", "-b", "fake", "--tools", "vllm", "--out", str(runs_dir), "--progress", "quiet")
    cut_id = cut.err.split()[2]

    monkeypatch.setattr(panel.cli.apps.out_console, "width", 60)  # a narrow terminal
    table = cli("runs", "--out", str(runs_dir))
    assert table.code == 0
    for run_id in (done_id, cut_id):
        assert any(run_id in line for line in table.out.splitlines()), table.out

    # An interrupted run shows what it stored of what it planned, not "1/1".
    (cut_line,) = [line for line in table.out.splitlines() if line.startswith(cut_id)]
    (done_line,) = [line for line in table.out.splitlines() if line.startswith(done_id)]
    assert "1 of 4 stored, 1 valid" in cut_line and "4 of 4 stored, 4 valid" in done_line, table.out

    listed = json.loads(cli("runs", "--out", str(runs_dir), "--json").out)
    assert [(r["id"], r["status"], r["reviews"], r["planned"]) for r in listed] == [
        (cut_id, "interrupted", 1, 4),
        (done_id, "done", 4, 4),
    ]
    assert listed[1]["command"].startswith("panel review -b fake --tools ollama")
    only = json.loads(cli("runs", "--out", str(runs_dir), "--json", "--status", "interrupted").out)
    assert [r["id"] for r in only] == [cut_id]
    none = cli("runs", "--out", str(runs_dir), "--status", "failed")
    assert none.out.strip() == f"no failed runs in {runs_dir}"
    bad = cli("runs", "--out", str(runs_dir), "--status", "finished")
    assert bad.code == 2


def test_version(cli: Any) -> None:
    result = cli("--version")
    assert result.code == 0 and result.out == f"panel {panel.__version__}\n"


# -- the pre-run estimate and --progress jsonl ----------------------------------------------------


@pytest.fixture
def prices(tmp_path: Path) -> Path:
    """A price for the fake backend, so runs have a cost to estimate and to budget."""
    path = tmp_path / "prices.toml"
    path.write_text('[prices."fake"]\ninput = 100.0\noutput = 400.0\n')
    return path


def test_the_plan_line_estimates_the_cost_and_the_run_stays_under_its_worst_case(
    cli: Any, runs_dir: Path, prices: Path
) -> None:
    result = cli("review", "-b", "fake", *TWO_TOOLS, "--prices", str(prices), "--out", str(runs_dir))
    assert result.code == 0, result
    (plan,) = [line for line in result.err.splitlines() if line.startswith("plan:")]
    match = re.fullmatch(
        r"plan: 8 reviews = 2 tools x 4 personas x 1 members; estimated \$(\S+), at most \$(\S+)", plan
    )
    assert match, plan
    expected, worst = float(match.group(1)), float(match.group(2))
    spent = float(re.search(r" · \$(\S+) · ", result.out).group(1))  # type: ignore[union-attr]
    assert 0 < expected < worst and 0 < spent <= worst


def test_a_resumed_runs_plan_line_says_what_is_done_and_estimates_the_rest(
    cli: Any, runs_dir: Path, prices: Path, monkeypatch: pytest.MonkeyPatch, yielding_fake: None
) -> None:
    args = ["review", "-b", "fake", *TWO_TOOLS, "--prices", str(prices), "--out", str(runs_dir)]
    _interrupt_after(monkeypatch, 3, _sigint)
    cut = cli(*args)
    assert cut.code == 130, cut
    (first,) = [line for line in cut.err.splitlines() if line.startswith("plan:")]
    whole = float(re.search(r"at most \$(\S+)$", first).group(1))  # type: ignore[union-attr]
    match = RESUME_LINE.match(cut.err.splitlines()[-1])
    assert match, cut.err
    run_id, done = match.group(1), int(match.group(2))

    resumed = cli("review", "--resume", run_id, "--out", str(runs_dir), "--prices", str(prices))
    assert resumed.code == 0, resumed
    (plan,) = [line for line in resumed.err.splitlines() if line.startswith("plan:")]
    left = 8 - done
    match = re.fullmatch(
        rf"plan: resuming run {run_id}: {done} of 8 reviews done, {left} to go \(2 tools x 4 personas "
        rf"x 1 members\); estimated \$(\S+) for the {left} to go, at most \$(\S+)",
        plan,
    )
    assert match, plan
    assert float(match.group(2)) == pytest.approx(whole * left / 8, abs=2e-4)


def test_the_printed_at_most_is_what_the_budget_guard_reserves(
    cli: Any, runs_dir: Path, prices: Path
) -> None:
    """One token estimator: the plan's "at most" is the sum of the guard's reservations."""
    result = cli(
        "review", "-b", "fake", *TWO_TOOLS, "--prices", str(prices), "--out", str(runs_dir),
        "--progress", "jsonl",
    )  # fmt: skip
    assert result.code == 0, result
    events = [json.loads(line) for line in result.err.splitlines()]
    (plan,) = [e for e in events if e["event"] == "plan"]
    db = sqlite3.connect(runs_dir / "panel.db")
    try:
        (reserved,) = db.execute("SELECT SUM(reserved_usd) FROM requests WHERE ask = 1").fetchone()
    finally:
        db.close()
    assert reserved > 0
    assert plan["worst_usd"] == pytest.approx(reserved, rel=1e-6)


def test_files_of_a_repeated_review_carry_the_status_and_the_repeats(cli: Any, runs_dir: Path) -> None:
    result = cli("review", "-b", "fake", "--tools", "ollama", "--repeats", "2", "--out", str(runs_dir))
    assert result.code == 0, result
    run_id = result.out.split(":", 1)[0]
    record = json.loads((runs_dir / run_id / "tools" / "ollama.json").read_text())
    assert record["run"]["status"] == "done" and record["run"]["complete"]
    assert record["run"]["planned"] == 8 and record["run"]["missing"] == 0
    assert record["self_consistency"] is not None
    assert record["counts"]["reviews"] == 4  # repeat 0 is the panel


def test_progress_jsonl_writes_nothing_but_json_lines_on_stderr(
    cli: Any, runs_dir: Path, prices: Path
) -> None:
    args = ["review", "-b", "fake", *TWO_TOOLS, "--prices", str(prices), "--out", str(runs_dir)]
    result = cli(*args, "--progress", "jsonl", "--max-cost", "0.5")
    assert result.code == 3, result  # stopped at the budget: that notice is an event too
    events = [json.loads(line) for line in result.err.splitlines()]  # every line parses
    kinds = [e["event"] for e in events]
    assert kinds[0] == "plan" and kinds[-1] == "stopped" and "done" in kinds and "progress" in kinds
    plan = events[0]
    assert plan["reviews"] == 8 and plan["members"] == ["fake:schema"] and plan["worst_usd"] > 0
    assert events[-1]["resume"] == f"panel review --resume {events[-1]['run_id']} --out {runs_dir} " + (
        f"--prices {prices} --max-cost MORE"
    )

    error = cli(*args, "--progress", "jsonl", "--tools", "nope")
    assert error.code == 2
    (line,) = error.err.splitlines()
    assert json.loads(line)["event"] == "error" and "no tool with id 'nope'" in line

    compared = cli(
        "compare", "ollama", "vllm", "-b", "fake", "--json", "--progress", "jsonl", "--out", str(runs_dir)
    )
    assert compared.code == 0
    assert [json.loads(line)["event"] for line in compared.err.splitlines()][-1] == "wrote"
    assert json.loads(compared.out)["counts"]["reviews"] == 8


# -- files and the store that cannot be written ---------------------------------------------------


def _no_space(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every output file meets a full disk once its first bytes are written."""
    real_fdopen = os.fdopen

    class Full:
        def __init__(self, fh: Any) -> None:
            self.fh = fh

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def writelines(self, lines: Any) -> None:
            for line in lines:
                self.write(line)

    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: Full(real_fdopen(fd, *a, **k)))


@pytest.mark.parametrize(
    ("command", "first_file"),
    [
        (["review", "-b", "fake", *TWO_TOOLS], "reviews.jsonl"),
        (["compare", "ollama", "vllm", "-b", "fake"], "comparison.json"),
    ],
)
def test_a_full_disk_fails_the_run_instead_of_calling_it_done(
    cli: Any, runs_dir: Path, monkeypatch: pytest.MonkeyPatch, command: list[str], first_file: str
) -> None:
    with monkeypatch.context() as patch:
        _no_space(patch)
        result = cli(*command, "--out", str(runs_dir), "--progress", "quiet")
    assert result.code == 2, result
    line = _one_line(result.err)
    (run_id,) = [p.name for p in runs_dir.iterdir() if p.is_dir()]
    assert line == f"error: cannot write {runs_dir / run_id / first_file}: no space left on the device"
    assert _status(runs_dir, run_id) == "failed"
    assert list((runs_dir / run_id).iterdir()) == [], "no file, not even a temporary one, is left"
    listed = json.loads(cli("runs", "--out", str(runs_dir), "--json", "--status", "failed").out)
    assert [r["id"] for r in listed] == [run_id]

    # Space again: the failed run is resumed and only its files are written.
    resumed = cli("review", "--resume", run_id, "--out", str(runs_dir), "--progress", "quiet")
    assert resumed.code == 0, resumed
    assert "0 sent" in resumed.out and (runs_dir / run_id / first_file).is_file()
    assert _status(runs_dir, run_id) == "done"


def test_a_full_database_is_one_line_naming_it(
    cli: Any, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from panel.store import Store

    create_run = Store.create_run

    def then_fill_up(self: Store, *args: Any, **kwargs: Any) -> None:
        create_run(self, *args, **kwargs)
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        self.db.execute(f"PRAGMA max_page_count = {pages}")  # SQLITE_FULL on the next new page

    monkeypatch.setattr(Store, "create_run", then_fill_up)
    result = cli("review", "-b", "fake", "--out", str(runs_dir), "--progress", "quiet")
    assert result.code == 2, result
    assert _one_line(result.err) == f"error: cannot write {runs_dir / 'panel.db'}: database or disk is full"
    listed = json.loads(cli("runs", "--out", str(runs_dir), "--json").out)
    assert [r["status"] for r in listed] == ["failed"]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("FILE", "error: runs folder {out} is a file: give --out a folder"),
        ("FILE/runs", "error: cannot create the runs folder {out}: Not a directory"),
        ("/proc/panel-runs", "error: cannot create the runs folder {out}: No such file or directory"),
    ],
)
@pytest.mark.parametrize("command", [["review", *TWO_TOOLS], ["compare", "ollama", "vllm"]])
def test_an_out_folder_that_cannot_be_made_is_one_line(
    cli: Any, tmp_path: Path, where: str, message: str, command: list[str]
) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("not a folder\n")
    out = where.replace("FILE", str(a_file))
    result = cli(*command, "-b", "fake", "--out", out)
    assert result.code == 2, result
    assert _one_line(result.err) == message.format(out=out)
    assert a_file.read_text() == "not a folder\n"


def test_render_out_that_is_a_folder_is_refused(cli: Any, runs_dir: Path, tmp_path: Path) -> None:
    made = cli("compare", "ollama", "vllm", "-b", "fake", "--json", "--out", str(runs_dir))
    run_id = json.loads(made.out)["run_id"]
    result = cli("render", run_id, "--output", str(tmp_path), "--out", str(runs_dir))
    assert result.code == 2
    assert _one_line(result.err) == (
        f"error: --output {tmp_path} is a folder: give the name of the file to write"
    )
    under_file = tmp_path / "page.html" / "x.html"
    (tmp_path / "page.html").write_text("")
    result = cli("render", run_id, "--output", str(under_file), "--out", str(runs_dir))
    assert result.code == 2
    assert _one_line(result.err) == (
        f"error: cannot write {under_file}: {tmp_path / 'page.html'} is a file, not a folder"
    )


@pytest.mark.parametrize(
    ("command", "errors_in"),
    [(["review", *TWO_TOOLS], "reviews.jsonl"), (["compare", "ollama", "vllm"], "comparison.json")],
)
def test_a_run_with_no_valid_review_exits_1(
    cli: Any, runs_dir: Path, monkeypatch: pytest.MonkeyPatch, command: list[str], errors_in: str
) -> None:
    async def nonsense(self: FakeBackend, request: Request) -> Reply:
        return Reply(text="no JSON here", finish_reason="stop")

    monkeypatch.setattr(FakeBackend, "generate", nonsense)
    result = cli(*command, "-b", "fake", "--out", str(runs_dir), "--progress", "quiet")
    assert result.code == 1, result
    (run_id,) = [p.name for p in runs_dir.iterdir() if p.is_dir()]
    assert _one_line(result.err) == (
        f"no review of run {run_id} is valid: every one failed (the errors are in "
        f"{runs_dir / run_id / errors_in})"
    )
    assert _status(runs_dir, run_id) == "done" and (runs_dir / run_id / errors_in).is_file()


@pytest.mark.parametrize(
    "command",
    [
        ["show", "RUN"],
        ["render", "RUN", "--runs", "OUT"],
        ["diff", "RUN", "RUN"],
        ["agreement", "RUN"],
        ["runs"],
    ],
)
def test_read_only_commands_create_no_folder_and_no_database(
    cli: Any, tmp_path: Path, command: list[str]
) -> None:
    out = tmp_path / "runs"
    args = [a.replace("OUT", str(out)).replace("RUN", "20260101-000000-abcdef") for a in command]
    if "--runs" not in args:
        args += ["--out", str(out)]
    missing = cli(*args)
    assert not out.exists()
    out.mkdir()
    empty = cli(*args)
    assert list(out.iterdir()) == []
    if command[0] == "runs":
        assert missing.code == empty.code == 0 and missing.out.strip() == f"no runs yet in {out}"
        return
    assert missing.code == empty.code == 2
    assert "no run" in _one_line(missing.err) and str(out) in missing.err


def test_readers_do_not_migrate_or_write_an_existing_store(cli: Any, runs_dir: Path) -> None:
    made = cli("compare", "ollama", "vllm", "-b", "fake", "--json", "--out", str(runs_dir))
    run_id = json.loads(made.out)["run_id"]
    db = runs_dir / "panel.db"
    before = db.read_bytes()
    for args in (["show", run_id], ["runs"], ["diff", run_id, run_id], ["agreement", run_id]):
        assert cli(*args, "--out", str(runs_dir)).code == 0, args
    assert cli("render", run_id, "--runs", str(runs_dir)).code == 0
    assert db.read_bytes() == before
    assert sorted(p.name for p in runs_dir.iterdir() if p.is_file() and "panel.db" not in p.name) == [
        "panel.lock"
    ]


# -- spend that a crash must not hide --------------------------------------------------------------


def test_a_request_whose_reply_was_lost_counts_against_the_budget_on_resume(
    cli: Any, runs_dir: Path, tmp_path: Path, prices: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "panel.toml"
    config.write_text('[[members]]\nspec = "fake"\nconcurrency = 1\n')
    original = FakeBackend.generate
    calls = [0]

    async def generate(self: FakeBackend, request: Request) -> Reply:
        calls[0] += 1
        if calls[0] == 2:  # the second request is out when Ctrl-C comes: its reply is never stored
            signal.raise_signal(signal.SIGINT)
            await asyncio.sleep(0)
        return await original(self, request)

    monkeypatch.setattr(FakeBackend, "generate", generate)
    common = ["--config", str(config), "--prices", str(prices), "--out", str(runs_dir), "--progress", "quiet"]
    cut = cli("review", *TWO_TOOLS, *common)
    assert cut.code == 130, cut
    db = sqlite3.connect(runs_dir / "panel.db")
    (run_id,) = [r[0] for r in db.execute("SELECT id FROM runs")]
    answered = db.execute("SELECT SUM(cost_usd) FROM replies").fetchone()[0]
    (lost_worst,) = db.execute("SELECT reserved_usd FROM requests WHERE status = 'pending'").fetchone()
    assert answered > 0 and lost_worst > 0

    # The budget covers what was answered plus one more request at its worst case, but not
    # also the lost one: it is refused before any request is sent.
    budget = answered + 1.5 * lost_worst
    resumed = cli("review", "--resume", run_id, "--max-cost", f"{budget:.6f}", *common[2:])
    assert resumed.code == 3, resumed
    assert calls[0] == 2, "no request may be sent once the lost one is charged"
    assert "1 reply lost when the run was cut off, charged at worst case" in resumed.out
    spent = float(re.search(r" · \$(\S+) · ", resumed.out).group(1))  # type: ignore[union-attr]
    assert spent == pytest.approx(answered + lost_worst, abs=1e-4) and spent <= budget
    assert db.execute("SELECT status FROM requests WHERE reserved_usd = ?", (lost_worst,)).fetchone() == (
        "lost",
    )
    db.close()


# -- what the README promises ------------------------------------------------------------------------


def test_show_prints_a_past_runs_scorecard_and_headline(cli: Any, runs_dir: Path) -> None:
    made = cli("compare", "ollama", "vllm", "-b", "fake", "-p", "skeptic", "--json", "--out", str(runs_dir))
    record = json.loads(made.out)
    shown = cli("show", record["run_id"], "--out", str(runs_dir))
    assert shown.code == 0, shown
    assert "Reviewer scorecard — Ollama vs vLLM" in shown.out
    assert shown.out.count("The Skeptic") == 2
    for card in record["tools"]:
        assert f"{card['name']}: panel ship {card['panel']['display']}" in shown.out
    assert record["headline"]["text"] in shown.out.replace("\n", " ")


def test_panel_runs_dir_is_where_runs_go_and_are_read(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv("PANEL_RUNS_DIR", str(elsewhere))
    made = cli("review", "-b", "fake", "--tools", "ollama", "--progress", "quiet")
    assert made.code == 0, made
    run_id = made.out.split(":")[0]
    assert (elsewhere / run_id / "reviews.jsonl").is_file() and not (tmp_path / "runs").exists()
    assert run_id in cli("runs").out
    assert cli("show", run_id).code == 0
    assert json.loads(cli("render", run_id, "-f", "json").out)["run_id"] == run_id


def test_panel_config_names_the_config_and_a_member_is_picked_by_its_name(
    cli: Any, tmp_path: Path, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    unknown = cli("review", "-b", "stub", "--tools", "ollama", "--out", str(runs_dir))
    assert unknown.code == 2 and "unknown backend 'stub'" in unknown.err
    config = tmp_path / "conf" / "mine.toml"
    config.parent.mkdir()
    config.write_text('[[members]]\nspec = "fake"\nname = "stub"\n')
    monkeypatch.setenv("PANEL_CONFIG", str(config))
    made = cli("review", "-b", "stub", "--tools", "ollama", "--out", str(runs_dir), "--progress", "quiet")
    assert made.code == 0, made
    assert set(_cells(runs_dir, made.out.split(":")[0])) == {
        ("ollama", p, "stub", "0") for p in ("builder", "skeptic", "futurist", "business_analyst")
    }  # a named member is known by its name in the store and the record
    monkeypatch.setenv("PANEL_CONFIG", str(tmp_path / "none.toml"))
    missing = cli("review", "-b", "stub", "--out", str(runs_dir))
    assert (
        missing.code == 2
        and _one_line(missing.err) == f"error: {tmp_path / 'none.toml'}: config file not found"
    )


def test_tool_panel_in_pyproject_is_the_config_of_its_folder(
    cli: Any, tmp_path: Path, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PANEL_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.panel]\n[[tool.panel.members]]\nspec = "fake"\nname = "stub"\n'
    )
    made = cli("review", "-b", "stub", "--tools", "vllm", "--out", str(runs_dir), "--progress", "quiet")
    assert made.code == 0, made
    # With no --backend, the configured members are the panel.
    default = cli("review", "--tools", "vllm", "--out", str(runs_dir), "--progress", "quiet")
    assert default.code == 0 and "4/4 reviews" in default.out


def test_since_last_copies_unchanged_reviews_and_no_cache_sends_again(cli: Any, runs_dir: Path) -> None:
    args = ["review", "-b", "fake", *TWO_TOOLS, "--out", str(runs_dir), "--progress", "quiet"]
    none = cli(*args, "--since", "last")
    assert none.code == 2 and _one_line(none.err).startswith("error: --since")
    first = cli(*args)
    assert "8 sent · 0 from cache" in first.out
    cached = cli(*args)
    assert "0 sent · 8 from cache" in cached.out
    fresh = cli(*args, "--no-cache")
    assert "8 sent · 0 from cache" in fresh.out
    since = cli(*args, "--since", "last")
    assert since.code == 0
    assert "0 sent · 0 from cache · 8 copied" in since.out
    assert f"0 verdicts flipped since {fresh.out.split(':')[0]}" in since.out


def test_show_and_render_of_an_unfinished_run_say_it_is_partial(
    cli: Any, runs_dir: Path, monkeypatch: pytest.MonkeyPatch, yielding_fake: None
) -> None:
    _interrupt_after(monkeypatch, 3, _keyboard_interrupt)
    cut = cli("compare", "ollama", "vllm", "-b", "fake", "--out", str(runs_dir), "--progress", "quiet")
    assert cut.code == 130, cut
    run_id = RESUME_LINE.match(_one_line(cut.err)).group(1)  # type: ignore[union-attr]
    note = re.compile(
        rf"^note: run {run_id} is not finished \(interrupted, (\d) of 8 reviews missing\): its figures "
        rf"are partial\. Finish it with: panel review --resume {run_id} --out {re.escape(str(runs_dir))}$"
    )
    shown = cli("show", run_id, "--out", str(runs_dir))
    assert shown.code == 0, shown
    assert note.match(_one_line(shown.err)), shown.err
    assert "Partial run" in shown.out.replace("\n", " ")
    rendered = cli("render", run_id, "--format", "json", "--runs", str(runs_dir))
    assert note.match(_one_line(rendered.err)), rendered.err
    state = json.loads(rendered.out)["run"]
    assert state["status"] == "interrupted" and not state["complete"] and state["missing"] > 0

    # Once finished, neither says a word on stderr.
    assert cli("review", "--resume", run_id, "--out", str(runs_dir), "--progress", "quiet").code == 0
    assert cli("show", run_id, "--out", str(runs_dir)).err == ""
    assert cli("render", run_id, "--format", "md", "--runs", str(runs_dir)).err == ""


def test_two_members_of_one_model_sit_on_the_panel_by_their_names(
    cli: Any, tmp_path: Path, runs_dir: Path, monkeypatch: pytest.MonkeyPatch, yielding_fake: None
) -> None:
    """Members are keyed by name: the same backend:model twice (say, two servers) is two members."""
    config = tmp_path / "panel.toml"
    config.write_text(
        '[[members]]\nspec = "fake"\nname = "left"\n\n[[members]]\nspec = "fake"\nname = "right"\n'
    )
    _interrupt_after(monkeypatch, 5, _keyboard_interrupt)
    cut = cli("review", *TWO_TOOLS, "--config", str(config), "--out", str(runs_dir), "--progress", "quiet")
    assert cut.code == 130, cut
    run_id = _one_line(cut.err).split()[2]  # "interrupted: run RUN has N of 16 reviews; ..."
    resumed = cli("review", "--resume", run_id, "--out", str(runs_dir), "--progress", "quiet")
    assert resumed.code == 0, resumed
    cells = _cells(runs_dir, run_id)
    assert len(cells) == 16 and set(cells.values()) == {1}
    assert {member for _, _, member, _ in cells} == {"left", "right"}
    record = json.loads((runs_dir / run_id / "tools" / "ollama.json").read_text())
    assert record["panel"]["members"] == ["left", "right"]
    assert set(record["tools"][0]["panel_by_member"]) == {"left", "right"}
