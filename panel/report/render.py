"""Render a comparison record from Jinja2 templates: Markdown, and one self-contained HTML page."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import jinja2
from markupsafe import Markup

from ..text import clean
from .made import how_made_notes
from .record import ComparisonRecord, ScorecardEntry

__all__ = [
    "FORMATS",
    "TEMPLATES",
    "ReviewActions",
    "bar_class",
    "bar_width",
    "comparison_context",
    "escaping_environment",
    "file_environment",
    "html_environment",
    "markdown_environment",
    "render",
    "render_html",
    "render_markdown",
    "safe_url",
]

#: the comparison's templates, and the layout every HTML page of panel shares
TEMPLATES = Path(__file__).parent / "templates"


# Characters that mean something inside a Markdown line: raw HTML, links, table cells, and
# the backslash and ampersand that would otherwise un-escape the rest.
_MD_SPECIAL = str.maketrans(
    {"\\": "\\\\", "&": "&amp;", "<": "&lt;", ">": "&gt;", "[": "\\[", "]": "\\]", "|": "\\|"}
)
# What opens a block when it begins a line: a heading, a bullet, a thematic break or setext
# underline (a marker run, then a blank or the end), a code fence, an ordered list item.
# `>` and `|` are escaped wherever they stand; "**bold**" or "1.5 GB" start no block.
_BLOCK_START = re.compile(r"^(?:[#=+*_-]+(?=\s|$)|`{3,}|~{3,}|\d{1,9}(?=[.)](?:\s|$)))")


def _md_line(line: str) -> str:
    # Leading blanks are dropped too: four of them would open a code block.
    line = line.lstrip().translate(_MD_SPECIAL)
    start = _BLOCK_START.match(line)
    if start is None:
        return line
    marker = start.group()
    if marker[0].isdigit():
        return f"{marker}\\{line[len(marker) :]}"
    return "".join(f"\\{ch}" for ch in marker) + line[len(marker) :]


def _md(value: object) -> str:
    """Catalog and model text as Markdown text: no raw HTML, no links it did not come with,
    and no heading, rule, quote, list or code block it could open by starting a line."""
    return "\n".join(_md_line(line) for line in clean(value).split("\n"))


def _md_url(value: object) -> str:
    """A link target that cannot close the Markdown link around it."""
    return str(value).replace("(", "%28").replace(")", "%29").replace(" ", "%20")


def _line(value: object) -> str:
    """Markdown text on one line, for a table cell or a link's text: a line break would end it."""
    return _md(" ".join(clean(value).split()))


def _quote(value: object) -> str:
    """Keep multi-line text inside one Markdown block quote."""
    return "\n> ".join(_md(line) for line in clean(value).split("\n"))


def _finalize(value: object) -> object:
    """Every value a template prints, cleaned of terminal controls, whatever its filters.

    Markup is a macro's output, whose values were cleaned as it was built.
    """
    return value if isinstance(value, Markup) or not isinstance(value, str) else clean(value)


def safe_url(value: object) -> str | None:
    """Return the URL if it is a plain http(s) link, else None.

    Catalog links are hand-written data: anything else (`javascript:`, `data:`, relative
    paths, URLs with whitespace or control characters that browsers would silently strip)
    must not become an href.
    """
    url = str(value).strip()
    if not url or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        return None
    return url


def _host(value: object) -> str:
    """The host a link points at, so a reader sees where it goes before clicking."""
    host = urlsplit(str(value)).hostname or ""
    return host.removeprefix("www.")


_BLANK_LINE = re.compile(r"\r?\n\s*\n")


def _paragraphs(value: object) -> list[str]:
    """Split prose on blank lines so a multi-paragraph review keeps its shape."""
    return [" ".join(p.split()) for p in _BLANK_LINE.split(clean(value)) if p.strip()]


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _when(value: object) -> str:
    """Show an ISO 8601 timestamp as a reader would write it; leave anything else as it is."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    # Spelled out here rather than with %b so the page does not change with the locale.
    month = _MONTHS[moment.month - 1]
    stamp = f"{moment.day} {month} {moment.year}, {moment:%H:%M}"
    offset = moment.utcoffset()
    if offset is not None and not offset:
        stamp += " UTC"
    return stamp


@lru_cache(maxsize=1)
def _loader() -> jinja2.BaseLoader:
    return jinja2.FileSystemLoader(TEMPLATES)


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=_loader(),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # Markdown; the HTML page has its own escaping environment
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
        finalize=_finalize,
    )
    env.filters["cell"] = env.filters["line"] = _line
    env.filters["quote"] = _quote
    env.filters["md"] = _md
    env.filters["md_url"] = _md_url
    env.filters["safe_url"] = safe_url
    return env


def escaping_environment(
    templates: Path | jinja2.BaseLoader, *, keep_trailing_newline: bool = True
) -> jinja2.Environment:
    """A Jinja2 environment for HTML over ``templates`` (a folder, or a loader), escaping everything.

    Catalog, model and run text is untrusted, and a template that forgets a filter must still
    come out safe: every value is autoescaped and cleaned of terminal controls (``_finalize``).
    The comparison page, the agreement report and ``panel view`` all render through one.
    """
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates) if isinstance(templates, Path) else templates,
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=keep_trailing_newline,
        finalize=_finalize,
    )


def _bar_pct(pct: float) -> float:
    return min(100.0, max(0.0, float(pct)))


def bar_width(pct: float) -> str:
    """A bar's width as the file's inline style prints it: a percentage, one decimal, 0 to 100."""
    return f"{_bar_pct(pct):.1f}"


def bar_class(pct: float) -> str:
    """A bar's width as a class (`w-0` to `w-100`), for a page whose CSP forbids inline style."""
    return f"w-{round(float(bar_width(pct)))}"


def html_environment(loader: jinja2.BaseLoader, *, keep_trailing_newline: bool = True) -> jinja2.Environment:
    """An escaping environment over `loader` with the filters the comparison block uses, so
    the file and `panel view` render the same block with the same filters."""
    env = escaping_environment(loader, keep_trailing_newline=keep_trailing_newline)
    env.filters.update(
        safe_url=safe_url,
        host=_host,
        paragraphs=_paragraphs,
        when=_when,
        bar_width=bar_width,
        bar_class=bar_class,
    )
    return env


@lru_cache(maxsize=1)
def _html_env() -> jinja2.Environment:
    return html_environment(_loader())


def markdown_environment() -> jinja2.Environment:
    """The Markdown environment over panel's page templates, with its escaping filters (`md`,
    `line`/`cell`, `quote`): for the other pages drawn beside the comparison (the leaderboard)."""
    return _env()


def file_environment() -> jinja2.Environment:
    """The HTML environment of the self-contained files over panel's page templates."""
    return _html_env()


def render_markdown(record: ComparisonRecord, *, how_made: bool = False) -> str:
    """The page in Markdown, for readers; with `how_made`, a last section on how it was made
    (how each reply was held to its schema, re-asks, an editor's edits, regenerations, approvals)."""
    return (
        _env()
        .get_template("comparison.md.j2")
        .render(record=record, made=how_made_notes(record) if how_made else None)
    )


class ReviewActions(Protocol):
    """What `panel view` adds to each review of the page: its controls, and an anchor id."""

    def __call__(
        self, tool_id: str, persona_id: str, member: str, repeat: int, entry: ScorecardEntry | None
    ) -> Markup: ...

    def anchor(self, tool_id: str, persona_id: str, member: str, repeat: int) -> str: ...


def comparison_context(
    record: ComparisonRecord,
    *,
    review_actions: ReviewActions | None = None,
    inline_style: bool = True,
    marks: bool | None = None,
    how_made: bool = False,
) -> dict[str, Any]:
    """What the comparison block (comparison_block.html.j2) reads: the record, its names,
    the view's hook, and whether a bar's width is an inline style (the file) or a class.

    `marks` puts the editorial internals beside each review (how its structure was held, a
    re-ask, what an editor changed and who): the editor's view has them, by default whenever
    it has its hook; the reader's file has none. `how_made` adds them to the file instead as
    its closing "How this page was made" section.
    """
    return {
        "marks": review_actions is not None if marks is None else marks,
        "made": how_made_notes(record) if how_made else None,
        "record": record,
        "tool_names": {t.id: t.name for t in record.tools},
        "persona_names": {p.id: p.name for p in record.panel.personas},
        "multi": len(record.panel.members) > 1,
        "review_actions": review_actions,
        "inline_style": inline_style,
    }


def render_html(
    record: ComparisonRecord,
    *,
    review_actions: ReviewActions | None = None,
    marks: bool | None = None,
    how_made: bool = False,
) -> str:
    """The self-contained page; with `review_actions`, each review also carries what it returns
    (and its anchor as the article's id), and the editorial marks (see `comparison_context`).
    Without it the page is the published file, for readers; `how_made` adds its closing
    "How this page was made" section."""
    context = comparison_context(record, review_actions=review_actions, marks=marks, how_made=how_made)
    return _html_env().get_template("comparison.html.j2").render(context)


#: the formats a record is written in, each by its file suffix
FORMATS = ("json", "md", "html")


def render(record: ComparisonRecord, fmt: str, *, how_made: bool = False) -> str:
    """The record in one of FORMATS; `how_made` adds the pages' "How this page was made"
    section (the JSON always carries everything)."""
    if fmt == "json":
        return record.model_dump_json(indent=2) + "\n"
    if fmt == "md":
        return render_markdown(record, how_made=how_made)
    if fmt == "html":
        return render_html(record, how_made=how_made)
    raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
