"""Review 2 of issue 25 (main at 1e51956): reproductions of the findings. Each failing test is
xfail(strict=True) and names its finding; it passes once the finding is fixed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from panel.report.leaderboard_render import leaderboard_html, leaderboard_markdown, read_leaderboard

from .leaderboard_board import sample_board
from .test_head_to_head_record import _record


@pytest.mark.xfail(
    strict=True,
    reason="R3: leaderboard.json with NaN/Infinity strengths is read as a "
    "leaderboard and drawn as 'nan'/'inf' (the model does not require finite numbers)",
)
@pytest.mark.parametrize("bad", ["NaN", "Infinity", "1e999"])
def test_r3_a_leaderboard_with_a_non_finite_strength_is_refused(tmp_path: Path, bad: str) -> None:
    data = json.loads(sample_board().model_dump_json())
    data["tools"][0]["strength"] = "@@"
    path = tmp_path / "leaderboard.json"
    path.write_text(json.dumps(data).replace('"@@"', bad), encoding="utf-8")
    from panel.errors import UserError

    try:
        board = read_leaderboard(path)
    except UserError:
        return  # refused in one line: what we want
    html, md = leaderboard_html(board), leaderboard_markdown(board)
    assert math.isfinite(board.tools[0].strength)
    assert "nan" not in html.lower() and "inf" not in md.lower()


@pytest.mark.xfail(
    strict=True,
    reason="R5: when every review gives one verdict the entry-length slope "
    "is 0 with interval [0, 0], and the reading says '+0.000 to +0.000 fits them' (a "
    "precise 'no bias' from data in which nothing varies)",
)
def test_r5_a_constant_verdict_is_not_read_as_a_precise_zero(tmp_path: Path) -> None:
    import sqlite3

    from panel.analysis.bias_length import entry_length
    from panel.store import Store
    from panel.testing.bias_runs import Planted, write_run

    run_id = write_run(tmp_path, Planted(tools=25, rebuttal=False))
    with sqlite3.connect(tmp_path / "panel.db") as db:
        db.execute("UPDATE reviews SET verdict = 'ship'")
    with Store(tmp_path, readonly=True) as store:
        m = entry_length(store, [run_id], n_resamples=200)
    assert m.sample is None and m.n_tools == 25  # above its minimum: a figure is given
    # Every verdict is ship: the data cannot tell whether length matters at all.
    assert "0.000 to +0.000" not in m.reading, m.reading


@pytest.mark.xfail(
    strict=True,
    reason="R8: the record's head-to-head summary says every pair was "
    "'asked of N judges' with N all judges seen, though recused members asked some pairs none",
)
def test_r8_the_summary_does_not_claim_every_pair_was_asked_of_every_judge() -> None:
    from panel.report.head_to_head import Answer, section

    def both(member: str, a: str, b: str) -> list[Answer]:
        return [Answer("builder", member, a, b, a), Answer("builder", member, b, a, a)]

    # m3 judged all three pairs; m1 and m2 recused from Ollama's maker: only vLLM v Moondream2.
    answers = (
        both("m3", "ollama", "vllm") + both("m3", "ollama", "moondream2") + both("m3", "vllm", "moondream2")
        + both("m1", "vllm", "moondream2") + both("m2", "vllm", "moondream2")
    )  # fmt: skip
    duels = section(answers, {}, lambda p, m: m)
    assert duels is not None
    assert [len(p.judgements) for p in duels.pairs] == [1, 1, 3]
    assert "each asked of 3 judges" not in duels.summary, duels.summary


@pytest.mark.xfail(
    strict=True,
    reason="R9: the app shows a leaderboard.json whose run_id names another run (copied or "
    "misplaced) as this run's board, without a word",
)
def test_r9_the_app_does_not_show_another_runs_board_as_this_runs(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from panel.store import Store
    from panel.view.app import create_app

    from .test_view import BASE
    from .view_store import build_store, run_ids

    store_dir = build_store(tmp_path)
    ids = run_ids(store_dir)
    here, other = ids["review"], next(v for k, v in ids.items() if k != "review")
    with Store(store_dir, readonly=True) as store:
        folder = store.run_dir(here)
    folder.mkdir(parents=True, exist_ok=True)
    board = sample_board().model_copy(update={"run_id": other})
    (folder / "leaderboard.json").write_text(board.model_dump_json(), encoding="utf-8")
    with TestClient(create_app(store_dir, token=None, port=8765), base_url=BASE) as client:
        page = client.get(f"/runs/{here}/leaderboard")
    assert page.status_code != 200 or other not in page.text, "another run's board shown as this run's"


