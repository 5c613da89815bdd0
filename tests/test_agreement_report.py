"""`write_report`: the agreement report as one self-contained page, built from the JSON dict.

Every figure of the dict is on the page as the terminal shows it; every section is optional;
names written by others stay text; the page loads nothing from elsewhere. The browser tests
lay it out in headless Chromium: no script runs, it fits a phone, and every plot decodes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from panel.analysis.html import render_report, write_report
from panel.analysis.page import value
from panel.errors import UserError

from .agreement_sample import base_only, full, names

pytest.importorskip("matplotlib")

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
SCRIPT = "<script>document.title='pwned'</script>"
IMG = "<img src=x onerror=\"document.title='pwned'\">"
QUOTES = "\"quoted\" & 'single' </td></table>"
LONG_WORD = "Supercalifragilisticexpialidocious" * 3
MATH = "$\\frac{1}{$"  # an odd mathtext: matplotlib would raise on it


class Page(HTMLParser):
    """The page as a reader meets it: its text, its tags and their attributes, its table rows."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.chunks: list[str] = []
        self.rows: list[list[str]] = []
        self.title = ""
        self._cell: list[str] | None = None
        self._in_title = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_title = tag == "title"
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        self.chunks.append(data)
        if self._cell is not None and data.strip():
            self._cell.append(data.strip())

    @property
    def text(self) -> str:
        return " ".join(self.chunks)

    def row(self, first: str) -> list[str]:
        found = [r for r in self.rows if r and r[0] == first]
        assert found, f"no table row starts with {first!r}"
        return found[0]

    def section_ids(self) -> list[str]:
        return [str(a["id"]) for tag, a in self.tags if tag == "section" and a.get("id")]


def _floats(data: Any, key: str = "") -> Iterator[tuple[str, float]]:
    """Every float of the report dict with the key that says how it is shown."""
    if isinstance(data, float):
        yield key, data
    elif isinstance(data, dict):
        named = key in ("ship_rate", "priors", "shares")  # keys are names here, not fields
        for k, v in data.items():
            if k != "resamples_used":
                yield from _floats(v, key if named or k in ("point", "low", "high") else k)
    elif isinstance(data, list):
        for v in data:
            yield from _floats(v, key)


@pytest.fixture(scope="module")
def page() -> Page:
    return Page(render_report(full()))


def test_every_figure_of_the_dict_is_on_the_page(page: Page) -> None:
    data = full()
    figures = list(_floats(data))
    assert len(figures) > 150
    for key, v in figures:
        shown = value(key, v)
        assert isinstance(shown, str)
        assert shown in page.text, f"{key}={v} is not on the page as {shown!r}"


def test_figures_are_formatted_as_the_terminal_shows_them(page: Page) -> None:
    # Inter-rater agreement: three decimals, the interval, the resamples it used.
    assert page.row("Fleiss' kappa") == ["Fleiss' kappa", "0.421", "[0.188, 0.663]", "197 of 200"]
    # Rates and shares are whole percentages; an undefined one is a dash.
    assert page.row("builder / openai:gpt-x")[:2] == ["builder / openai:gpt-x", "62%"]
    assert page.row("skeptic / mistral:small")[:2] == ["skeptic / mistral:small", "—"]
    # A kappa matrix with an undefined pair.
    assert page.row("openai:gpt-x") == ["openai:gpt-x", "1.000", "—"]
    # Self-consistency: kappa in decimals, agreement in percent, undefined as dashes.
    assert ["builder / openai:gpt-x", "0.812", "92%", "—", "—", "1"] in page.rows
    # Accuracy with the reference: a point and its interval per cell; undefined kappa.
    assert page.row("all judges") == ["all judges", "panel", "5", "20", "0.650 [0.500, 0.800]", "— [—, —]"]
    # Pooled verdicts, with cost per tool in dollars and the whole panel named as such.
    assert page.row("majority vote") == [
        "majority vote", "all 4 judges", "5", "0.800 [0.600, 1.000]", "0.583 [0.222, 1.000]", "$0.0125",
    ]  # fmt: skip
    assert page.row("0.3") == ["0.3", "0.590", "0.100"]
    # The variance split: shares and their intervals in percent, variances in decimals.
    assert page.row("persona x member") == ["persona x member", "5% [0%, 12%]", "0.013 [0.000, 0.030]"]
    # The latent model's view of a judge: cost, estimated accuracy, confusion.
    judge = next(r for r in page.rows if r[:3] == ["builder / mistral:small", "builder", "mistral:small"])
    assert judge[3:] == ["5", "$0.0025", "0.760 [0.610, 0.880]", "0.850", "0.150", "0.200", "0.800"]
    text = page.text
    for shown in ["Dawid-Skene (EM)", "-11.235", "labels.csv", "ann, bob", "every sub-panel", "$0.0013"]:
        assert shown in text
    for note in [*full()["notes"], *full()["research"]["notes"], *full()["research"]["variance"]["reading"]]:
        assert note in text


def test_every_plot_is_an_inline_png(page: Page) -> None:
    images = [a for tag, a in page.tags if tag == "img"]
    # Kappa: every rater pair + 2 matrices; ship rate; forest; pooled; frontier; variance.
    assert len(images) == 3 + 1 + 4
    for attrs in images:
        assert str(attrs["src"]).startswith("data:image/png;base64,iVBORw0KGgo")
        assert attrs["alt"]


def test_sections_follow_what_the_dict_holds() -> None:
    every = Page(render_report(full())).section_ids()
    assert every == [
        "agreement", "leniency", "kappa", "consistency", "reference", "accuracy", "latent", "pooling",
        "variance", "research-notes", "notes",
    ]  # fmt: skip
    assert Page(render_report(base_only())).section_ids() == [
        "agreement",
        "leniency",
        "kappa",
        "consistency",
        "notes",
    ]
    data = full()
    research = data["research"]
    research.update(reference=None, variance=None, pooling=None, accuracy=[], notes=[])
    page = Page(render_report(data))
    assert page.section_ids() == [
        "agreement",
        "leniency",
        "kappa",
        "consistency",
        "accuracy",
        "latent",
        "notes",
    ]
    # With no reference the forest plot still shows the latent model's estimates.
    assert "Each judge's accuracy with its interval" in page.text
    assert "Accuracy and Cohen's kappa with the reference" not in page.text
    assert sum(tag == "img" for tag, _ in page.tags) == 3 + 1 + 1
    # Nothing at all still makes a page.
    assert Page(render_report({})).section_ids() == []
    assert Page(render_report({"research": None, "stats": None})).section_ids() == []


def test_the_page_is_the_json_it_was_given() -> None:
    # What `panel agreement --format json` prints, read back, makes the same page.
    data = full()
    assert render_report(json.loads(json.dumps(data, allow_nan=False))) == render_report(data)


def _hostile() -> dict[str, Any]:
    text = f"{SCRIPT} {IMG} {QUOTES} {LONG_WORD}\x1b[2J\x07\u202e {MATH}"
    return names(full(), f"{MATH}{SCRIPT}", f"{IMG}{QUOTES}", f"{LONG_WORD}\x00\x1b]8;;x\x07", text)


@pytest.fixture(scope="module")
def hostile_html() -> str:
    return render_report(_hostile())


def test_hostile_names_stay_text(hostile_html: str) -> None:
    page = Page(hostile_html)
    assert "script" not in {tag for tag, _ in page.tags}
    for tag, attrs in page.tags:
        assert not any(name.startswith("on") for name in attrs), f"<{tag}> has an event handler"
        if tag == "img":
            assert str(attrs["src"]).startswith("data:image/png;base64,")
    text = page.text
    for shown in [SCRIPT, IMG, QUOTES, LONG_WORD, f"{MATH}{SCRIPT}-0 / {IMG}{QUOTES}-1", MATH]:
        assert shown in text
    # Terminal controls and bidi overrides are gone, as on the comparison page.
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]", hostile_html)
    assert "]8;;" not in hostile_html and "[2J" not in hostile_html
    assert page.title == "Agreement · run 20240501-abcdef · Panel"


def test_the_page_loads_nothing_from_elsewhere(hostile_html: str) -> None:
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in hostile_html
    # Every address in an attribute is inline data or a place on the page itself.
    linking = {"src", "href", "action", "formaction", "poster", "data", "srcset", "background", "xlink:href"}
    targets = [str(v) for _, attrs in Page(hostile_html).tags for k, v in attrs.items() if k in linking]
    assert len(targets) > 10
    assert all(t.startswith(("data:", "#")) for t in targets), [t for t in targets if t[:5] != "data:"]
    # Nor does the CSS or any text name one (the PNGs' base64 aside).
    rest = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", hostile_html)
    assert not re.search(r"https?:|//[a-z]|@import|url\(", rest, re.I)


def test_names_on_plots_are_one_line_short_and_never_mathtext() -> None:
    from panel.analysis.plots import label

    # Both ends kept: raters differ by persona at the start and member at the end.
    assert label("business_analyst / openai:gpt-4o-mini", 32) == "business_analys…enai:gpt-4o-mini"
    assert len(label(LONG_WORD)) == 40
    assert label("a\nb\x1b[2J $x$") == "a b \\$x\\$"


def test_write_report_writes_the_page_whole(tmp_path: Path) -> None:
    path = write_report(base_only(), tmp_path / "out" / "agreement.html")
    assert path == tmp_path / "out" / "agreement.html"
    assert path.read_text(encoding="utf-8") == render_report(base_only())
    assert [p.name for p in path.parent.iterdir()] == ["agreement.html"]  # no temporary file left
    with pytest.raises(UserError, match="it is a folder"):
        write_report(base_only(), tmp_path / "out")


# Headless Chromium: the helpers of the comparison page's browser test.
from .test_browser import CHROMIUM, _chromium, in_iframe  # noqa: E402

browser = pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"the browser check needs {CHROMIUM}")

_MEASURE = """
addEventListener("load", () => {
  const win = document.getElementById("page").contentWindow, doc = win.document;
  const clipped = (el) => {
    for (let up = el.parentElement; up && up !== doc.body; up = up.parentElement) {
      if (win.getComputedStyle(up).overflowX !== "visible") return true;
    }
    return false;
  };
  const wide = [...doc.body.querySelectorAll("*")]
    .filter((el) => el.getBoundingClientRect().right > win.innerWidth + 0.5 && !clipped(el))
    .map((el) => `${el.tagName.toLowerCase()}.${el.className}`);
  const out = document.createElement("pre");
  out.id = "measure";
  out.textContent = JSON.stringify({
    width: win.innerWidth, scroll: doc.scrollingElement.scrollWidth, wide: wide.slice(0, 8),
    images: [...doc.images].map((img) => [img.complete, img.naturalWidth]),
    scripts: doc.scripts.length, title: doc.title, text: doc.body.textContent.length,
  });
  document.body.append(out);
});
"""


def _in_chromium(tmp_path: Path, page_html: str, width: int) -> dict[str, Any]:
    """Lay the page out ``width`` px wide in an iframe of headless Chromium; what it measured."""
    measured = in_iframe(tmp_path, page_html, width, 3000, _MEASURE, "report")
    assert measured["width"] == width and measured["text"] > 1000
    return measured


@browser
@pytest.mark.parametrize("width", [390, 1280])
def test_the_page_fits_and_every_plot_renders(hostile_html: str, tmp_path: Path, width: int) -> None:
    measured = _in_chromium(tmp_path, hostile_html, width)
    assert measured["scroll"] <= width, f"the page scrolls sideways: {measured['wide']}"
    assert measured["wide"] == []
    assert len(measured["images"]) == 8
    assert all(done and natural > 0 for done, natural in measured["images"]), measured["images"]
    # The injected markup is text: no script element, and none ran to retitle the page.
    assert measured["scripts"] == 0
    assert measured["title"] == "Agreement · run 20240501-abcdef · Panel"


@browser
def test_the_fit_check_sees_a_page_that_is_too_wide(tmp_path: Path) -> None:
    wide = render_report(base_only()).replace(
        '<div class="page">', '<div class="page"><p style="width: 600px">x</p>'
    )
    measured = _in_chromium(tmp_path, wide, 390)
    assert measured["scroll"] > 600 and measured["wide"][0] == "p."


@browser
def test_no_injected_script_runs_in_the_opened_file(hostile_html: str, tmp_path: Path) -> None:
    path = tmp_path / "agreement.html"
    path.write_text(hostile_html, encoding="utf-8")
    result = _chromium(tmp_path, "dom", "--virtual-time-budget=2000", "--dump-dom", path.as_uri())
    dom = Page(result.stdout)
    assert dom.title == "Agreement · run 20240501-abcdef · Panel"
    assert "script" not in {tag for tag, _ in dom.tags}
    assert SCRIPT in dom.text and IMG in dom.text
