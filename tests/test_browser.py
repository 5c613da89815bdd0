"""The HTML page in a real browser: it lays out at phone and desktop width, and injected
markup in the catalog stays text instead of running."""

from __future__ import annotations

import asyncio
import os
import signal
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from panel.pipeline import load_record, plan_compare, run_plan
from panel.record import ComparisonRecord
from panel.render import render_html
from panel.store import Store

from .conftest import EXAMPLE_CATALOG

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_S = 60
INJECTED_NAME = "<script>document.title='pwned'</script>"
INJECTED_IMG = "<img src=x onerror=\"document.title='pwned'\">"

# Headless, offline and quiet: no sync, updates, field trials or other background traffic.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-extensions",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--mute-audio",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason=(
        "chromium is not installed: `make test` installs it with apt-get; skipped because "
        f"the browser check needs {CHROMIUM} (Debian's `chromium` package)"
    ),
)


def _chromium(tmp_path: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run one headless Chromium with a fresh profile; kill its whole process group on timeout."""
    profile = tmp_path / f"profile-{name}"
    profile.mkdir()
    cmd = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args]
    # A session of its own, so a hung browser and all its helper processes die together.
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium took more than {TIMEOUT_S}s: {' '.join(cmd)}")
    assert proc.returncode == 0, f"chromium exited with {proc.returncode}:\n{err[-2000:]}"
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


class _Dom(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.title = ""
        self.text: list[str] = []
        self._in_title = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        self.text.append(data)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ComparisonRecord]:
    tmp = tmp_path_factory.mktemp("browser")
    source = yaml.safe_load(EXAMPLE_CATALOG.read_text(encoding="utf-8"))
    tools = {t["id"]: t for t in source["tools"]}
    hostile = dict(tools["ollama"], name=INJECTED_NAME)
    hostile["description"] = f"{hostile['description']} {INJECTED_IMG}"
    catalog = tmp / "catalog.yaml"
    catalog.write_text(yaml.safe_dump({"tools": [hostile, tools["vllm"]]}), encoding="utf-8")

    plan = plan_compare(["ollama", "vllm"], catalog=catalog, backends=["fake", "fake:other"])
    with Store(tmp / "runs") as store:
        run_id, _ = asyncio.run(run_plan(plan, store, "test"))
        record = load_record(store, run_id)
    path = tmp / "comparison.html"
    path.write_text(render_html(record), encoding="utf-8")
    return path, record


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


@pytest.mark.parametrize("width", [390, 1280])
def test_screenshot(page: tuple[Path, ComparisonRecord], tmp_path: Path, width: int) -> None:
    html, _ = page
    shot = tmp_path / f"comparison-{width}.png"
    _chromium(tmp_path, "shot", f"--window-size={width},2000", f"--screenshot={shot}", html.as_uri())
    assert shot.is_file(), "chromium wrote no screenshot"
    assert shot.stat().st_size > 20_000, "the screenshot is nearly blank"
    assert _png_size(shot) == (width, 2000)


def test_injected_markup_does_not_run(page: tuple[Path, ComparisonRecord], tmp_path: Path) -> None:
    html, record = page
    result = _chromium(tmp_path, "dom", "--virtual-time-budget=2000", "--dump-dom", html.as_uri())
    dom = _Dom(result.stdout)
    assert "body" in dom.tags, "chromium dumped no document"
    # A script that ran would have set the title to 'pwned'.
    assert dom.title == f"{record.title} · Panel comparison"
    assert "script" not in dom.tags
    assert "img" not in dom.tags
    text = " ".join(dom.text)
    assert INJECTED_NAME in text
    assert INJECTED_IMG in text
