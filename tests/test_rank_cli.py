"""`panel rank` end to end on the fake backend (whose head-to-head answers come from planted
strengths): leaderboard.json valid against its model and its JSON Schema, both orders of
every pair asked, the estimate before the asks; bad input one line, exit 2, nothing written;
a resumed ranking sends no stored ask again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from panel.backends.planted import planted_strength
from panel.report.leaderboard_file import Leaderboard
from panel.store import Store

from .conftest import EXAMPLE_CATALOG, hide_module

_RANK = ("rank", "--category", "Developer Tools", "-b", "fake", "-p", "builder", "-p", "skeptic")


def _board(runs_dir: Path) -> tuple[str, Leaderboard]:
    with Store(runs_dir, readonly=True) as store:
        ((run, _, _),) = store.list_runs()
    text = (runs_dir / run.id / "leaderboard.json").read_text()
    jsonschema.validate(json.loads(text), Leaderboard.model_json_schema())
    return run.id, Leaderboard.model_validate_json(text)


def test_rank_writes_a_valid_leaderboard_asking_both_orders_of_every_pair(cli: Any, runs_dir: Path) -> None:
    out = cli(*_RANK, "--budget", "20 pairs", "--out", str(runs_dir))
    assert out.code == 0, out.err
    assert "at most 20 of 36 pairs (the budget), 80 asks" in out.err  # the estimate, before the asks
    run_id, board = _board(runs_dir)
    assert board.run_id == run_id and board.category == "Developer Tools" and len(board.tools) == 9
    assert board.pairs_possible == 36 and board.pairs_asked <= 20 and board.budget == "20 pairs"
    assert board.asks == board.pairs_asked * 2 * 2  # both orders, two judges
    assert [t.rank for t in board.tools] == list(range(1, 10))
    with Store(runs_dir, readonly=True) as store:
        rows = store.head_to_heads(run_id)
        assert store.get_run(run_id).kind == "rank"  # type: ignore[union-attr]
    shown = {(r.persona_id, r.first_tool, r.second_tool) for r in rows}
    assert len(shown) == len(rows)
    assert all((p, b, a) in shown for p, a, b in shown)
    # The planted strongest tool is near the top, the weakest near the bottom.
    ids = [t.tool_id for t in board.tools]
    planted = sorted(ids, key=planted_strength, reverse=True)
    assert ids.index(planted[0]) <= 2 and ids.index(planted[-1]) >= 6
    assert board.tools[0].name in out.out and f"wrote {runs_dir / run_id / 'leaderboard.json'}" in out.out
    page = (runs_dir / run_id / "leaderboard.html").read_text()
    assert board.tools[0].name in page and (runs_dir / run_id / "leaderboard.md").is_file()


def test_rank_json_prints_the_board_alone_on_stdout(cli: Any, runs_dir: Path) -> None:
    out = cli("rank", "--tools", "ollama,vllm,llama-cpp", "-b", "fake", "-p", "builder", "--format", "json",
              "--out", str(runs_dir), "--progress", "quiet")  # fmt: skip
    assert out.code == 0, out.err
    board = Leaderboard.model_validate_json(out.out)
    assert board.category is None and board.pairs_possible == 3 and board.stopped in ("settled", "all-pairs")
    assert _board(runs_dir)[1].tools == board.tools


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--category", "Databases"), "no category 'Databases'"),
        (("--tools", "ollama"), "at least two tools"),
        (("--tools", "ollama,no-such-tool"), "no tool with id"),
        (("--category", "Developer Tools", "--budget", "sixty"), "--budget: 'sixty' is not a budget"),
        (("--category", "Developer Tools", "--budget", "0 pairs"), "--budget"),
        (("--category", "Developer Tools", "--budget", "$" + "9" * 400), "too large to be a cost"),
        ((), "--category C or --tools"),
        (("--category", "Developer Tools", "--tools", "ollama,vllm"), "one of the two"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    cli: Any, runs_dir: Path, args: tuple[str, ...], says: str
) -> None:
    out = cli("rank", *args, "-b", "fake", "--catalog", str(EXAMPLE_CATALOG), "--out", str(runs_dir))
    assert out.code == 2
    assert len(out.err.strip().splitlines()) == 1 and says in out.err and "Traceback" not in out.err
    assert not runs_dir.exists()


def test_a_resumed_ranking_sends_no_stored_ask_again(cli: Any, runs_dir: Path) -> None:
    out = cli(*_RANK, "--budget", "12 pairs", "--out", str(runs_dir), "--no-cache", "--progress", "quiet")
    assert out.code == 0, out.err
    run_id, before = _board(runs_dir)
    with Store(runs_dir) as store:  # as if the process died before its last 5 asks were sent
        db = store.db
        last = db.execute("SELECT * FROM head_to_head ORDER BY id DESC LIMIT 5").fetchall()
        for row in last:
            asked = (run_id, row["persona_id"], row["member"], row["first_tool"], row["second_tool"])
            where = "run_id = ? AND persona_id = ? AND member = ? AND tool_id = ? AND rival = ? AND round = 3"
            db.execute("DELETE FROM head_to_head WHERE id = ?", (row["id"],))
            db.execute(
                f"DELETE FROM replies WHERE request_id IN (SELECT id FROM requests WHERE {where})", asked
            )
            db.execute(f"DELETE FROM requests WHERE {where}", asked)
        db.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", (run_id,))
        db.commit()
        newest = db.execute("SELECT MAX(id) FROM requests").fetchone()[0]
    review = cli("review", "--resume", run_id, "--out", str(runs_dir))
    assert review.code == 2 and f"panel rank --resume {run_id}" in review.err
    again = cli("rank", "--resume", run_id, "--out", str(runs_dir), "--no-cache", "--progress", "quiet")
    assert again.code == 0, again.err
    _, after = _board(runs_dir)
    with Store(runs_dir, readonly=True) as store:
        sent = store.db.execute("SELECT COUNT(*) FROM requests WHERE id > ?", (newest,)).fetchone()[0]
        assert sent == 5  # the 5 missing asks, and no other
        assert len(store.head_to_heads(run_id)) == before.asks
        assert store.get_run(run_id).status == "done"  # type: ignore[union-attr]
    assert after.pairs_asked == before.pairs_asked and after.asks == before.asks


def test_rank_through_the_loopback_provider_finds_its_planted_order(
    cli: Any, runs_dir: Path, fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url("openai"))
    tools = ["ollama", "vllm", "llama-cpp", "tesseract", "paligemma"]
    personas = ["-p", "builder", "-p", "skeptic", "-p", "futurist", "-p", "business_analyst"]
    out = cli("rank", "--tools", ",".join(tools), "-b", "openai:gpt-4.1-mini", *personas,
              "--out", str(runs_dir), "--progress", "quiet")  # fmt: skip
    assert out.code == 0, out.err
    _, board = _board(runs_dir)
    assert fake.stats()["requests"] == board.asks == board.pairs_asked * 2 * 4
    assert board.cost_usd is not None and board.cost_usd > 0  # a priced member: the asks' cost
    planted = sorted(tools, key=planted_strength, reverse=True)
    assert board.tools[0].tool_id == planted[0]
    assert board.judgements.consistent > board.judgements.ties  # planted strengths, not coin tosses


def test_panel_runs_lists_a_ranking_by_its_asks_not_as_reviews_missing(cli: Any, runs_dir: Path) -> None:
    out = cli("rank", "--tools", "ollama,vllm,llama-cpp", "-b", "fake", "-p", "builder",
              "--out", str(runs_dir), "--progress", "quiet")  # fmt: skip
    assert out.code == 0, out.err
    run_id, board = _board(runs_dir)
    listed = cli("runs", "--out", str(runs_dir))
    (line,) = [x for x in listed.out.splitlines() if x.startswith(run_id)]
    assert f"ranking: {board.asks} head-to-head asks stored" in line and "of 3 stored" not in line
    as_json = cli("runs", "--out", str(runs_dir), "--json")
    (row,) = json.loads(as_json.out)
    assert (row["reviews"], row["planned"]) == (0, 0)  # no review was planned, none is missing


def test_a_cost_budget_stops_the_ranking_before_going_over(
    cli: Any, runs_dir: Path, fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url("openai"))
    out = cli("rank", "--category", "Developer Tools", "-b", "openai:gpt-4.1-mini", "-p", "builder",
              "--budget", "$0.002", "--out", str(runs_dir))  # fmt: skip
    assert out.code == 3, out.err
    assert "stops before spending more than $0.002" in out.err and "--resume" in out.err
    run_id, board = _board(runs_dir)
    assert board.stopped == "budget" and board.budget == "$0.002"
    assert board.cost_usd is not None and board.cost_usd <= 0.002 and board.pairs_asked < 29
    with Store(runs_dir, readonly=True) as store:
        assert store.get_run(run_id).status == "stopped"  # type: ignore[union-attr]


def test_an_interrupted_ranking_writes_its_board_so_far_and_resumes(
    cli: Any, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import panel.run.ranking as ranking

    real = ranking.run_head_to_head
    rounds: list[int] = []

    async def ctrl_c_in_round_two(*args: Any, **kwargs: Any) -> Any:
        rounds.append(1)
        if len(rounds) == 2:
            raise KeyboardInterrupt
        return await real(*args, **kwargs)

    monkeypatch.setattr(ranking, "run_head_to_head", ctrl_c_in_round_two)
    out = cli(*_RANK, "--out", str(runs_dir))
    assert out.code == 130 and "panel rank --resume" in out.err
    run_id, board = _board(runs_dir)
    assert board.stopped == "interrupted" and board.pairs_asked == 9  # the first round's cycle
    with Store(runs_dir, readonly=True) as store:
        assert store.get_run(run_id).status == "interrupted"  # type: ignore[union-attr]
    monkeypatch.setattr(ranking, "run_head_to_head", real)
    again = cli("rank", "--resume", run_id, "--out", str(runs_dir), "--progress", "quiet")
    assert again.code == 0, again.err
    _, after = _board(runs_dir)
    assert after.stopped in ("budget", "settled", "all-pairs") and after.pairs_asked > 9


def test_a_member_priced_at_zero_has_no_cost_estimated_nor_reported(
    cli: Any, runs_dir: Path, tmp_path: Path
) -> None:
    # as the embedded model is priced in prices.toml: it charges nothing, so no "$0.0000"
    config = tmp_path / "panel.toml"
    config.write_text('[[members]]\nspec = "fake"\nprice_input = 0\nprice_output = 0\n', encoding="utf-8")
    out = cli("rank", "--tools", "ollama,vllm,llama-cpp", "--config", str(config), "-p", "builder",
              "--out", str(runs_dir))  # fmt: skip
    assert out.code == 0, out.err
    (line,) = [x for x in out.err.splitlines() if x.startswith("rank: ")]
    assert "$" not in line, line
    _, board = _board(runs_dir)
    assert board.cost_usd is None


def test_a_ranking_shows_each_rounds_asks_as_they_are_answered(cli: Any, runs_dir: Path) -> None:
    # a round of a 200-tool ranking is hundreds of asks: progress per ask, not only per round
    out = cli(*_RANK, "--budget", "15 pairs", "--out", str(runs_dir))
    assert out.code == 0, out.err
    rounds = [line for line in out.err.splitlines() if line.startswith("round ")]
    asks = [line for line in out.err.splitlines() if line.startswith("head-to-head ")]
    done_total = [tuple(map(int, line.split()[1].split("/"))) for line in asks]
    assert len(rounds) >= 2 and len(asks) > 2 * len(rounds)
    assert all(done <= total for done, total in done_total)  # a later round counts its own asks
    assert sum(1 for done, total in done_total if done == total) == len(rounds) - 1  # each round ends


def test_panel_show_of_a_ranking_prints_its_board(cli: Any, runs_dir: Path) -> None:
    out = cli(*_RANK, "--budget", "12 pairs", "--out", str(runs_dir), "--progress", "quiet")
    assert out.code == 0, out.err
    run_id, board = _board(runs_dir)
    shown = cli("show", run_id, "--out", str(runs_dir))
    assert shown.code == 0, shown.err
    assert shown.out.splitlines()[0] == board.title and f"1. {board.tools[0].name}" in shown.out
    assert str(runs_dir / run_id / "leaderboard.json") in shown.out
    assert "scorecard" not in shown.out and "panel review --resume" not in shown.err  # not a comparison


def test_a_pair_no_member_may_judge_is_not_counted_against_the_cap(cli: Any, tmp_path: Path) -> None:
    # `a` recuses from Acme's tools, `b` from Beta's: no one may judge an Acme tool against a
    # Beta tool (4 of the 15 pairs)
    from .test_makers import _catalog, _toml

    makers = {"acme-one": "Acme", "acme-two": "Acme", "beta-one": "Beta", "beta-two": "Beta"}
    ids = [*makers, "five", "six"]
    catalog = _catalog(tmp_path, {t: makers.get(t) for t in ids})
    config = _toml(
        tmp_path,
        '[[members]]\nspec = "fake"\nname = "a"\nmaker = "Acme"\nrecuse = "maker"\n'
        '[[members]]\nspec = "fake"\nname = "b"\nmaker = "Beta"\nrecuse = "maker"\n',
    )
    runs = tmp_path / "runs"
    out = cli("rank", "--tools", ",".join(ids), "--catalog", str(catalog), "--config", str(config),
              "-p", "builder", "--out", str(runs))  # fmt: skip
    assert out.code == 0, out.err
    assert "at most 11 of 15 pairs (every pair a judge may answer)" in out.err  # not 15, not N log2 N
    _, board = _board(runs)
    assert board.stopped in ("settled", "all-pairs") and board.pairs_asked <= 11
    for t in board.tools:  # every tool judged
        assert t.wins + t.losses + t.ties > 0


def test_resume_last_finds_the_newest_unfinished_run_of_its_own_command(cli: Any, runs_dir: Path) -> None:
    def interrupted(*args: str) -> str:
        out = cli(*args, "--out", str(runs_dir), "--progress", "quiet")
        assert out.code == 0, out.err
        with Store(runs_dir) as store:
            ((run, _, _), *_) = store.list_runs()
            store.db.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", (run.id,))
            store.db.commit()
        return run.id

    ranking = interrupted("rank", "--tools", "ollama,vllm,llama-cpp", "-b", "fake", "-p", "builder")
    review = interrupted("compare", "ollama", "vllm", "-b", "fake", "-p", "builder")
    # the newest unfinished run is a comparison: `panel rank --resume last` finishes the ranking
    again = cli("rank", "--resume", "last", "--out", str(runs_dir), "--progress", "quiet")
    assert again.code == 0, again.err
    newer = interrupted("rank", "--tools", "ollama,vllm,llama-cpp", "-b", "fake", "-p", "skeptic")
    # and the newest is now a ranking: `panel review --resume last` finishes the comparison
    finished = cli("review", "--resume", "last", "--out", str(runs_dir), "--progress", "quiet")
    assert finished.code == 0, finished.err
    with Store(runs_dir, readonly=True) as store:
        status = {rid: store.get_run(rid).status for rid in (ranking, review, newer)}  # type: ignore[union-attr]
    assert status == {ranking: "done", review: "done", newer: "interrupted"}


def test_a_pairs_budget_too_small_to_reach_every_tool_is_said_before_any_ask(
    cli: Any, runs_dir: Path
) -> None:
    out = cli(*_RANK, "--budget", "5 pairs", "--out", str(runs_dir), "--progress", "quiet")
    assert out.code == 0, out.err
    assert "warning: 5 pairs leave 3 of the 9 tools with no judgement" in out.err
    _, board = _board(runs_dir)
    assert sum(t.wins + t.losses + t.ties + t.failed == 0 for t in board.tools) == 3


def test_a_resumed_rankings_estimate_is_what_is_left(cli: Any, runs_dir: Path) -> None:
    out = cli(*_RANK, "--budget", "20 pairs", "--out", str(runs_dir), "--progress", "quiet")
    assert out.code == 0, out.err
    run_id, board = _board(runs_dir)
    with Store(runs_dir) as store:  # as if it stopped there, 3 asks of a pair begun unanswered
        db = store.db
        for (row_id,) in db.execute("SELECT id FROM head_to_head ORDER BY id DESC LIMIT 3").fetchall():
            db.execute("DELETE FROM head_to_head WHERE id = ?", (row_id,))
        db.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", (run_id,))
        db.commit()
    again = cli("rank", "--resume", run_id, "--out", str(runs_dir))
    assert again.code == 0, again.err
    left = 20 - board.pairs_asked
    (line,) = [x for x in again.err.splitlines() if x.startswith("rank: ")]
    assert f"at most {left} more (of 20; {board.pairs_asked} asked) of 36 pairs" in line, line
    assert f", {left * 2 * 2 + 3} asks" in line, line  # the pairs left, and the 3 orders unanswered


def test_the_cli_starts_without_the_rankings_libraries() -> None:
    # `panel rank` needs numpy and choix (the analysis extra); every other command starts
    # without them (an install without the extra, and the CLI's memory cap in test_inputs).
    import subprocess
    import sys

    script = "import sys\nimport panel.cli\nprint(sorted({'numpy', 'choix', 'scipy'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_rank_without_the_analysis_extra_says_so_in_one_line(
    cli: Any, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_module(monkeypatch, "choix")
    out = cli("rank", "--tools", "ollama,vllm", "-b", "fake", "--out", str(runs_dir))
    assert out.code == 2
    (line,) = out.err.strip().splitlines()
    assert (
        line.startswith("error: panel rank needs the Python package 'choix'")
        and "toolpanel[analysis]" in line
    )
    assert not runs_dir.exists()
