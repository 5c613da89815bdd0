"""Catalog and model text is shown as written: no terminal controls, no rich markup or emoji,
no Markdown blocks it did not come with."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from markdown_it import MarkdownIt

from panel.backends.base import Request
from panel.backends.fake import FakeBackend
from panel.errors import FatalError
from panel.report.aggregate import build_record
from panel.report.record import ComparisonRecord
from panel.report.render import render_html, render_markdown
from panel.run.plan import RunOptions, plan_compare, run_plan
from panel.store import ReviewRow, Store
from panel.testing.schema_fill import fill
from panel.text import clean

from .conftest import EXAMPLE_CATALOG
from .factories import personas, review, tool

IDS = ["builder", "skeptic", "futurist", "business_analyst"]
OSC8_LINK = "\x1b]8;;http://evil.example\x07click\x1b]8;;\x07"
CLEAR_SCREEN = "\x1b[2J\x1b[H"
RETITLE = "\x1b]0;pwned\x1b\\"
C1_CSI = "\x9b31m"  # the 8-bit form of ESC [
RIGHT_TO_LEFT = "\u202e"
HOSTILE = f"Fine {OSC8_LINK} tool{CLEAR_SCREEN}{RETITLE} with {C1_CSI}red{RIGHT_TO_LEFT} text\x07\x08\x00."
SHOWN = "Fine click tool with red text."
# Anything a terminal acts on: C0 but tab and newline, DEL, C1, and the bidi overrides.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (OSC8_LINK, "click"),
        (f"a{CLEAR_SCREEN}b", "ab"),
        (f"{RETITLE}title", "title"),
        (f"{C1_CSI}red", "red"),
        (f"abc{RIGHT_TO_LEFT}fed\u2066x\u2069", "abcfedx"),
        ("one\r\ntwo\rthree\nfour\tfive", "one\ntwo\nthree\nfour\tfive"),
        ("lone escape \x1b", "lone escape "),
        ("\x1b]8;;cut off", "8;;cut off"),  # no terminator: the introducer goes, the text stays
        ("plain text, unchanged: [bold] :smile: ünïcode", "plain text, unchanged: [bold] :smile: ünïcode"),
        (HOSTILE, SHOWN),
    ],
)
def test_clean_removes_controls_and_keeps_prose(raw: str, shown: str) -> None:
    assert clean(raw) == shown


def _hostile_record(text: str) -> ComparisonRecord:
    """A two-tool record whose every catalog and model text field holds `text`.

    The one-line catalog fields get its first line: the catalog refuses more when it loads,
    but the pages must not rely on that.
    """
    first = text.split("\n")[0]
    tools = [
        tool(tid).model_copy(
            update={
                "name": f"{first} {tid}",
                "category": first,
                "tagline": first,
                "description": text,
                "facts": [text],
                "links": {text: "https://example.com/"},
                "pricing": tool(tid).pricing.model_copy(update={"note": text}),
            }
        )
        for tid in ("alpha", "beta")
    ]
    rows: list[ReviewRow] = []
    for t in tools:
        for i, pid in enumerate(IDS):
            row = review(t.id, pid, "ship" if i % 2 else "skip")
            answers = {q.key: text for p in personas() if p.id == pid for q in p.questions}
            data = dict(row.data or {}, review=text, answers=answers)
            rows.append(replace(row, verdict_note=text, data=data))
    rows.append(replace(review("alpha", "builder", None, member="fake:other"), error=text))
    return build_record("run-1", 0.0, tools, personas(), ["fake:schema", "fake:other"], rows)


def test_markdown_and_html_pages_hold_no_control_characters() -> None:
    record = _hostile_record(HOSTILE)
    for page in (render_markdown(record), render_html(record)):
        assert "\x1b" not in page
        assert not CONTROL.findall(page)
        assert "Fine click tool with red text" in page  # the words stay


def _reply_with(text: str) -> Any:
    def reply(request: Request, calls: int) -> str:
        data = fill(request.schema, f"seed-{calls}")
        data["review"] = data["verdict_note"] = text
        data["answers"] = {key: text for key in data["answers"]}
        return json.dumps(data)

    return reply


def _stored_run(runs: Path, text: str, catalog: Path = EXAMPLE_CATALOG) -> str:
    """A run in `runs` whose model replies hold `text`; returns its id."""
    plan = plan_compare(["ollama", "vllm"], catalog=catalog, backends=["fake"], persona_ids=["builder"])
    plan.members[0].backend = FakeBackend(responder=_reply_with(text))
    with Store(runs) as store:  # a comparison, as `panel compare` makes it: `show` prints its scorecard
        run_id, _ = asyncio.run(run_plan(plan, store, "test", options=RunOptions(kind="compare")))
    return run_id


def test_show_prints_model_text_without_terminal_controls(cli: Any, runs_dir: Path) -> None:
    run_id = _stored_run(runs_dir, HOSTILE)
    result = cli("show", run_id, "--out", str(runs_dir))
    assert result.code == 0, result.err
    assert "\x1b" not in result.out + result.err
    assert not CONTROL.findall(result.out)
    assert "Fine click tool with red text." in " ".join(result.out.split())


def _catalog_with(tmp_path: Path, **fields: str) -> Path:
    source = yaml.safe_load(EXAMPLE_CATALOG.read_text(encoding="utf-8"))
    tools = {t["id"]: t for t in source["tools"]}
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"tools": [dict(tools["ollama"], **fields), tools["vllm"]]}))
    return path


def test_compare_prints_and_writes_catalog_text_without_terminal_controls(
    cli: Any, tmp_path: Path, runs_dir: Path
) -> None:
    # One-line fields refuse C0 controls when the catalog loads; C1 and bidi get that far.
    name = f"Olla{C1_CSI}ma{RIGHT_TO_LEFT}"
    catalog = _catalog_with(tmp_path, name=name, description=HOSTILE, facts=[HOSTILE])
    result = cli("compare", "ollama", "vllm", "--catalog", str(catalog), "-b", "fake", "--out", str(runs_dir))
    assert result.code == 0, result.err
    assert not CONTROL.findall(result.out + result.err)
    assert "Reviewer scorecard — Ollama vs vLLM" in result.out  # the 8-bit CSI went whole
    (folder,) = [p for p in runs_dir.iterdir() if p.is_dir()]
    for page in ("comparison.md", "comparison.html"):
        text = (folder / page).read_text(encoding="utf-8")
        assert not CONTROL.findall(text), page
        assert "Fine click tool with red text." in text


def test_markup_and_emoji_codes_in_data_print_as_written(cli: Any, tmp_path: Path, runs_dir: Path) -> None:
    name = "Ollama [bold]:smile:[/bold] :m:"
    note = "Use it [red]now[/red] :thumbs_up: with openai:m: today."
    catalog = _catalog_with(tmp_path, name=name)
    run_id = _stored_run(runs_dir, note, catalog)
    result = cli("show", run_id, "--out", str(runs_dir))
    assert result.code == 0, result.err
    out = " ".join(result.out.split())
    assert name in out
    assert "Use it [red]now[/red] :thumbs_up: with openai:m: today." in out


def test_a_model_named_m_keeps_its_name_in_an_error(cli: Any, runs_dir: Path) -> None:
    # The engine writes "<kind> error from fake:m: <reason>": ":m:" is an emoji code.
    def refuse(request: Request, calls: int) -> str:
        raise FatalError("401 bad key")

    plan = plan_compare(
        ["ollama", "vllm"], catalog=EXAMPLE_CATALOG, backends=["fake:m"], persona_ids=["builder"]
    )
    plan.members[0].backend = FakeBackend("m", responder=refuse)
    with Store(runs_dir) as store:
        run_id, _ = asyncio.run(run_plan(plan, store, "test"))
    result = cli("show", run_id, "--out", str(runs_dir))
    assert result.code == 0, result.err
    assert "fatal error from fake:m: 401 bad key" in result.out
    assert "Ⓜ" not in result.out


@pytest.mark.parametrize("command", [["compare"], ["review"], ["backends"]])
def test_help_text_is_printed_literally(cli: Any, command: list[str]) -> None:
    result = cli(*command, "--help")
    assert result.code == 0, result.err
    assert "[tool.panel]" in result.out


# Lines that open a Markdown block when they start a line, each tagged so its text can be
# found again; blank lines between, so none is a paragraph's lazy continuation.
BLOCKS = [
    "# INJ heading",
    "## INJ heading two",
    "---",
    "***",
    "___",
    "INJ setext\n===",
    "INJ setext two\n---",
    "> INJ quote",
    "- INJ bullet",
    "* INJ star",
    "+ INJ plus",
    "1. INJ ordered",
    "3) INJ ordered paren",
    "```\nINJ fenced\n```",
    "~~~\nINJ tilde\n~~~",
    "    INJ indented code",
    "| INJ | table |\n|---|---|\n| a | b |",
    "INJ | table\n:-- | --:",
    "<div>INJ html</div>",
    "[INJ]: https://evil.example/ref",
]
HOSTILE_MD = "\n\n".join(BLOCKS) + "\n\n**bold** and 1.5 GB stay inline"
STRUCTURE = {
    "heading_open",
    "hr",
    "blockquote_open",
    "list_item_open",
    "fence",
    "code_block",
    "table_open",
    "html_block",
    "html_inline",
    "link_open",
}


def _structure(page: str) -> dict[str, int]:
    """How many of each block (and link) the page parses into."""
    counts: dict[str, int] = {}
    for token in MarkdownIt("commonmark").enable("table").parse(page):
        for t in [token, *(token.children or [])]:
            if t.type in STRUCTURE:
                counts[t.type] = counts.get(t.type, 0) + 1
    return counts


def test_markdown_data_opens_no_heading_rule_quote_list_or_code_block() -> None:
    plain = render_markdown(_hostile_record("plain words"))
    hostile = render_markdown(_hostile_record(HOSTILE_MD))
    # The same structure as the page with plain text: every heading, quote, list item, table
    # and link comes from the template; the data adds none and breaks none.
    assert _structure(hostile) == _structure(plain)
    parser = MarkdownIt("commonmark").enable("table")
    inline = " ".join(
        child.content
        for token in parser.parse(hostile)
        if token.type == "inline"
        for child in token.children or []
        if child.type in ("text", "code_inline")
    )
    for line in ("# INJ heading", "> INJ quote", "- INJ bullet", "1. INJ ordered", "```", "---"):
        assert line in inline, f"{line!r} is not shown as text"
    assert "https://evil.example/ref" in inline  # no link reference definition swallowed it


def test_markdown_data_cannot_unescape_a_link() -> None:
    record = _hostile_record(r"\[click\](https://evil.example) AT&amp;T")
    page = render_markdown(record)
    html = MarkdownIt("commonmark").render(page)
    assert "evil.example" in html and 'href="https://evil.example' not in html
    assert "AT&amp;amp;T" in html  # the entity in the data is shown as typed
