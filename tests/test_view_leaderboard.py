"""The app's leaderboard page, `/runs/{id}/leaderboard`: the board `panel rank` wrote into the
run's folder, drawn as the file draws it (bars as classes, no inline style); a run without
one is a 404, a file that is not a leaderboard an error page naming it (no traceback); the run
page links to it only when it exists; the app's host, token and header checks apply."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from panel.store import Store
from panel.view.app import create_app
from panel.view.security import CSP

from .leaderboard_board import hostile_board, sample_board
from .test_leaderboard_pages import HOSTILE
from .test_view import BASE
from .view_store import build_store, run_ids


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("leaderboard_view"))


@pytest.fixture
def client(store_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(store_dir, token=None, port=8765), base_url=BASE) as opened:
        yield opened


def _board_file(store_dir: Path, run_id: str) -> Path:
    with Store(store_dir, readonly=True) as store:
        folder = store.run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "leaderboard.json"


@pytest.fixture
def ranked(store_dir: Path) -> Iterator[str]:
    """The review run, with a leaderboard.json beside its files (removed after the test)."""
    run_id = run_ids(store_dir)["review"]
    path = _board_file(store_dir, run_id)
    path.write_text(
        sample_board().model_copy(update={"run_id": run_id}).model_dump_json(indent=2), encoding="utf-8"
    )
    yield run_id
    path.unlink(missing_ok=True)


def test_the_page_shows_the_board(client: TestClient, ranked: str) -> None:
    board = sample_board()
    page = client.get(f"/runs/{ranked}/leaderboard")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CSP
    for t in board.tools:
        assert f'<th scope="row">{t.name}<span class="sub">{t.tool_id}</span></th>' in page.text
    assert f"<strong>{board.judgements.ties} ties</strong>" in page.text
    assert f"<strong>{board.judgements.failed} failed</strong>" in page.text
    assert 'class="lb-few">too few' in page.text
    # the view's CSP forbids inline style: every bar's width is a class its stylesheet has
    assert "style=" not in page.text
    widths = set(re.findall(r'class="lb-(?:gap|range lb-left|range lb-right) (w-\d+)"', page.text))
    assert len(widths) > 3
    css = client.get("/static/comparison.css").text
    assert all(f".{w} {{ width: " in css for w in widths)
    ours = client.get("/static/leaderboard.css")
    assert ours.status_code == 200 and ".lb-track" in ours.text
    assert f'href="/runs/{ranked}">Run' in page.text and 'href="/static/leaderboard.css"' in page.text


def test_the_run_page_links_to_the_board_only_when_there_is_one(
    client: TestClient, store_dir: Path, ranked: str
) -> None:
    link = f'href="/runs/{ranked}/leaderboard"'
    assert link in client.get(f"/runs/{ranked}").text
    _board_file(store_dir, ranked).unlink()
    assert link not in client.get(f"/runs/{ranked}").text
    compare = run_ids(store_dir)["hostile"]
    assert f'href="/runs/{compare}/leaderboard"' not in client.get(f"/runs/{compare}").text
    path = _board_file(store_dir, compare)
    path.write_text(sample_board().model_dump_json(), encoding="utf-8")
    try:
        assert f'href="/runs/{compare}/leaderboard">Leaderboard</a>' in client.get(f"/runs/{compare}").text
    finally:
        path.unlink()


def test_without_a_board_or_a_run_the_page_is_a_404(client: TestClient, store_dir: Path) -> None:
    run_id = run_ids(store_dir)["stopped"]
    missing = client.get(f"/runs/{run_id}/leaderboard")
    assert missing.status_code == 404
    assert f"Run &#39;{run_id}&#39; has no leaderboard" in missing.text and "Not found" in missing.text
    assert client.get("/runs/nope/leaderboard").status_code == 404
    # a run id that climbs out of the runs folder is no run
    assert client.get("/runs/%2E%2E/leaderboard").status_code == 404


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"version": "1.0", "run_id": ', "JSON syntax error"),
        ('{"version": "1.0"}', "not a leaderboard: field &#39;run_id&#39;"),
        ("\udcff", "not UTF-8 text"),
    ],
)
def test_a_corrupt_board_is_an_error_page_naming_the_file(
    client: TestClient, store_dir: Path, ranked: str, text: str, says: str
) -> None:
    path = _board_file(store_dir, ranked)
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    page = client.get(f"/runs/{ranked}/leaderboard")
    assert page.status_code == 500
    assert f"The leaderboard of run &#39;{ranked}&#39; cannot be shown:" in page.text
    assert "leaderboard.json" in page.text and says in page.text
    assert "Traceback" not in page.text and page.headers["content-security-policy"] == CSP


def test_a_board_with_nan_is_the_error_page(client: TestClient, store_dir: Path, ranked: str) -> None:
    path = _board_file(store_dir, ranked)
    text = sample_board().model_copy(update={"run_id": ranked}).model_dump_json()
    path.write_text(re.sub(r'"strength":[^,]+', '"strength":NaN', text, count=1), encoding="utf-8")
    page = client.get(f"/runs/{ranked}/leaderboard")
    assert page.status_code == 500 and "nan" not in page.text.lower().replace("finite", "")
    assert "field &#39;tools.0.strength&#39;: Input should be a finite number" in page.text


def test_another_runs_board_is_an_error_page_naming_that_run(
    client: TestClient, store_dir: Path, ranked: str
) -> None:
    # a board copied from another run's folder: its run_id is that run's
    other = run_ids(store_dir)["hostile"]
    board = sample_board().model_copy(update={"run_id": other})
    _board_file(store_dir, ranked).write_text(board.model_dump_json(), encoding="utf-8")
    page = client.get(f"/runs/{ranked}/leaderboard")
    assert page.status_code == 500 and board.tools[0].name not in page.text
    assert f"The leaderboard of run &#39;{ranked}&#39; cannot be shown:" in page.text
    assert f"leaderboard.json belongs to run &#39;{other}&#39;." in page.text


def test_hostile_names_on_the_board_are_only_text(client: TestClient, store_dir: Path, ranked: str) -> None:
    board = hostile_board(HOSTILE).model_copy(update={"run_id": ranked})
    _board_file(store_dir, ranked).write_text(board.model_dump_json(), encoding="utf-8")
    page = client.get(f"/runs/{ranked}/leaderboard")
    assert page.status_code == 200
    assert "<script" not in page.text and "\u202e" not in page.text
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt; | x |" in page.text


def test_the_apps_checks_guard_the_page(store_dir: Path, ranked: str) -> None:
    app = create_app(store_dir, token="s3cret-token", port=8765)
    base = app.guard.base  # type: ignore[attr-defined]
    bearer = {"authorization": "Bearer s3cret-token"}
    with TestClient(app, base_url=BASE) as test_client:
        responses = [
            test_client.get(f"/runs/{ranked}/leaderboard"),  # no token
            test_client.get(f"{base}/runs/{ranked}/leaderboard"),  # the base path alone is no key
            test_client.get(f"/runs/{ranked}/leaderboard", headers={"authorization": "Bearer wrong"}),
            test_client.get(f"/runs/{ranked}/leaderboard", headers={**bearer, "host": "evil.example:8765"}),
            test_client.get(f"/runs/{ranked}/leaderboard", headers=bearer),
            test_client.post(f"/runs/{ranked}/leaderboard", headers=bearer),
        ]
    assert [r.status_code for r in responses] == [401, 401, 403, 403, 200, 405]
    assert sample_board().tools[0].name not in "".join(r.text for r in responses[:4])
    for response in responses:
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["x-frame-options"] == "DENY"
