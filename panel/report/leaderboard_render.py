"""A leaderboard (``leaderboard.json``, `panel.report.leaderboard_file`) as pages: Markdown, and
one self-contained HTML file in the comparison page's editorial style, which `panel view`
draws too (the block ``leaderboard_block.html.j2``, under the app's own CSP).

Each tool's strength is drawn with its interval on one scale shared by every row, so the rows
read against each other. Ties (a judge that picked by position), inconsistent judges and
failed judgements are counted on the page, never left out. Tool names, ids, members and the
board's sentences are data: escaped in both formats (the comparison's filters and
environments, `panel.report.render`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import UserError, shown
from ..json_loader import load_json
from .files import write_atomic
from .leaderboard_file import Leaderboard, LeaderTool
from .render import file_environment, markdown_environment

__all__ = [
    "STOPPED",
    "Span",
    "leaderboard_context",
    "leaderboard_html",
    "leaderboard_markdown",
    "read_leaderboard",
    "write_leaderboard_pages",
]

#: why the asking stopped, as the pages say it
STOPPED = {
    "settled": "every two neighbours' order was settled at the level",
    "budget": "the budget ran out",
    "all-pairs": "every possible pair was asked",
    "interrupted": "the run was interrupted: the board is what was asked until then",
}

_MINUS = "\u2212"


@dataclass(frozen=True)
class Span:
    """A strength and its interval on the board's scale, as percentages of the track: the
    empty `gap` before the interval, its part `left` of the point, its part `right` of it."""

    gap: float
    left: float
    right: float


def _spans(tools: list[LeaderTool]) -> dict[str, Span]:
    """Each tool's span on one scale running from the lowest end of any interval to the highest."""
    ends = [v for t in tools for v in (t.low, t.strength, t.high) if v is not None]
    lo, hi = (min(ends), max(ends)) if ends else (0.0, 0.0)
    width = hi - lo

    def at(value: float) -> float:
        return 50.0 if width <= 0 else 100.0 * (value - lo) / width

    spans = {}
    for t in tools:
        point = at(t.strength)
        low = at(t.low) if t.low is not None else point
        high = at(t.high) if t.high is not None else point
        spans[t.tool_id] = Span(gap=min(low, point), left=max(0.0, point - low), right=max(0.0, high - point))
    return spans


def _signed(value: float) -> str:
    """A log-strength as a reader writes it: a sign always, a true minus, two decimals."""
    value = round(value, 2)
    return "0.00" if value == 0 else f"{value:+.2f}".replace("-", _MINUS)


def _number(value: float) -> str:
    return f"{value:.2f}".replace("-", _MINUS)


def _share(value: float) -> str:
    return f"{100 * value:.0f}%"


def _few(note: str | None) -> str:
    """A missing rate as the pages say it: always "too few", with the board's reason if it has one
    (as `panel rank` writes it, "consistency too few: 2 of 3 pairs (10 needed); ...", said once)."""
    if not note:
        return "too few"
    return note if "too few" in note.lower() else f"too few: {note}"


def leaderboard_context(lb: Leaderboard, *, inline_style: bool = True) -> dict[str, Any]:
    """What the leaderboard block (leaderboard_block.html.j2) and the Markdown page read: the
    board, each tool's span on the shared scale, why the asking stopped, and whether a bar's
    width is an inline style (the file) or a class (`panel view`, whose CSP forbids inline style)."""
    return {
        "lb": lb,
        "spans": _spans(lb.tools),
        "stopped": STOPPED[lb.stopped],
        "level_pct": f"{100 * lb.level:g}%",
        "inline_style": inline_style,
        "signed": _signed,
        "number": _number,
        "share": _share,
        "few": _few,
    }


def leaderboard_markdown(lb: Leaderboard) -> str:
    """The board as Markdown: every tool, every judge, every judgement accounted for."""
    return markdown_environment().get_template("leaderboard.md.j2").render(leaderboard_context(lb))


def leaderboard_html(lb: Leaderboard) -> str:
    """The board as one self-contained HTML page (inline CSS, no script, no request elsewhere)."""
    return file_environment().get_template("leaderboard.html.j2").render(leaderboard_context(lb))


def write_leaderboard_pages(lb: Leaderboard, folder: Path) -> list[Path]:
    """`leaderboard.md` and `leaderboard.html` in `folder` (beside leaderboard.json), each
    written whole or not at all; returns their paths."""
    written = []
    for name, text in (
        ("leaderboard.md", leaderboard_markdown(lb)),
        ("leaderboard.html", leaderboard_html(lb)),
    ):
        write_atomic(folder / name, text)
        written.append(folder / name)
    return written


def read_leaderboard(path: Path) -> Leaderboard:
    """The board in `path`, checked against its model; a file that cannot be read, is not JSON
    or is not a leaderboard is one line naming the file (and the line or field)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise UserError(f"cannot read {path}: {reason}") from None
    data = load_json(path, text, UserError)
    try:
        return Leaderboard.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        field = ".".join(str(part) for part in first["loc"]) or "(the board)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise UserError(f"{path}: not a leaderboard: field {shown(field)}: {first['msg']}{more}") from None
