"""Every page reads on a phone (390 px) and on a desktop (1280 px), measured in a real browser
(headless chromium through Selenium): no table reaches past the page unless it scrolls inside
its own box, and a box that scrolls shows a cue (a shadow at the edge with more); a share such
as "100%" stays on one line; the runs list fits its box (a card per run on a phone); plots fit
the width.

With `PANEL_SCREENSHOTS=DIR` set, the walk through the app's pages also saves the guide's
screenshots of them into DIR (with tests/test_view_walk.py, which saves the runs list, the
edited review and the new-tool form with its error).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from panel.report.leaderboard_file import Leaderboard
from panel.report.leaderboard_render import leaderboard_html, write_leaderboard_pages
from panel.report.load import load_record
from panel.report.publish import publish
from panel.report.record import ComparisonRecord
from panel.report.render import render_html
from panel.store import CellKey, Store
from panel.view.app import create_app

from .browser import TIMEOUT_S, chrome, full_page_screenshot, needs_browser, serve
from .conftest import EXAMPLE_CATALOG
from .leaderboard_board import hostile_board, sample_board
from .test_leaderboard_pages import HOSTILE
from .view_store import INJECTED_NAME, build_store, run_ids

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = needs_browser

SHOTS = os.environ.get("PANEL_SCREENSHOTS")

# What a reader would see go wrong, measured from the element boxes: the page's width and how
# far it scrolls; each table's right edge, the box it scrolls in (if any), whether that box
# has more to show and a gradient to say so; the lines each share value takes.
_MEASURE = """
const width = document.documentElement.clientWidth;
const box = (el) => {
  for (let up = el.parentElement; up; up = up.parentElement) {
    const o = getComputedStyle(up).overflowX;
    if (o === "auto" || o === "scroll") return up;
  }
  return null;
};
const tables = [...document.querySelectorAll("table")].map((t) => {
  const b = box(t);
  return {
    table: t.className, right: t.getBoundingClientRect().right,
    box: b ? b.getBoundingClientRect().right : null,
    scrolls: b ? b.scrollWidth > b.clientWidth + 1 : false,
    cue: b ? getComputedStyle(b).backgroundImage.includes("gradient") : false,
  };
});
const lines = (el) => {
  const range = document.createRange();
  range.selectNodeContents(el);
  return new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top))).size;
};
const values = [...document.querySelectorAll(".bar-value, .scoreline .value, .figure .big")]
  .map((el) => [el.textContent.trim(), lines(el)]);
const plots = [...document.querySelectorAll("img")].map((i) => i.getBoundingClientRect().right);
return {width, scroll: document.documentElement.scrollWidth, tables, values, plots};
"""


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("phone"))


@pytest.fixture(scope="module", params=[390, 1280])
def driver(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    with chrome(tmp_path_factory.mktemp("chrome"), width=request.param) as opened:
        yield opened


def _measure(driver: WebDriver, url: str) -> dict[str, Any]:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, TIMEOUT_S).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )
    measured: dict[str, Any] = driver.execute_script(_MEASURE)
    assert measured["width"] == driver.get_window_size()["width"], (
        "the page was not laid out at the window's width"
    )
    return measured


def _shot(driver: WebDriver, name: str, scroll_to: str | None = None) -> None:
    """The guide's screenshot of this page at the window's width (only with PANEL_SCREENSHOTS):
    the whole page, or the window from the element `scroll_to` down."""
    if not SHOTS:
        return
    size = driver.get_window_size()
    path = Path(SHOTS) / f"{name}_{size['width']}.png"
    if scroll_to is None:
        full_page_screenshot(driver, path)
        driver.set_window_size(size["width"], size["height"])
    else:
        driver.execute_script(f"document.querySelector({scroll_to!r}).scrollIntoView({{block: 'start'}})")
        path.parent.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(path)), path


def _reads(measured: dict[str, Any]) -> None:
    """Nothing pushes the page sideways; a table wider than the page scrolls in its box, with a cue."""
    width = measured["width"]
    assert measured["scroll"] <= width, measured
    for t in measured["tables"]:
        assert t["right"] <= width + 0.5 or (t["box"] is not None and t["box"] <= width + 0.5), t
        assert t["cue"] or not t["scrolls"], f"a table scrolls in its box with nothing to say so: {t}"
    assert all(right <= width + 0.5 for right in measured["plots"]), measured["plots"]


def _full_shares(record: ComparisonRecord) -> ComparisonRecord:
    """The record with every share at 100%: the widest a share's figure gets."""
    tools = [t.model_copy(update={"panel": t.panel.model_copy(update={"pct": 100.0, "display": "100%"})})
             for t in record.tools]  # fmt: skip
    cvp = [
        c.model_copy(update={"panel_pct": 100.0, "community_pct": 100.0}) for c in record.community_vs_panel
    ]
    return record.model_copy(update={"tools": tools, "community_vs_panel": cvp})


def test_the_published_page_keeps_each_share_on_one_line(
    driver: WebDriver, store_dir: Path, tmp_path: Path
) -> None:
    with Store(store_dir, readonly=True) as store:
        record = _full_shares(load_record(store, run_ids(store_dir)["hostile"]))
    page = tmp_path / "comparison.html"
    page.write_text(render_html(record, how_made=True), encoding="utf-8")
    measured = _measure(driver, page.as_uri())
    _reads(measured)
    hundreds = [lines for text, lines in measured["values"] if text == "100%"]
    assert (
        len(hundreds) >= 6
    )  # two tools: the card's figure, the headline's bar, two bars in community vs panel
    assert hundreds == [1] * len(hundreds), measured["values"]


def test_the_apps_pages_read_at_this_width(driver: WebDriver, store_dir: Path) -> None:
    ids = run_ids(store_dir)
    with serve(create_app(store_dir, token=None)) as base:
        runs = _measure(driver, f"{base}/")
        _reads(runs)
        (listing,) = [t for t in runs["tables"] if "runs" in t["table"]]
        assert not listing["scrolls"], "the runs list hides columns behind a sideways scroll"
        _reads(_measure(driver, f"{base}/tools/new"))
        _reads(_measure(driver, f"{base}/runs/{ids['review']}"))
        _shot(driver, "view_review_run")
        # moondream2 was in the stopped compare run too: its page lists a verdict history of two.
        tool = _measure(driver, f"{base}/runs/{ids['review']}/tools/moondream2")
        _reads(tool)
        assert len(driver.find_elements("css selector", "#history .history-run")) == 2
        _reads(_measure(driver, f"{base}/runs/{ids['hostile']}"))
        _shot(driver, "view_comparison", scroll_to="body")
        agreement = _measure(driver, f"{base}/runs/{ids['hostile']}/agreement?reference=community")
        _reads(agreement)
        assert len(agreement["plots"]) >= 2 and len(agreement["tables"]) >= 2
        _shot(driver, "view_agreement", scroll_to="main .section:has(.plot)")


def test_the_published_page_reads_at_this_width(driver: WebDriver, store_dir: Path, tmp_path: Path) -> None:
    with Store(store_dir) as store:
        publish(store, run_ids(store_dir)["hostile"], tmp_path, allow_unapproved=True, editor="Ana")
    page = (tmp_path / "comparison.html").read_text(encoding="utf-8")
    assert "Structure:" not in page and "How this page was made" not in page
    _reads(_measure(driver, (tmp_path / "comparison.html").as_uri()))
    _shot(driver, "published_page", scroll_to="#community")


#: the triage run's panels, one a tool in turn: unanimous, 3 of 4, split, a failed review
_PANELS: list[list[str | None]] = [
    ["ship", "ship", "ship", "ship", "ship", "ship", "ship", "ship"],
    ["ship", "skip", "ship", "skip", "ship", "skip", "ship", "skip"],
    ["ship", "ship", "ship", "skip", "ship", "ship", "ship", "ship"],
    ["skip", "skip", "skip", "skip", "skip", "skip", "skip", "ship"],
    ["ship", "ship", "skip", "skip", "ship", None, "skip", "ship"],
]


def _triage_run(runs: Path) -> tuple[str, int]:
    """A done review run of the sample catalog's tools (and one with a hostile name) on four
    personas x two members, panels from unanimous to split, one tool labelled by an editor."""
    tools = yaml.safe_load(EXAMPLE_CATALOG.read_text(encoding="utf-8"))["tools"][:11]
    tools.append(dict(tools[0], id="hostile", name=INJECTED_NAME))
    personas = ["builder", "skeptic", "futurist", "business_analyst"]
    judges = [(p, m) for m in ("fake:a", "fake:b") for p in personas]
    run_id = "20261206-review"
    with Store(runs) as store:
        store.create_run(run_id, "panel review", None, {"members": ["fake:a", "fake:b"], "kind": "review"},
                         tools=[(t["id"], "fp", t) for t in tools],
                         personas=[(p, "v", {"id": p}) for p in personas])  # fmt: skip
        for i, tool in enumerate(tools):
            for (persona, member), verdict in zip(judges, _PANELS[i % len(_PANELS)], strict=True):
                store.save_review(
                    run_id, CellKey(tool["id"], persona, member), "fake", member.split(":")[1],
                    data={"verdict": verdict} if verdict else None, error=None if verdict else "failed",
                    raw_reply=None, request_id=None, asks=1,
                )  # fmt: skip
        store.finish_run(run_id, "done")
        store.approve(run_id, CellKey(tools[1]["id"], "builder", "fake:a"), editor="Ana")
    return run_id, len(tools)


def test_the_triage_page_reads_at_this_width(driver: WebDriver, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    run_id, count = _triage_run(runs)
    with serve(create_app(runs, token=None)) as base:
        measured = _measure(driver, f"{base}/runs/{run_id}/triage")
        _reads(measured)
        (listing,) = [t for t in measured["tables"] if "triage" in t["table"]]
        if measured["width"] < 480:
            assert not listing["scrolls"], "the triage list hides columns behind a sideways scroll"
        rows = driver.find_elements("css selector", "table.triage tbody tr")
        assert len(rows) == count and len(driver.find_elements("css selector", "tr.labelled")) == 1
        assert (
            driver.title != "pwned"
            and INJECTED_NAME in driver.find_element("css selector", "table.triage").text
        )
        _shot(driver, "view_triage")


def _ranked_run(runs: Path, board: Leaderboard) -> str:
    """A done run of the board's tools with the board and its pages in the run's folder, as
    `panel rank` leaves them."""
    tools = yaml.safe_load(EXAMPLE_CATALOG.read_text(encoding="utf-8"))["tools"]
    ranked = {t.tool_id for t in board.tools}
    with Store(runs) as store:
        store.create_run(
            board.run_id,
            "panel rank --category 'Developer Tools'",
            None,
            {"members": sorted({j.member for j in board.judges}), "kind": "rank"},
            tools=[(t["id"], "fp", t) for t in tools if t["id"] in ranked],
            personas=[(p, "v", {"id": p}) for p in sorted({j.persona_id for j in board.judges})],
        )
        store.finish_run(board.run_id, "done")
        folder = store.run_dir(board.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "leaderboard.json").write_text(board.model_dump_json(indent=2), encoding="utf-8")
    write_leaderboard_pages(board, folder)
    return board.run_id


def test_the_leaderboard_reads_at_this_width(driver: WebDriver, tmp_path: Path) -> None:
    board = sample_board()
    run_id = _ranked_run(tmp_path / "runs", board)
    page = tmp_path / "runs" / run_id / "leaderboard.html"
    narrow = driver.get_window_size()["width"] < 480
    with serve(create_app(tmp_path / "runs", token=None)) as base:
        app_page = f"{base}/runs/{run_id}/leaderboard"
        # the app's page whole; the file from its ranking down, as the guide shows the published page
        pages = ((app_page, "view_leaderboard", None), (page.as_uri(), "leaderboard_page", "#ranking"))
        for url, shot, start in pages:
            measured = _measure(driver, url)
            _reads(measured)
            tables = {t["table"]: t for t in measured["tables"]}
            assert set(tables) == {"grid leaderboard", "grid lb-judges"}, tables
            if narrow:  # on a phone each row is a small grid: nothing hides behind a sideways scroll
                assert not any(t["scrolls"] for t in tables.values()), tables
            rows = driver.find_elements("css selector", "table.leaderboard tbody tr")
            assert [r.find_element("css selector", "th").text.split("\n")[0] for r in rows] == [
                t.name for t in board.tools
            ]
            tracks = {round(e.rect["width"]) for e in driver.find_elements("css selector", ".lb-track")}
            assert len(tracks) == 1 and tracks.pop() > 80, "the bars do not share one scale"
            _shot(driver, shot, scroll_to=start)
    # a long hostile name wraps inside its row, and stays text
    hostile = hostile_board(HOSTILE + " averyveryverylongtoolnamewithoutanyspaceinitatall")
    other = tmp_path / "hostile.html"
    other.write_text(leaderboard_html(hostile), encoding="utf-8")
    measured = _measure(driver, other.as_uri())
    _reads(measured)
    assert driver.title != "pwned"
    if narrow:
        assert not any(t["scrolls"] for t in measured["tables"]), measured["tables"]
