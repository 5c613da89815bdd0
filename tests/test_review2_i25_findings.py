"""Review 2 of issue 25 (main at 1e51956): reproductions of the findings. Each failing test is
xfail(strict=True) and names its finding; it passes once the finding is fixed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from panel.report.leaderboard_render import leaderboard_html, leaderboard_markdown, read_leaderboard

from .leaderboard_board import sample_board


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


