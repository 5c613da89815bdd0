"""The editor's two paths through `panel view`, clicked in a real browser (headless chromium
through Selenium), on runs the `fake` backend makes:

1. open the token URL the command prints, say who edits (once, in the bar), open a
   comparison, regenerate one review, edit a verdict note, approve all, publish, and find the
   edit and its provenance (the editor's name) in the exported files;
2. add a new tool through the form, first with a bad id (the catalog's own message shows
   beside the field), then valid, follow the draft's live progress and open its page.

With `PANEL_SCREENSHOTS=DIR` set, the walk also saves the README's screenshots into DIR (the
runs list, the comparison with the edited review, the form with its error) at 1280 and 390 px.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from panel.run.plan import RunOptions, plan_compare, plan_run, run_plan
from panel.store import CellKey, Store
from panel.view.app import create_app

from .browser import chrome, full_page_screenshot, needs_browser, serve
from .conftest import EXAMPLE_CATALOG

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

pytestmark = needs_browser

WAIT_S = 60
HOSTILE_NOTE = "<img src=x onerror=\"document.title='pwned'\"> Fine for a single box, <b>not</b> a fleet."
HOSTILE_NAME = "<script>document.title='pwned'</script> Gizmo"
SHOTS = os.environ.get("PANEL_SCREENSHOTS")
WIDTHS = (1280, 390)


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """A runs folder as an editor finds it: a review run of three tools, a compare run stopped
    halfway, and last a finished compare run (ollama vs vllm, builder and skeptic), all fake."""
    folder = tmp_path / "runs"
    with Store(folder) as store:
        plan = plan_run(
            ["smolvlm2-2b", "mistral-large-3", "moondream2"], catalog=EXAMPLE_CATALOG, backends=["fake"]
        )
        asyncio.run(run_plan(plan, store, "panel review", options=RunOptions(kind="review")))
        plan = plan_compare(
            ["smolvlm2-2b", "moondream2"], catalog=EXAMPLE_CATALOG, backends=["fake", "fake:other"]
        )
        stopped, _ = asyncio.run(run_plan(plan, store, "panel compare", options=RunOptions(kind="compare")))
        store.finish_run(stopped, "stopped")
        plan = plan_compare(
            ["ollama", "vllm"], catalog=EXAMPLE_CATALOG, backends=["fake"], persona_ids=["builder", "skeptic"]
        )
        asyncio.run(run_plan(plan, store, "panel compare ollama vllm", options=RunOptions(kind="compare")))
    return folder


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    with chrome(tmp_path / "chrome", width=1280) as driver:
        yield driver


def _wait(driver: WebDriver, css: str) -> WebElement:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    found: WebElement = WebDriverWait(driver, WAIT_S).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, css))
    )
    return found


def _one(driver: WebDriver, css: str) -> WebElement:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def _click(driver: WebDriver, element: WebElement) -> None:
    """Click like a user, after the element is scrolled into the middle of the window."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def _navigate(driver: WebDriver, element: WebElement) -> None:
    """Click something that loads a page, and wait until the old page is gone: a form that
    posts back to the same address would otherwise let the next read see the old page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    _click(driver, element)
    WebDriverWait(driver, WAIT_S).until(ec.staleness_of(old))


def _loaded(driver: WebDriver, path_part: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT_S).until(
        lambda d: path_part in d.current_url and d.execute_script("return document.readyState") == "complete"
    )


def _finish_job(driver: WebDriver) -> None:
    """On a job page, wait for the live page to say done, then follow its link to the run."""
    _loaded(driver, "/jobs/")
    link = _wait(driver, "#job-run")
    assert _one(driver, "#job-state").text.lower() == "done"  # shown in capitals by CSS
    _navigate(driver, link)
    _loaded(driver, "/runs/")


def _shots(driver: WebDriver, name: str, *, scroll_to: WebElement | None = None) -> None:
    """The README's screenshots of this page, at each width (only with PANEL_SCREENSHOTS)."""
    if not SHOTS:
        return
    size = driver.get_window_size()
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        path = Path(SHOTS) / f"view_{name}_{width}.png"
        if scroll_to is None:
            driver.set_window_size(width, 900)
            full_page_screenshot(driver, path)
        else:  # the window around one element: a whole comparison is many screens long
            driver.set_window_size(width, 1000 if width > 500 else 844)
            driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", scroll_to)
            assert driver.save_screenshot(str(path)), path
    driver.set_window_size(size["width"], size["height"])


def _overflow(driver: WebDriver) -> int:
    """How many px the page is wider than the window (0: no sideways scroll)."""
    width = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    return max(0, int(width))


def _not_pwned(driver: WebDriver) -> None:
    assert driver.title != "pwned"  # no injected script ran (a title may show the markup as text)
    inline = driver.execute_script("return [...document.scripts].filter(s => !s.src).length")
    assert inline == 0


def test_the_editor_regenerates_edits_approves_and_publishes(runs: Path, browser: WebDriver) -> None:
    from selenium.webdriver.common.by import By

    with Store(runs, readonly=True) as store:
        (run, _, _), *_ = store.list_runs(1)
        first = store.reviews(run.id)[0]
    key = CellKey(first.tool_id, first.persona_id, first.member, 0)
    app = create_app(runs, token="walk-t0ken")
    prefix = app.guard.base  # type: ignore[attr-defined]
    with serve(app) as origin:
        base = origin + prefix
        browser.get(f"{origin}/?token=walk-t0ken")
        _loaded(browser, base)
        assert "token" not in browser.current_url  # sent on without it
        who = _one(browser, "form.who")
        who.find_element(By.NAME, "editor").send_keys("Ana")
        _navigate(browser, who.find_element(By.CSS_SELECTOR, "button"))
        _loaded(browser, base)
        assert "Editing as Ana" in _one(browser, "nav.viewbar").text
        assert browser.find_elements(By.CSS_SELECTOR, "form.who") == []  # asked once
        _navigate(browser, _one(browser, f'a[href="{prefix}/runs/{run.id}"]'))
        _loaded(browser, f"/runs/{run.id}")
        assert "0 of 4 reviews approved" in _one(browser, "#editor").text

        # Regenerate the first review: a reason, then the job's live page, then back.
        form = _one(browser, "form.regenerate")
        assert form.find_element(By.NAME, "tool").get_attribute("value") == key.tool_id
        form.find_element(By.NAME, "reason").send_keys("too vague about the install")
        _navigate(browser, form.find_element(By.CSS_SELECTOR, "button"))
        _finish_job(browser)
        with Store(runs, readonly=True) as store:
            history = store.review_history(run.id, key)
        assert [h.reason for h in history] == ["too vague about the install"]

        # Edit the verdict note of the same review, with markup in it, as "Ana".
        _navigate(browser, _one(browser, "a.edit-link"))
        _loaded(browser, "/review/edit")
        note = _one(browser, "[name=verdict_note]")
        note.clear()
        note.send_keys(HOSTILE_NOTE)
        assert browser.find_elements(By.NAME, "editor") == []  # the session has the name
        _navigate(browser, _one(browser, ".edit-form button[type=submit]"))
        _loaded(browser, f"/runs/{run.id}")
        edited = _wait(browser, "article.review.is-edited")
        assert HOSTILE_NOTE in edited.text  # shown as the text typed, markup and all
        _not_pwned(browser)
        _shots(browser, "comparison_edited", scroll_to=edited)

        # Approve all, then publish: nothing stands in the way any more.
        _navigate(browser, _one(browser, "form.approve-all button"))
        _loaded(browser, f"/runs/{run.id}")
        assert "4 of 4 reviews approved" in _one(browser, "#editor").text
        _navigate(browser, _one(browser, "a.publish-link"))
        _loaded(browser, "/publish")
        _navigate(browser, _one(browser, ".publish-form button"))
        _wait(browser, ".downloads")
        assert _one(browser, "h1").text == "Published"

    published = runs / run.id / "published"
    record = json.loads((published / "comparison.json").read_text(encoding="utf-8"))
    entries = [e for t in record["tools"] for e in t["scorecard"]]
    (mine,) = [
        e
        for e in entries
        if (e["persona_id"], e["member"]) == (key.persona_id, key.member)
        and e["verdict_note"] == HOSTILE_NOTE
    ]
    assert [m["field"] for m in mine["edited_by_editor"]] == ["verdict_note"]
    provenance = record["provenance"]
    assert provenance["approved"] == 4 and provenance["warnings"] == []
    (reviewed,) = [
        r
        for r in provenance["reviews"]
        if (r["tool_id"], r["persona_id"], r["member"]) == (key.tool_id, key.persona_id, key.member)
    ]
    assert reviewed["edited_fields"] == ["verdict_note"] and reviewed["regenerated"] == 1
    assert reviewed["approved_by"] == "Ana" and provenance["published_by"] == "Ana"
    markdown = (published / "comparison.md").read_text(encoding="utf-8")
    page = (published / "comparison.html").read_text(encoding="utf-8")
    assert "Fine for a single box" in markdown
    assert "&lt;img src=x onerror=" in page and "<img src=x" not in page


def test_a_new_tool_is_refused_beside_its_field_then_drafted_with_live_progress(
    runs: Path, browser: WebDriver
) -> None:
    from selenium.webdriver.support.ui import Select

    # what to type, not the catalog's pattern
    words = "An id is lower-case letters, digits, dots, dashes and underscores"

    app = create_app(runs, token=None, catalog=EXAMPLE_CATALOG, backends=["fake"])
    with serve(app) as base:
        browser.get(f"{base}/")
        _loaded(browser, base)
        _navigate(browser, _one(browser, 'a[href="/tools/new"]'))
        _loaded(browser, "/tools/new")
        fields = {
            "id": "Bad Id!",
            "name": HOSTILE_NAME,
            "category": "Local inference",
            "tagline": "Runs small models on one box.",
            "description": "A command-line runner for quantised models. " + HOSTILE_NOTE,
            "facts": "Single binary\nOpenAI-compatible endpoint",
        }
        for name, value in fields.items():
            _one(browser, f"[name={name}]").send_keys(value)
        Select(_one(browser, "[name=compare]")).select_by_value("vllm")
        _navigate(browser, _one(browser, "form.tool-form button[type=submit]"))
        _loaded(browser, "/tools/new")

        error = _wait(browser, "#error-id")
        field = _one(browser, "#f-id")
        assert error.text.startswith(words) and "(you typed 'Bad Id!')" in error.text
        assert field.get_attribute("aria-invalid") == "true"
        assert field.get_attribute("aria-describedby") == "error-id"
        # beside the field: the message starts within a line's height of the field's bottom
        assert 0 <= error.location["y"] - (field.location["y"] + field.size["height"]) < 60
        assert _one(browser, "[name=name]").get_attribute("value") == HOSTILE_NAME  # kept, as text
        _not_pwned(browser)
        _shots(browser, "new_tool_error")

        field.clear()
        field.send_keys("gizmo")
        _navigate(browser, _one(browser, "form.tool-form button[type=submit]"))
        _loaded(browser, "/jobs/")
        assert _one(browser, "#job-total").text == "8"  # 2 tools x 4 personas x 1 member
        _finish_job(browser)
        assert HOSTILE_NAME in _one(browser, "body").text
        _not_pwned(browser)
        browser.get(f"{base}/")
        _loaded(browser, base)
        assert _one(browser, "caption").text.startswith("4 runs")
        _shots(browser, "runs")
        # on a phone, neither the list nor the form is wider than the screen
        browser.set_window_size(390, 844)
        for path in ("/", "/tools/new"):
            browser.get(f"{base}{path}")
            _loaded(browser, base)
            assert _overflow(browser) == 0, path

    with Store(runs, readonly=True) as store:
        (run, reviews, valid), *_ = store.list_runs(1)
    assert run.status == "done" and reviews == valid == 8
    drafted = json.loads((runs / run.id / "comparison.json").read_text(encoding="utf-8"))
    assert [(t["id"], t["name"]) for t in drafted["tools"]] == [("gizmo", HOSTILE_NAME), ("vllm", "vLLM")]
