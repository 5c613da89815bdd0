"""A tool's page in `panel view` shows its verdict in every run that reviewed it, with the
reasons each change had, escaped, as a list that reads at phone width."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from panel.store import Store
from panel.view.app import create_app

from .why_runs import Inputs, make_run

BASE = "http://127.0.0.1:8765"
RUNS = (
    "20260101-000000-aaaaaa",
    "20260102-000000-bbbbbb",
    "20260103-000000-cccccc",
    "20260104-000000-dddddd",
)


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four runs of t0 and t1: the second edits t0's tagline and t0 flips to skip; the third
    changes nothing and t0 flips back (noise); the fourth replaces the model and gives a
    hostile persona version, and t1 (only) flips."""
    runs = tmp_path_factory.mktemp("history") / "runs"
    runs.mkdir()
    first = Inputs()
    edited = first.copy()
    edited.tools["t0"]["tagline"] = "a new tagline"
    replaced = edited.copy()
    replaced.members = {"openai:gpt-x": replaced.members["openai:gpt-y"]}
    replaced.personas["builder"] = ("<script>alert(1)</script>", replaced.personas["builder"][1])
    skip_t0 = {("t0", "builder"): "skip", ("t0", "skeptic"): "skip"}
    with Store(runs) as store:
        make_run(store, RUNS[0], first)
        make_run(store, RUNS[1], edited, skip_t0)
        make_run(store, RUNS[2], edited)
        make_run(store, RUNS[3], replaced, {("t1", "builder"): "skip", ("t1", "skeptic"): "skip"})
    return runs


@pytest.fixture
def client(store_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(store_dir, token=None, port=8765), base_url=BASE) as test_client:
        yield test_client


def _items(html: str) -> list[str]:
    section = html.split('id="history"', 1)[1].split("</section>", 1)[0]
    return section.split('<li class="history-run')[1:]


def test_the_tool_page_lists_every_run_newest_first_with_the_reasons_of_each_change(
    client: TestClient,
) -> None:
    page = client.get(f"/runs/{RUNS[3]}/tools/t0")
    assert page.status_code == 200
    items = _items(page.text)
    assert [next(r for r in RUNS if r in item) for item in items] == list(reversed(RUNS))
    newest, noise, edited, first = items
    # The newest run is the page's own: no link to itself; the others link to their tool page.
    assert f'href="/runs/{RUNS[3]}/tools/t0"' not in newest
    assert f'href="/runs/{RUNS[2]}/tools/t0"' in noise
    assert "Same verdict as the run before." in newest  # t0 stayed ship though the model changed
    assert ">ship</strong>" in noise and "no change in inputs (noise)" in noise
    assert ">not ship</strong>" in edited and "the tool&#39;s entry changed: tagline" in edited
    assert "0 ship of 2 valid" in edited
    assert "Why it changed" not in first and "Same verdict" not in first


def test_reasons_from_the_store_are_escaped(client: TestClient) -> None:
    page = client.get(f"/runs/{RUNS[3]}/tools/t1")
    assert page.status_code == 200
    newest = _items(page.text)[0]
    assert "openai:gpt-x replaced openai:gpt-y" in newest
    assert "persona builder changed (version 1 → &lt;script&gt;alert(1)&lt;/script&gt;)" in newest
    assert "<script>alert(1)" not in page.text


def test_a_long_history_lists_the_newest_runs_and_counts_the_rest(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("panel.view.pages.HISTORY_SHOWN", 3)
    page = client.get(f"/runs/{RUNS[3]}/tools/t0").text
    items = _items(page)
    assert len(items) == 3 and RUNS[0] not in page.split('id="history"', 1)[1]
    assert "1 earlier run not shown." in page
    # The oldest one listed still says why it moved from the run not shown.
    assert "the tool&#39;s entry changed: tagline" in items[-1]


def test_a_tool_reviewed_once_shows_its_one_run(client: TestClient, store_dir: Path) -> None:
    with Store(store_dir) as store:
        only = Inputs()
        only.tools = {"solo": {**only.tools["t0"], "id": "solo", "name": "Solo"}}
        make_run(store, "20260105-000000-eeeeee", only)
    items = _items(client.get("/runs/20260105-000000-eeeeee/tools/solo").text)
    assert len(items) == 1 and ">ship</strong>" in items[0] and "Why it changed" not in items[0]
