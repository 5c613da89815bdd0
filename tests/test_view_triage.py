"""The app's Triage page: a run's tools in `panel triage`'s order, with the contested-only and
not-labelled filters, pages, links to each tool's page, the editors' labels marked, and
catalog text escaped."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from panel.store import CellKey, Store
from panel.view.app import create_app
from panel.view.triage import PER_PAGE
from tests.factories import store_verdicts

from .test_view import BASE
from .view_store import INJECTED_NAME, build_store, run_ids

TOOLS = 2 * PER_PAGE + 50
_LINK = re.compile(r'<span class="rank">(\d+)</span> <a href="(/runs/[^"/]+/tools/([^"/]+))">')


@pytest.fixture(scope="module")
def view_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("triage_view"))


@pytest.fixture
def big(runs_dir: Path) -> str:
    """A done run of TOOLS tools on four judges: unanimous, 3-1 and 2-2 panels in turn, and
    every seventh tool with a failed review."""
    patterns = [
        ["ship", "ship", "ship", "ship"],
        ["ship", "ship", "ship", "skip"],
        ["ship", "skip", "ship", "skip"],
        ["skip", "skip", "skip", "skip"],
    ]
    columns: list[list[str | None]] = [list(patterns[i % 4]) for i in range(TOOLS)]
    for i in range(0, TOOLS, 7):
        columns[i][0] = None
    verdicts = {
        p: [col[k] for col in columns] for k, p in enumerate(["builder", "skeptic", "futurist", "analyst"])
    }
    with Store(runs_dir) as store:
        store_verdicts(store, "big", verdicts, status="done")
    return "big"


def _client(runs: Path) -> TestClient:
    return TestClient(create_app(runs, token=None, port=8765), base_url=BASE)


@pytest.fixture
def client(runs_dir: Path, big: str) -> Iterator[TestClient]:
    with _client(runs_dir) as opened:
        yield opened


def _shown(html: str) -> list[str]:
    """The tool ids of a triage page, top to bottom."""
    return [tool for _, _, tool in _LINK.findall(html)]


def _cli_order(cli: Any, runs: Path, run_id: str, *extra: str) -> list[dict[str, Any]]:
    result = cli("triage", run_id, "--format", "json", "--out", str(runs), *extra)
    assert result.code == 0, result.err
    rows: list[dict[str, Any]] = json.loads(result.out)["tools"]
    return rows


def test_the_pages_list_the_tools_in_panel_triages_order(
    client: TestClient, cli: Any, runs_dir: Path, big: str
) -> None:
    expected = [r["tool_id"] for r in _cli_order(cli, runs_dir, big)]
    seen: list[str] = []
    for number in (1, 2, 3):
        page = client.get(f"/runs/{big}/triage", params={"page": number})
        assert page.status_code == 200
        assert f"{TOOLS} tools, page {number} of 3" in page.text
        seen += _shown(page.text)
    assert seen == expected
    # ranks run on across pages; the pager links the neighbours; a page past the end is the last
    first, last = client.get(f"/runs/{big}/triage").text, client.get(f"/runs/{big}/triage?page=99").text
    assert len(_shown(first)) == PER_PAGE and _LINK.findall(first)[0][0] == "1"
    assert _shown(last) == expected[2 * PER_PAGE :] and _LINK.findall(last)[0][0] == str(2 * PER_PAGE + 1)
    assert 'rel="next"' in first and 'rel="prev"' not in first
    assert 'rel="prev"' in last and 'rel="next"' not in last


def test_contested_only_keeps_exactly_the_contested_tools(
    client: TestClient, cli: Any, runs_dir: Path, big: str
) -> None:
    rows = _cli_order(cli, runs_dir, big)
    contested = [r["tool_id"] for r in rows if r["contested"]]
    assert 0 < len(contested) < TOOLS
    seen: list[str] = []
    for number in range(1, 4):
        page = client.get(f"/runs/{big}/triage", params={"contested": "1", "page": number}).text
        seen += _shown(page)
        if 'rel="next"' not in page:
            break
        assert "contested=1" in page  # the pager keeps the filter
    assert seen == contested
    assert f"{len(contested)} tools, contested" in page
    assert f"{TOOLS} tools, {len(contested)} contested" in page


def test_a_labelled_tool_is_marked_and_the_rest_are_left(
    client: TestClient, runs_dir: Path, big: str
) -> None:
    before = client.get(f"/runs/{big}/triage").text
    assert "0 of 250</strong>" in before and 'class="labelled"' not in before
    with Store(runs_dir) as store:
        store.approve(big, CellKey("t3", "builder", "a:x"), editor="<i>Ana</i>")
    pages = [client.get(f"/runs/{big}/triage", params={"page": n}).text for n in (1, 2, 3)]
    assert all("1 of 250</strong>" in page and "249 left" in page for page in pages)
    rows = [r for page in pages for r in page.split("<tr")[1:] if '/tools/t3"' in r]
    assert len(rows) == 1 and 'class="labelled"' in rows[0] and "&lt;i&gt;Ana&lt;/i&gt;: skip" in rows[0]
    assert sum(page.count('class="labelled"') for page in pages) == 1
    assert not any("<i>Ana" in page for page in pages)  # the editor's name is data too
    left = []
    for number in range(1, 4):
        left += _shown(client.get(f"/runs/{big}/triage", params={"unlabelled": "1", "page": number}).text)
    assert len(left) == TOOLS - 1 and "t3" not in left


def test_each_tool_links_to_its_review_page(view_dir: Path) -> None:
    review = run_ids(view_dir)["review"]
    with _client(view_dir) as client:
        assert f'href="/runs/{review}/triage"' in client.get(f"/runs/{review}").text
        page = client.get(f"/runs/{review}/triage")
        assert page.status_code == 200
        links = _LINK.findall(page.text)
        assert sorted(tool for _, _, tool in links) == ["mistral-large-3", "moondream2", "smolvlm2-2b"]
        for _, href, tool in links:
            tool_page = client.get(href)
            assert tool_page.status_code == 200 and f"/tools/{tool}" in href
            assert f'href="/runs/{review}/triage">Triage</a>' in tool_page.text  # and back
        hostile = run_ids(view_dir)["hostile"]
        assert f'href="/runs/{hostile}/triage">Triage</a>' in client.get(f"/runs/{hostile}").text


def test_tool_names_and_reasons_are_escaped(view_dir: Path) -> None:
    hostile = run_ids(view_dir)["hostile"]
    with _client(view_dir) as client:
        page = client.get(f"/runs/{hostile}/triage")
    assert page.status_code == 200
    assert INJECTED_NAME not in page.text and "<script>" not in page.text
    assert "&lt;script&gt;document.title=" in page.text
    assert sorted(_shown(page.text)) == ["ollama", "vllm"]


def test_an_unknown_run_is_the_apps_404_page(client: TestClient) -> None:
    page = client.get("/runs/nope/triage")
    assert page.status_code == 404
    assert "There is no run &#39;nope&#39; in this store." in page.text and "Back to the runs" in page.text


HOSTILE_MEMBER = "fake:<img src=x onerror=alert(1)>"


def test_a_reason_naming_a_hostile_member_is_escaped(runs_dir: Path) -> None:
    """60 tools on three good judges and a coin-tossing one on a member named with markup; on
    t0-t9 the good judges split with one review failed, so the weak judge decides and a
    `weak_judge` reason names it."""
    rng = random.Random(1)
    judges = [
        ("builder", "fake:a"),
        ("skeptic", "fake:a"),
        ("futurist", "fake:a"),
        ("builder", HOSTILE_MEMBER),
    ]
    with Store(runs_dir) as store:
        config = {"members": ["fake:a", HOSTILE_MEMBER], "kind": "review"}
        tools = [(f"t{i}", "fp", {"id": f"t{i}", "name": f"T{i}"}) for i in range(60)]
        personas = [(p, "v", {"id": p}) for p in ("builder", "skeptic", "futurist")]
        store.create_run("weak", "panel review", None, config, tools=tools, personas=personas)
        for i in range(60):
            truth = rng.random() < 0.5
            for k, (persona, member) in enumerate(judges):
                said = (truth if rng.random() < 0.92 else not truth) if k < 3 else rng.random() < 0.5
                verdict = ["ship", "skip", None, "ship"][k] if i < 10 else ("ship" if said else "skip")
                store.save_review(
                    "weak", CellKey(f"t{i}", persona, member), "fake", member.split(":", 1)[1],
                    data={"verdict": verdict} if verdict else None, error=None if verdict else "failed",
                    raw_reply=None, request_id=None, asks=1,
                )  # fmt: skip
        store.finish_run("weak", "done")
    with _client(runs_dir) as client:
        page = client.get("/runs/weak/triage", params={"contested": "1"}).text
    assert "60 of 60 tools: Dawid–Skene on 60 tools" in page
    assert "judges of low estimated accuracy: builder on fake:&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<img" not in page


def test_the_review_run_page_lists_its_tools_a_page_at_a_time(client: TestClient, big: str) -> None:
    """The run's own page (catalog order) pages as the triage does: a 10,000-tool run is not
    one page of every tool."""
    seen = []
    for number in (1, 2, 3):
        page = client.get(f"/runs/{big}", params={"page": number}).text
        assert f"{TOOLS} tools reviewed" in page and f"page {number} of 3" in page
        seen += re.findall(rf'<th scope="row"><a href="/runs/{big}/tools/([^"]+)">', page)
    assert seen == [f"t{i}" for i in range(TOOLS)]
    first, past = client.get(f"/runs/{big}").text, client.get(f"/runs/{big}", params={"page": 9}).text
    assert 'rel="next"' in first and 'rel="prev"' not in first
    assert "page 3 of 3" in past and 'rel="prev"' in past and 'rel="next"' not in past
