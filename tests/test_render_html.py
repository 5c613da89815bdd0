"""The HTML comparison page: complete, escaped, and self-contained."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from panel.backends.base import Request
from panel.backends.fake import FakeBackend
from panel.report.load import load_record
from panel.report.record import Answer, ComparisonRecord
from panel.report.render import render_html, render_markdown, safe_url
from panel.run.plan import Plan, plan_compare, run_plan
from panel.store import Store
from panel.testing.schema_fill import fill

from .conftest import EXAMPLE_CATALOG

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
JS_URL = "javascript:alert(1)"
HOSTILE = f"{SCRIPT} {IMG}"
# Elements that make a browser fetch whatever their attributes point at.
LOADERS = frozenset(
    {"link", "script", "img", "iframe", "frame", "embed", "object", "source"}
    | {"video", "audio", "track", "input", "base", "form"}
)


class Page(HTMLParser):
    """What a browser would see: elements with their attributes, the text, and the CSS."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.chunks: list[str] = []
        self.css: list[str] = []
        self._in_style = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        (self.css if self._in_style else self.chunks).append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.chunks).split())

    def attrs(self, tag: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag]

    def has_text(self, value: str) -> bool:
        return " ".join(value.split()) in self.text


def _run(
    tmp_path: Path,
    tool_ids: Sequence[str] = ("ollama", "vllm"),
    *,
    catalog: Path = EXAMPLE_CATALOG,
    backends: Sequence[str] = ("fake",),
    tweak: object = None,
) -> ComparisonRecord:
    plan: Plan = plan_compare(list(tool_ids), catalog=catalog, backends=list(backends))
    if callable(tweak):
        tweak(plan)
    with Store(tmp_path / "runs") as store:
        run_id, _ = asyncio.run(run_plan(plan, store, "test"))
        return load_record(store, run_id)


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> ComparisonRecord:
    return _run(tmp_path_factory.mktemp("one"))


@pytest.fixture(scope="module")
def page(record: ComparisonRecord) -> Page:
    return Page(render_html(record))


def test_page_carries_every_figure_and_review(record: ComparisonRecord, page: Page) -> None:
    for tool in record.tools:
        assert page.has_text(tool.name)
        assert page.has_text(tool.panel.display)
        assert page.has_text(tool.community.display)
        assert page.has_text(tool.entry.label)
        assert page.has_text(tool.tagline)
        for entry in tool.scorecard:
            assert entry.valid and entry.verdict_note
            assert page.has_text(entry.verdict_note)
            assert page.has_text(entry.review or "")
    assert page.has_text(record.headline.question)
    assert page.has_text(record.headline.text)
    for persona in record.panel.personas:
        assert page.has_text(persona.name)
        assert page.has_text(persona.lens)
    assert page.has_text(record.split.summary)
    for row in record.community_vs_panel:
        assert page.has_text(row.note)
    assert page.has_text(record.run_id)


def test_page_is_html5_for_phones(page: Page) -> None:
    metas = page.attrs("meta")
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in metas
    assert any(m.get("charset") == "utf-8" for m in metas)
    assert "@media" in "".join(page.css)


def test_verdicts_are_badges(record: ComparisonRecord, page: Page) -> None:
    badges = [a["class"] for t, a in page.elements if "badge" in a.get("class", "").split()]
    verdicts = [e.verdict for t in record.tools for e in t.scorecard]
    assert sum("badge-ship" in b for b in badges) >= verdicts.count("ship")
    assert sum("badge-skip" in b for b in badges) >= verdicts.count("skip")


def test_single_member_page_has_no_member_headings(page: Page) -> None:
    assert not [a for t, a in page.elements if "member" in a.get("class", "").split()]


def _hostile_catalog(tmp_path: Path) -> Path:
    source = yaml.safe_load(EXAMPLE_CATALOG.read_text(encoding="utf-8"))
    vllm = next(t for t in source["tools"] if t["id"] == "vllm")
    evil = {
        "id": "evil-tool",
        "name": SCRIPT,
        "category": IMG,
        "tagline": HOSTILE,
        "description": f"Looks harmless. {HOSTILE} \"quoted\" & 'single'",
        "pricing": {"model": "paid", "note": HOSTILE},
        "links": {SCRIPT: "https://example.org/evil", "site": "https://example.org/a?b=1&c=2"},
        "facts": [HOSTILE],
        "community": {"ship": 1, "skip": 2},
    }
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"tools": [evil, vllm]}), encoding="utf-8")
    return path


def _poison_reviews(record: ComparisonRecord) -> None:
    # The catalog refuses non-http links; a record read back from JSON may still carry them.
    record.tools[0].links.update({"js": JS_URL, "rel": "/relative"})
    for tool in record.tools:
        for entry in tool.scorecard:
            entry.review = f"Fine prose.\n\n{HOSTILE}"
            entry.verdict_note = HOSTILE
            entry.answers = [Answer(key="k", question=IMG, answer=SCRIPT)]


def test_hostile_text_is_escaped(tmp_path: Path) -> None:
    record = _run(tmp_path, ["evil-tool", "vllm"], catalog=_hostile_catalog(tmp_path))
    _poison_reviews(record)
    html = render_html(record)

    assert "<script>alert(1)" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html

    page = Page(html)
    assert not page.attrs("script")
    assert not page.attrs("img")
    for tag, attrs in page.elements:
        assert not [k for k in attrs if k.startswith("on")], (tag, attrs)
        for key in ("href", "src", "action", "formaction"):
            assert not attrs.get(key, "").strip().lower().startswith("javascript:"), (tag, attrs)
    assert page.has_text(SCRIPT)  # shown to the reader, as text
    assert page.has_text(IMG)
    assert page.has_text("\"quoted\" & 'single'")

    hrefs = [a["href"] for a in page.attrs("a")]
    assert "https://example.org/a?b=1&c=2" in hrefs
    assert "/relative" not in hrefs
    assert all(h.startswith(("#", "https://", "http://")) for h in hrefs), hrefs
    assert page.has_text(f"{record.title} · Panel comparison")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.org/x?a=1&b=2", "https://example.org/x?a=1&b=2"),
        ("  http://example.org  ", "http://example.org"),
        ("javascript:alert(1)", None),
        (" JavaScript:alert(1)", None),
        ("java\tscript:alert(1)", None),
        ("data:text/html,<script>alert(1)</script>", None),
        ("//example.org", None),
        ("/relative/path", None),
        ("https://", None),
        ("https://exa mple.org", None),
    ],
)
def test_safe_url(url: str, expected: str | None) -> None:
    assert safe_url(url) == expected


def test_page_makes_no_external_requests(tmp_path: Path) -> None:
    record = _run(tmp_path, ["evil-tool", "vllm"], catalog=_hostile_catalog(tmp_path))
    page = Page(render_html(record))
    remote = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)
    for tag, attrs in page.elements:
        if tag not in LOADERS:
            continue
        for key in ("src", "href", "data", "srcset", "poster", "action", "background"):
            assert not remote.match(attrs.get(key, "")), (tag, attrs)
    assert not page.attrs("script") and not page.attrs("iframe") and not page.attrs("base")
    css = "".join(page.css).lower()
    assert "@import" not in css
    assert "url(" not in css
    for _, attrs in page.elements:
        assert "url(" not in attrs.get("style", "").lower()
    metas = page.attrs("meta")
    csp = [m["content"] for m in metas if m.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]


def test_multi_member_page_groups_reviews_by_member(tmp_path: Path) -> None:
    record = _run(tmp_path, backends=["fake", "fake:other"])
    members = record.panel.members
    assert members == ["fake:schema", "fake:other"]
    page = Page(render_html(record))

    groups = [a["data-member"] for t, a in page.elements if "data-member" in a]
    assert groups == members * len(record.panel.personas)
    headings = [a for t, a in page.elements if t == "h4" and a.get("class") == "member"]
    assert len(headings) == len(members) * len(record.panel.personas)
    for member in members:
        assert page.has_text(f"Model {member}")
    for tool in record.tools:
        for entry in tool.scorecard:
            assert page.has_text(entry.verdict_note or "")
    if record.split.between_members:
        assert page.has_text("Where the models disagree")


def _fail_the_skeptic(plan: Plan) -> None:
    def reply(request: Request, calls: int) -> str:
        if request.schema_name.startswith("skeptic"):
            return "I would rather not answer in JSON."
        return json.dumps(fill(request.schema, f"seed-{calls}"))

    plan.members[0].backend = FakeBackend(responder=reply)


def test_failed_review_shows_as_failed_with_its_reason(tmp_path: Path) -> None:
    record = _run(tmp_path, tweak=_fail_the_skeptic)
    failed = [e for t in record.tools for e in t.scorecard if not e.valid]
    assert len(failed) == 2 and all(e.persona_id == "skeptic" and e.error for e in failed)

    html = render_html(record)
    page = Page(html)
    failed_cards = [a for t, a in page.elements if "is-failed" in a.get("class", "").split()]
    assert len(failed_cards) == 2
    assert sum("badge-failed" in a.get("class", "") for _, a in page.elements) >= 2
    for entry in failed:
        assert page.has_text(entry.error or "")
    assert page.has_text(f"{record.counts.failed} failed")


def test_markdown_still_renders(record: ComparisonRecord) -> None:
    text = render_markdown(record)
    assert text.startswith(f"# {record.title}\n")
    assert "<html" not in text
