"""The view and the published files draw their pages from the same templates: the app's
comparison page holds the comparison block of the file for the same record, its bars sized
from the record (an inline style in the file, a class under the view's CSP), and the
stylesheet the view serves is the one the file inlines. The app draws the block itself: it
does not render the file and cut it up."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from panel.report import render as report_render
from panel.report.load import load_record
from panel.report.record import ComparisonRecord
from panel.store import Store
from panel.view.app import create_app

from .test_view import BASE
from .view_store import build_store, run_ids

Event = tuple[str, str, tuple[tuple[str, str | None], ...]]


class Block(HTMLParser):
    """The elements and text inside <div class="page">, with the bars' widths taken out:
    `widths` holds each bar's inline width (the file), `classes` its width class (the view).
    The view's own controls (each review's footer, the anchor ids they link to) are left out."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[Event] = []
        self.widths: list[str] = []
        self.classes: list[str] = []
        self.styles: list[str] = []
        self._depth = 0  # inside the page div: its depth, else 0
        self._skip = 0  # inside the view's controls: their depth, else 0
        self._style = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        classes = (found.get("class") or "").split()
        if not self._depth:
            if tag == "div" and classes == ["page"]:
                self._depth = 1
                self.events.append(("start", tag, tuple(attrs)))
            elif tag == "style":
                self.styles.append("")
                self._style = True
            return
        self._depth += tag not in {"meta", "link", "img", "br", "input"}
        if self._skip or "review-actions" in classes:
            self._skip += tag not in {"input"}
            return
        if "bar-fill" in classes:
            style = found.pop("style", None)
            if style is not None:
                self.widths.append(style.removeprefix("width: ").removesuffix("%"))
            self.classes += [c for c in classes if c.startswith("w-")]
            found["class"] = " ".join(c for c in classes if not c.startswith("w-"))
        if tag == "article":
            found.pop("id", None)  # the view's anchor for its controls
        self.events.append(("start", tag, tuple(found.items())))

    def handle_endtag(self, tag: str) -> None:
        if not self._depth:
            self._style = False
            return
        self._depth -= 1
        if self._skip:
            self._skip -= 1
            return
        self.events.append(("end", tag, ()))

    def handle_data(self, data: str) -> None:
        if self._style:
            self.styles[-1] += data
        elif self._depth and not self._skip and data.strip():
            self.events.append(("text", " ".join(data.split()), ()))


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("templates"))


@pytest.fixture
def client(store_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(store_dir, token=None, port=8765), base_url=BASE) as test_client:
        yield test_client


def _record(store_dir: Path, run_id: str, tool_id: str | None = None) -> ComparisonRecord:
    with Store(store_dir, readonly=True) as store:
        return load_record(store, run_id, tool_id=tool_id)


def _widths(record: ComparisonRecord) -> list[str]:
    """Each bar's width as the record gives it, in the page's order: the headline's bars,
    then each tool's panel and community bars."""
    pcts = [t.panel.pct for t in record.tools]
    pcts += [p for c in record.community_vs_panel for p in (c.panel_pct, c.community_pct)]
    return [f"{min(100.0, max(0.0, p)):.1f}" for p in pcts if p is not None]


@pytest.mark.parametrize("which", ["compare", "review tool"])
def test_the_app_draws_the_comparison_block_of_the_file(
    client: TestClient, store_dir: Path, monkeypatch: pytest.MonkeyPatch, which: str
) -> None:
    ids = run_ids(store_dir)
    run_id, tool_id = (ids["hostile"], None) if which == "compare" else (ids["review"], "moondream2")
    record = _record(store_dir, run_id, tool_id)
    file = Block(report_render.render_html(record, marks=True))  # the view shows the editorial marks

    def no_file(*args: object, **kwargs: object) -> str:
        raise AssertionError("the view rendered the whole file")

    monkeypatch.setattr(report_render, "render_html", no_file)
    path = f"/runs/{run_id}" + (f"/tools/{tool_id}" if tool_id else "")
    page = client.get(path)
    assert page.status_code == 200
    app = Block(page.text)

    assert app.events == file.events  # the same block, but for the view's controls
    assert len(app.events) > 500 and ("text", "Reviewer scorecard", ()) in app.events
    # every bar sized from the record: an inline width in the file, a class in the app
    expected = _widths(record)
    assert len(expected) >= 3
    if which == "compare":  # a share with a fraction: the class rounds it
        assert any(not w.endswith(".0") for w in expected)
    assert file.widths == expected and file.classes == []
    assert app.classes == [f"w-{round(float(w))}" for w in expected] and app.widths == []


def test_the_view_serves_the_stylesheets_the_files_inline(client: TestClient, store_dir: Path) -> None:
    ids = run_ids(store_dir)
    file = Block(report_render.render_html(_record(store_dir, ids["hostile"])))
    css = client.get("/static/comparison.css").text
    inline = file.styles[0].lstrip("\n")
    assert len(file.styles) == 1 and "--paper" in inline and ".bar-fill" in inline
    assert css.startswith(inline)  # the same rules, then one class per whole percent
    app = Block(client.get(f"/runs/{ids['hostile']}").text)
    for name in app.classes:
        assert f".{name} {{ width: {name[2:]}%; }}" in css

    from panel.analysis import agreement as analysis
    from panel.analysis.html import render_report

    with Store(store_dir, readonly=True) as store:
        data = analysis.analyze(store, [ids["hostile"]], "rater", 50, 0).to_dict()
    report = Block(render_report(data))
    served = client.get("/static/agreement.css").text
    assert len(report.styles) == 1 and ".plot img" in report.styles[0]
    assert served.startswith(report.styles[0].lstrip("\n"))


def test_the_app_draws_the_agreement_block_of_the_file(
    client: TestClient, store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from panel.analysis import html as agreement_html
    from panel.view.agreement import report_data

    run_id, reference = run_ids(store_dir)["hostile"], "community"  # every section, the reference's too
    with Store(store_dir, readonly=True) as store:
        file = Block(agreement_html.render_report(report_data(store, run_id, reference)))

    def no_file(*args: object, **kwargs: object) -> str:
        raise AssertionError("the view rendered the whole file")

    monkeypatch.setattr(agreement_html, "render_report", no_file)
    page = client.get(f"/runs/{run_id}/agreement", params={"reference": reference})
    assert page.status_code == 200
    app = Block(page.text)
    assert (
        app.events == file.events
        and (
            "start",
            "section",
            (("class", "section"), ("id", "reference"), ("aria-labelledby", "reference-title")),
        )
        in app.events
    )
    assert sum(e[1] == "img" for e in app.events) >= 2  # the plots, as in the file
