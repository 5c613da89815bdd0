"""The leaderboard's pages (`panel.report.leaderboard_render`): every tool, judge and count on
both pages, a missing rate said to be "too few", hostile names inert in Markdown and HTML,
both files written beside leaderboard.json, a file that is not a leaderboard refused in one
line, and schema/leaderboard.schema.json as `panel schema --leaderboard` prints it."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from panel.errors import UserError
from panel.report.leaderboard_render import (
    leaderboard_html,
    leaderboard_markdown,
    read_leaderboard,
    write_leaderboard_pages,
)
from panel.resources import data_dir

from .leaderboard_board import hostile_board, sample_board

#: a name that would run, split a table row, start a new line or read backwards if it were not data
HOSTILE = "<script>document.title='pwned'</script> | x |\n# owned \u202egnp.exe"


def _rows(markdown: str, header: str) -> list[str]:
    """The body rows of the Markdown table whose header line starts with `header`."""
    lines = markdown.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def _cells(row: str) -> int:
    """How many cells a Markdown table row has (a pipe escaped as \\| is text)."""
    return len(re.findall(r"(?<!\\)\|", row)) - 1


def test_both_pages_hold_every_tool_judge_and_count() -> None:
    board = sample_board()
    md, html = leaderboard_markdown(board), leaderboard_html(board)
    assert len(board.tools) == 9 and len(board.judges) == 8
    rows = _rows(md, "| Rank |")
    assert len(rows) == len(board.tools) and all(_cells(r) == 6 for r in rows)
    for t, row in zip(board.tools, rows, strict=True):
        assert row.startswith(f"| {t.rank} | **{t.name}** ({t.tool_id}) |")
        assert f"| {t.wins}–{t.ties}–{t.losses} (" in row and row.endswith(f"| {t.failed} |")
        assert f'<th scope="row">{t.name}<span class="sub">{t.tool_id}</span></th>' in html
        assert f'{t.wins}–<span class="lb-ties">{t.ties}</span>–{t.losses}' in html
    assert len(_rows(md, "| Judge |")) == len(board.judges)
    j = board.judgements
    assert j.ties > 0 and j.failed > 0
    assert f"{j.consistent} consistent, {j.ties} ties (picked by position), {j.failed} failed." in md
    assert f"{j.consistent} consistent · <strong>{j.ties} ties</strong>" in html
    assert f"<strong>{j.failed} failed</strong>" in html
    assert f"**{board.pairs_asked} of {board.pairs_possible} pairs asked**" in md
    assert f"{board.pairs_asked} of {board.pairs_possible} possible" in html
    for page in (md, unescape(html)):
        assert "30 pairs" in page and "every two neighbours' order was settled at the level" in page.lower()
        assert board.note is not None and board.note in page
        assert "$0.18" in page


def test_a_missing_rate_says_too_few_with_the_boards_reason() -> None:
    board = sample_board()
    flaky = next(j for j in board.judges if j.consistency is None)
    biased = next(j for j in board.judges if j.consistency is not None and j.position_bias is None)
    md, html = leaderboard_markdown(board), leaderboard_html(board)
    judges = _rows(md, "| Judge |")
    flaky_row = next(r for r in judges if r.startswith(f"| {flaky.persona_id} on {flaky.member} |"))
    assert flaky.note is not None and f"| {flaky.note} | too few |" in flaky_row
    biased_row = next(r for r in judges if r.startswith(f"| {biased.persona_id} on {biased.member} |"))
    assert f"| {biased.note} |" in biased_row
    assert f'<span class="lb-few">{flaky.note}</span>' in html
    # a board whose judge has no reason recorded still says "too few"
    bare = board.model_copy(update={"judges": [flaky.model_copy(update={"note": None})]})
    assert "| too few | too few |" in leaderboard_markdown(bare)
    assert leaderboard_html(bare).count('<span class="lb-few">too few</span>') == 2


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_hostile_names_are_only_text(fmt: str) -> None:
    board = hostile_board(HOSTILE)
    page = leaderboard_markdown(board) if fmt == "md" else leaderboard_html(board)
    assert "<script" not in page and "\u202e" not in page
    if fmt == "html":
        assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in page
        return
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in page
    # the table keeps its rows and cells; the name's pipes and line break are text
    for header, count in (("| Rank |", len(board.tools)), ("| Judge |", len(board.judges))):
        rows = _rows(page, header)
        assert len(rows) == count and all(_cells(r) == 6 for r in rows), rows
    assert "\\| x \\|" in page and "\n# owned" not in page


def test_the_pages_are_written_beside_the_json(tmp_path: Path) -> None:
    board = sample_board()
    (tmp_path / "leaderboard.json").write_text(board.model_dump_json(indent=2), encoding="utf-8")
    written = write_leaderboard_pages(board, tmp_path)
    assert written == [tmp_path / "leaderboard.md", tmp_path / "leaderboard.html"]
    assert written[0].read_text(encoding="utf-8") == leaderboard_markdown(board)
    assert written[1].read_text(encoding="utf-8") == leaderboard_html(board)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["leaderboard.html", "leaderboard.json", "leaderboard.md"]
    assert read_leaderboard(tmp_path / "leaderboard.json") == board


def test_a_page_that_cannot_be_written_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "leaderboard.html").mkdir()  # a folder in the way of the second file
    with pytest.raises(UserError, match=r"cannot write .*leaderboard\.html: it is a folder"):
        write_leaderboard_pages(sample_board(), tmp_path)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"version": "1.0",\n "run_id": ', r"leaderboard\.json:2:\d+: JSON syntax error"),
        ("[]", r"leaderboard\.json: not a leaderboard: field '\(the board\)'"),
        ("BOARD_WITHOUT_TOOLS", r"leaderboard\.json: not a leaderboard: field 'tools'"),
        ("BOARD_WITH_RANK_0", r"field 'tools\.0\.rank': Input should be greater than or equal to 1"),
    ],
)
def test_a_file_that_is_not_a_leaderboard_is_refused_in_one_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    data: dict[str, Any] = json.loads(sample_board().model_dump_json())
    if text == "BOARD_WITHOUT_TOOLS":
        del data["tools"]
        text = json.dumps(data)
    elif text == "BOARD_WITH_RANK_0":
        data["tools"][0]["rank"] = 0
        text = json.dumps(data)
    path = tmp_path / "leaderboard.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=expected) as raised:
        read_leaderboard(path)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_board_with_a_number_that_is_not_finite_is_refused_in_one_line(tmp_path: Path, bad: str) -> None:
    data = json.loads(sample_board().model_dump_json())
    data["tools"][0]["strength"] = "@@"
    path = tmp_path / "leaderboard.json"
    path.write_text(json.dumps(data).replace('"@@"', bad), encoding="utf-8")
    with pytest.raises(
        UserError, match=r"leaderboard\.json: not a leaderboard: field 'tools\.0\.strength': "
    ) as e:
        read_leaderboard(path)
    assert "\n" not in str(e.value) and "finite" in str(e.value)


def test_published_leaderboard_schema_matches_the_models(cli: Any) -> None:
    printed = cli("schema", "--leaderboard")
    assert printed.code == 0
    committed = (data_dir("schema") / "leaderboard.schema.json").read_text()
    assert printed.out == committed, "schema/leaderboard.schema.json is stale: run `make schema`"
    jsonschema.validate(json.loads(sample_board().model_dump_json()), json.loads(committed))
    both = cli("schema", "--leaderboard", "--triage")
    assert both.code == 2 and "not both" in both.err and both.out == ""


def test_a_board_without_intervals_or_judges_still_reads() -> None:
    """An interrupted board: no tool has an interval or a rank range yet, no judge answered."""
    board = sample_board()
    bare = [
        t.model_copy(update={"low": None, "high": None, "rank_low": None, "rank_high": None})
        for t in board.tools
    ]
    early = board.model_copy(update={"tools": bare, "judges": [], "stopped": "interrupted", "cost_usd": None})
    md, html = leaderboard_markdown(early), leaderboard_html(early)
    assert all("(no interval) | — |" in row for row in _rows(md, "| Rank |"))
    assert html.count(">no interval<") == len(bare)
    assert "| no judge answered |" in md and "No judge answered." in html
    for page in (md, unescape(html)):
        assert "the run was interrupted: the board is what was asked until then" in page.lower()
        assert "unpriced (a local model)" in page
    empty = early.model_copy(update={"tools": [], "pairs_asked": 0, "asks": 0})
    assert "0 tools" in leaderboard_markdown(empty) and "0 tools, strongest first" in leaderboard_html(empty)
