"""The HTML page in a real browser: it fits a phone's width and lays out at desktop width,
and injected markup in the catalog stays text instead of running."""

from __future__ import annotations

import asyncio
import html as html_lib
import json
import os
import re
import signal
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml

from panel.report.load import load_record
from panel.report.record import ComparisonRecord
from panel.report.render import render_html
from panel.run.plan import plan_compare, run_plan
from panel.store import Store

from .conftest import EXAMPLE_CATALOG

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_S = 60
INJECTED_NAME = "<script>document.title='pwned'</script>"
INJECTED_IMG = "<img src=x onerror=\"document.title='pwned'\">"
LONG_WORD = "Supercalifragilisticexpialidocious" * 3  # no break opportunity in 102 letters

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
    # Long words must wrap, not push the page wider than a phone.
    hostile["facts"] = [*hostile.get("facts", []), LONG_WORD]
    hostile["links"] = {**hostile.get("links", {}), LONG_WORD: "https://example.com/" + "a" * 80}
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


def test_screenshot_at_desktop_width(page: tuple[Path, ComparisonRecord], tmp_path: Path) -> None:
    html, _ = page
    shot = tmp_path / "comparison-1280.png"
    _chromium(tmp_path, "shot", "--window-size=1280,2000", f"--screenshot={shot}", html.as_uri())
    assert shot.is_file(), "chromium wrote no screenshot"
    assert shot.stat().st_size > 20_000, "the screenshot is nearly blank"
    assert _png_size(shot) == (1280, 2000)


# Headless Chromium lays a window narrower than 500 px out at 500 px and crops the
# screenshot, so a phone-width window proves nothing. An iframe of the phone's width does:
# the page is its document, untouched (its CSP still forbids scripts inside it), and a script
# of the harness around it measures whether anything reaches past the right edge.
_MEASURE = """
addEventListener("load", () => {
  const frame = document.getElementById("page");
  const win = frame.contentWindow, doc = win.document, width = win.innerWidth;
  const clipped = (el) => {
    for (let up = el.parentElement; up && up !== doc.body; up = up.parentElement) {
      if (win.getComputedStyle(up).overflowX !== "visible") return true;
    }
    return false;
  };
  const wide = [];
  for (const el of doc.body.querySelectorAll("*")) {
    const right = el.getBoundingClientRect().right;
    if (right > width + 0.5 && !clipped(el)) {
      wide.push(`${el.tagName.toLowerCase()}.${el.className} reaches ${Math.round(right)}px`);
    }
  }
  const out = document.createElement("pre");
  out.id = "measure";
  out.textContent = JSON.stringify({
    width, scroll: doc.documentElement.scrollWidth, text: doc.body.textContent.length,
    phone: win.matchMedia("(max-width: 30rem)").matches, wide: wide.slice(0, 8),
  });
  document.body.append(out);
});
"""


def in_iframe(
    tmp_path: Path, page_html: str, width: int, height: int, measure: str, label: str
) -> dict[str, Any]:
    """Lay `page_html` out `width` px wide in an iframe of a real browser (headless windows are
    never under 500 px) and return what the script `measure` put in `<pre id="measure">`."""
    harness = tmp_path / f"harness-{label}-{width}.html"
    harness.write_text(
        "<!DOCTYPE html><html><head><style>body { margin: 0 } iframe { border: 0; display: block }"
        "</style></head><body>"
        f'<iframe id="page" width="{width}" height="{height}" srcdoc="{html_lib.escape(page_html)}"></iframe>'
        f"<script>{measure}</script></body></html>",
        encoding="utf-8",
    )
    result = _chromium(tmp_path, f"{label}-{width}", f"--window-size=1280,{height}",
                       "--virtual-time-budget=5000", "--dump-dom", harness.as_uri())  # fmt: skip
    found = re.search(r'<pre id="measure">(.*?)</pre>', result.stdout, re.DOTALL)
    assert found, f"the harness measured nothing:\n{result.stdout[-1000:]}"
    measured: dict[str, Any] = json.loads(html_lib.unescape(found.group(1)))
    return measured


def _layout(tmp_path: Path, page_html: str, width: int) -> dict[str, object]:
    """Lay `page_html` out `width` px wide in a real browser; what overflowed, and how far."""
    measured = in_iframe(tmp_path, page_html, width, 2000, _MEASURE, "layout")
    assert measured["width"] == width, f"the page was laid out {measured['width']} px wide, not {width}"
    assert measured["text"], "the page rendered no text"
    return measured


@pytest.mark.parametrize("width", [360, 390])
def test_page_fits_a_phone_screen(page: tuple[Path, ComparisonRecord], tmp_path: Path, width: int) -> None:
    html, _ = page
    measured = _layout(tmp_path, html.read_text(encoding="utf-8"), width)
    assert measured["phone"], "the phone layout (max-width: 30rem) did not apply"
    assert measured["scroll"] == width, f"the page scrolls sideways: {measured['wide']}"
    assert measured["wide"] == []


def test_full_depth_reviews_fit_a_phone_screen_whole(tmp_path: Path) -> None:
    from .test_depth import LONG_REVIEW, full_depth_record

    measured = _layout(tmp_path, render_html(full_depth_record(tmp_path)), 390)
    assert measured["scroll"] == 390 and measured["wide"] == [], measured["wide"]
    assert isinstance(measured["text"], int) and measured["text"] > 8 * len(LONG_REVIEW)


def test_phone_check_sees_a_page_that_is_too_wide(
    page: tuple[Path, ComparisonRecord], tmp_path: Path
) -> None:
    # The check above can fail: the same page with one element wider than the phone does.
    html, _ = page
    wide = html.read_text(encoding="utf-8").replace(
        '<div class="page">', '<div class="page"><p class="too-wide" style="width: 600px">x</p>', 1
    )
    measured = _layout(tmp_path, wide, 390)
    assert isinstance(measured["scroll"], int) and measured["scroll"] > 600
    assert isinstance(measured["wide"], list) and measured["wide"][0].startswith("p.too-wide reaches 6")


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
