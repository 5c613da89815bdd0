"""`panel view` in a real browser (headless chromium through Selenium): hostile catalog text
renders as text and runs nothing, a server bound elsewhere wants its token, and a form whose
CSRF token was tampered with is refused."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from panel.store import Store
from panel.view import data
from panel.view.app import create_app

from .browser import chrome, cookie_recorder, full_page_screenshot, needs_browser, serve
from .view_store import INJECTED_IMG, INJECTED_NAME, build_store, run_ids

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = needs_browser

WAIT_S = 30


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("view-browser"))


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    with chrome(tmp_path_factory.mktemp("chrome"), width=1280) as driver:
        yield driver


def _open(driver: WebDriver, url: str) -> str:
    """Load `url` and wait for its document to be complete; the body's visible text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, WAIT_S).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )
    return str(driver.find_element(By.TAG_NAME, "body").text)


def _scripts(driver: WebDriver) -> list[str]:
    """The `src` of every <script> element ('' for an inline one)."""
    return [str(s) for s in driver.execute_script("return [...document.scripts].map(s => s.src)")]


def _png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


def test_hostile_catalog_text_is_only_text_in_the_browser(
    browser: WebDriver, store_dir: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    run_id = run_ids(store_dir)["hostile"]
    with Store(store_dir, readonly=True) as store:
        title = data.run_record(store, run_id).title
    with serve(create_app(store_dir, token=None)) as base:
        listing = _open(browser, f"{base}/")
        assert browser.title == "Runs · Panel view"
        assert INJECTED_NAME in listing  # the tool's name, shown as it is
        assert run_id in listing
        for script in _scripts(browser):
            assert script.startswith(f"{base}/static/") and script.endswith(".js"), script

        page = _open(browser, f"{base}/runs/{run_id}")
        assert browser.title == f"{title} · Panel view"  # no script set it
        assert "Reviewer scorecard" in page
        assert INJECTED_NAME in page and INJECTED_IMG in page
        assert browser.find_elements(By.CSS_SELECTOR, "img[src='x'], img[onerror]") == []
        for script in _scripts(browser):
            assert script.startswith(f"{base}/static/") and script.endswith(".js"), script
        # the page lays out: its text is in the stylesheet's serif, not the browser's default
        family = browser.execute_script("return getComputedStyle(document.body).fontFamily")
        assert "Georgia" in family or "serif" in family

        shot = full_page_screenshot(browser, tmp_path / "comparison.png")
        height = browser.execute_script("return document.body.scrollHeight")
        assert _png_size(shot)[0] == browser.execute_script("return window.innerWidth")
        assert _png_size(shot)[1] >= min(height, 900) and height > 900  # the whole page, not a window


def test_bound_elsewhere_a_visit_without_the_token_sees_no_run(browser: WebDriver, store_dir: Path) -> None:
    ids = run_ids(store_dir)
    app = create_app(store_dir, token="t0k", host="0.0.0.0")
    prefix = app.guard.base  # type: ignore[attr-defined]
    with serve(app) as base:
        browser.delete_all_cookies()
        refused = _open(browser, f"{base}/")
        assert "This server needs its token" in refused
        assert not any(run_id in browser.page_source for run_id in ids.values())
        assert "Wrong token" in _open(browser, f"{base}/?token=guess")

        admitted = _open(browser, f"{base}/?token=t0k")
        assert browser.current_url == f"{base}{prefix}/"  # the token left the address bar
        assert all(run_id in admitted for run_id in ids.values())
        page = _open(browser, f"{base}{prefix}/runs/{ids['hostile']}")
        assert ids["hostile"] in page  # the session cookie carries it
        assert "This server needs its token" in _open(browser, f"{base}/runs/{ids['hostile']}")
        browser.delete_all_cookies()


def _form_app(store_dir: Path) -> Response:
    async def form(request: Request) -> Response:
        csrf = request.state.csrf
        return HTMLResponse(
            '<!DOCTYPE html><html><head><title>form</title></head><body><form method="post" action="/echo">'
            f'<input type="hidden" name="csrf_token" value="{csrf}">'
            '<input name="text" value="hello"><button id="send">Send</button></form></body></html>'
        )

    async def echo(request: Request) -> Response:
        return PlainTextResponse(f"echo {(await request.form()).get('text')}")

    routes = [Route("/form", form), Route("/echo", echo, methods=["POST"])]
    return create_app(store_dir, token=None, extra_routes=routes)  # type: ignore[return-value]


@pytest.mark.parametrize("tampered", [False, True], ids=["as-served", "token-changed"])
def test_a_form_with_a_changed_csrf_token_is_refused(
    browser: WebDriver, store_dir: Path, tampered: bool
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with serve(_form_app(store_dir)) as base:
        _open(browser, f"{base}/form")
        if tampered:
            browser.execute_script(
                "document.querySelector('input[name=csrf_token]').value = arguments[0]", "A" * 43
            )
        browser.find_element(By.ID, "send").click()
        WebDriverWait(browser, WAIT_S).until(
            lambda d: (
                d.current_url == f"{base}/echo"
                and d.execute_script("return document.readyState") == "complete"
            )
        )
        body = browser.find_element(By.TAG_NAME, "body").text
        status = browser.execute_script("return performance.getEntriesByType('navigation')[0].responseStatus")
    if tampered:
        assert (status, body) == (403, "Refused: this form did not come from this page (CSRF).")
    else:
        assert (status, body) == (200, "echo hello")


@pytest.mark.parametrize("width", [390, 1280])
def test_the_agreement_page_lays_out_with_its_plots(store_dir: Path, tmp_path: Path, width: int) -> None:
    run_id = run_ids(store_dir)["hostile"]
    with serve(create_app(store_dir, token=None)) as base, chrome(tmp_path / "chrome", width=width) as driver:
        text = _open(driver, f"{base}/runs/{run_id}/agreement?reference=community")
        assert "Krippendorff's alpha (nominal)" in text
        assert driver.title == f"Agreement · run {run_id} · Panel view"
        loaded = driver.execute_script(
            "return [...document.images].map(i => i.complete && i.naturalWidth > 0)"
        )
        assert len(loaded) >= 2 and all(loaded)  # every plot decoded: data: images pass the CSP
        # the report's stylesheet applies (a CSP refusal would leave the tables unboxed) ...
        wrap = driver.execute_script(
            "return getComputedStyle(document.querySelector('.table-wrap')).overflowX"
        )
        assert wrap == "auto"
        # ... and wide tables scroll inside their box, never the page
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow == 0
        assert _scripts(driver) == []


def test_two_views_on_one_host_keep_their_sessions_and_another_port_gets_no_cookie(
    browser: WebDriver, store_dir: Path
) -> None:
    ids = run_ids(store_dir)
    first, second = create_app(store_dir, token="first-t0ken"), create_app(store_dir, token="second-t0ken")
    other = cookie_recorder()
    with serve(first) as one, serve(second) as two, serve(other) as elsewhere:
        browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
        for origin, token in ((one, "first-t0ken"), (two, "second-t0ken")):
            assert "Runs" in _open(browser, f"{origin}/?token={token}")
        # a link to another port of the host: the browser sends it no cookie of either view
        _open(browser, f"{elsewhere}/")
        _open(browser, f"{elsewhere}/runs/{ids['hostile']}")
        assert other.state.seen and all(header == "" for header in other.state.seen), other.state.seen
        cookies = browser.execute_cdp_cmd("Network.getAllCookies", {})["cookies"]
        assert all(c["httpOnly"] and c["sameSite"] == "Strict" and "t0ken" not in c["value"] for c in cookies)
        bases = {first.guard.base, second.guard.base}  # type: ignore[attr-defined]
        assert len({c["name"] for c in cookies}) == 2 and {c["path"] for c in cookies} == bases
        # neither overwrote the other: both views still open in the same browser
        for origin, app in ((one, first), (two, second)):
            page = _open(browser, f"{origin}{app.guard.base}/runs/{ids['hostile']}")  # type: ignore[attr-defined]
            assert ids["hostile"] in page
        browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
