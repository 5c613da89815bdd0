"""Helpers for tests of `panel view` in a real browser (not a test module).

- `serve(app)`: serve an ASGI app (e.g. `create_app(...)`) with uvicorn in a background thread
  on a free loopback port; yields the base URL (`http://127.0.0.1:PORT`), stops it on exit.
- `chrome(profile_root, width=1280)`: a headless Chrome WebDriver on Debian's chromium, driven
  through Debian's chromedriver (never a downloaded one); quits on exit.
- `full_page_screenshot(driver, path)`: the whole page as one PNG.
- `cookie_recorder()`: an app for another port of the host (another account's server, say)
  that answers every path and keeps the Cookie header of each request in `app.state.seen`.
- `needs_browser`: a pytest mark skipping, with the reason, where chromium, chromedriver or
  selenium is missing.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from .test_browser import CHROMIUM, FLAGS

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

__all__ = [
    "CHROMEDRIVER",
    "CHROMIUM",
    "chrome",
    "cookie_recorder",
    "full_page_screenshot",
    "missing",
    "needs_browser",
    "serve",
]

CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: seconds a page, the server or the driver gets before a test fails
TIMEOUT_S = 30


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.is_file():
        return f"chromium is not installed ({CHROMIUM}, Debian's `chromium`; `make test` installs it)"
    if not CHROMEDRIVER.is_file() and shutil.which("chromedriver") is None:
        return (
            f"chromedriver is not installed ({CHROMEDRIVER}, Debian's `chromium-driver`; "
            "`make test` installs it)"
        )
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (the `dev` extra: pip install 'toolpanel[dev]')"
    return None


needs_browser = pytest.mark.skipif(missing() is not None, reason=missing() or "")


class _Server(uvicorn.Server):
    """uvicorn's server, telling a waiting thread when it listens (or that it gave up)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.ready.set()


@contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """`app` served on 127.0.0.1 at a free port, in a thread; yields `http://127.0.0.1:PORT`.

    The socket is bound before the server starts, so the port is known and cannot be taken in
    between. Make the app with `port=None` (any port in the Host header) unless it needs none.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = _Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="view-server")
    thread.start()
    try:
        if not server.ready.wait(TIMEOUT_S) or not server.started:
            raise RuntimeError(f"the view server did not start on 127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(TIMEOUT_S)
        sock.close()


@contextmanager
def chrome(profile_root: Path, width: int = 1280, height: int = 900) -> Iterator[WebDriver]:
    """A headless Chrome on /usr/bin/chromium with a fresh profile under `profile_root`,
    the window `width` x `height` px (1280: desktop, 390: a phone)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    reason = missing()
    if reason is not None:
        pytest.skip(reason)
    profile_root.mkdir(parents=True, exist_ok=True)
    profile = Path(tempfile.mkdtemp(prefix="chrome-", dir=profile_root))
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"]:
        options.add_argument(flag)
    # The path given: Selenium Manager is never asked to find (or download) a driver.
    driver_path = str(CHROMEDRIVER) if CHROMEDRIVER.is_file() else shutil.which("chromedriver")
    service = Service(executable_path=driver_path)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_window_size(width, height)
        driver.set_page_load_timeout(TIMEOUT_S)
        yield driver
    finally:
        driver.quit()


def full_page_screenshot(driver: WebDriver, path: Path) -> Path:
    """The whole page, not only the window, saved as PNG at `path` (width unchanged)."""
    width = driver.get_window_size()["width"]
    # The window's own frame takes part of its height: add it, or the page's foot is cut.
    frame = int(driver.execute_script("return window.outerHeight - window.innerHeight"))
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(width, max(height, 200) + max(frame, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(path)):
        raise RuntimeError(f"the screenshot could not be saved to {path}")
    return path


def cookie_recorder() -> Starlette:
    """A server for another port of the host: it answers every path, keeping the Cookie
    header of each request ('' for none) in `app.state.seen`."""

    async def record(request: Request) -> Response:
        request.app.state.seen.append(request.headers.get("cookie", ""))
        return PlainTextResponse("another server on this host")

    app = Starlette(routes=[Route("/{path:path}", record)])
    app.state.seen = []
    return app
