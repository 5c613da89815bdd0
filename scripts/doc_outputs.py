"""Run the commands whose output the docs show, and write what they print into the docs.

    python scripts/doc_outputs.py            # rewrite every marked block from a fresh run
    python scripts/doc_outputs.py --check    # change nothing; exit 1 naming each block that differs
    python scripts/doc_outputs.py --model    # also run the embedded model's demo (1-4 minutes)

Run it from a checkout with the code first on the path (`PYTHONPATH=$PWD`). It reads README.md,
docs/*.md and docs/guide/*.md and acts on the fenced blocks marked by an HTML comment on the
line above them (a block without a mark is never touched):

- `<!-- output: COMMAND -->`: the block is `$ COMMAND` and what the command prints, run with
  the fake backend or the loopback provider, so the output is the same on every machine.
  The command runs in a fresh folder holding a link to `examples/` (so the sample catalog and
  a `runs/` folder read as in a clone), through bash, `panel` being this checkout's CLI; its
  stdout is shown, and its stderr too when it exits with an error. `; with: loopback` starts
  the loopback provider (panel/testing/fake_provider.py) and writes the page's block marked
  `<!-- file: panel.toml -->` into that folder, `127.0.0.1:8400` in it made the provider's
  address, with a placeholder key in every provider's variable.
- `<!-- shape: COMMAND -->`: what the embedded model wrote. Its words are the model's, so
  `--check` (and the test suite) checks its shape only: the scorecard's title and columns,
  each tool's line agreeing with its verdicts in the table, the headline the code writes for
  those figures, and the closing "wrote" line, against the same command on the fake backend.
  `--model` runs the command on the model (no panel.toml: the embedded default) and writes
  its output, each note cut to its first line with "…"; with `--check`, it compares instead.

`--check` compares after normalising what changes from run to run: run ids, dates and
times, durations and dollar amounts. Each `"version": "X.Y"` in the pages is the record
version the code writes (`panel.report.record.RECORD_VERSION`).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import functools
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from panel.store.rows import ReviewRow

ROOT = Path(__file__).resolve().parent.parent
#: the pages whose marked blocks are kept true
PAGES = ("README.md", "docs/*.md", "docs/guide/*.md")
#: terminal width the commands print at (rich wraps and folds at it)
WIDTH = 100
#: the loopback provider's address as the docs write it
LOOPBACK = "127.0.0.1:8400"
#: a placeholder key for each provider the loopback provider stands in for
LOOPBACK_KEYS = {
    "OPENAI_API_KEY": "sk-loopback",
    "ANTHROPIC_API_KEY": "sk-loopback",
    "MISTRAL_API_KEY": "sk-loopback",
    "HF_TOKEN": "hf_loopback",
    "AZURE_OPENAI_API_KEY": "sk-loopback",
}
#: environment that would point a command elsewhere than the docs say
_DROPPED_ENV = re.compile(
    r"^(PANEL_|OPENAI_|ANTHROPIC_|MISTRAL_|AZURE_OPENAI_|HF_TOKEN|HUGGING_FACE_HUB_TOKEN)"
)

_MARK = re.compile(r"^<!-- (output|shape|file): (.+?) -->\s*$")
_FENCE = re.compile(r"^(`{3,}|~{3,})")
_VERSION = re.compile(r'"version": "(\d+\.\d+)"')
_VOLATILE = (
    (re.compile(r"\b\d{8}-\d{6}-[0-9a-f]{6}\b"), "RUN_ID"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"), "TIME"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), "DATE"),
    (re.compile(r"\$\d[\d,]*(\.\d+)?"), "$COST"),
    (re.compile(r"\b\d+(\.\d+)?\s?(ms|s|min|h)\b"), "DURATION"),
)


@dataclass(frozen=True)
class Block:
    """A marked fenced block: `lines[first:end]` of its page are its text."""

    page: Path
    kind: str  # output, shape or file
    command: str
    loopback: bool
    first: int
    end: int
    text: str

    @property
    def where(self) -> str:
        return f"{_shown(self.page)}:{self.first}"


def _shown(page: Path) -> str:
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else str(page)


def pages(root: Path = ROOT) -> list[Path]:
    return sorted({p for pattern in PAGES for p in root.glob(pattern)})


def blocks(page: Path) -> list[Block]:
    """The marked blocks of a page, in order; a mark not followed by a fence is an error."""
    lines = page.read_text().splitlines()
    found: list[Block] = []
    for i, line in enumerate(lines):
        mark = _MARK.match(line)
        if not mark:
            continue
        fence = _FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
        if not fence:
            raise SystemExit(f"{_shown(page)}:{i + 1}: the mark is not followed by a fenced block")
        close = next((j for j in range(i + 2, len(lines)) if lines[j].strip() == fence.group(1)), None)
        if close is None:
            raise SystemExit(f"{_shown(page)}:{i + 2}: the fenced block is not closed")
        command, _, option = mark.group(2).partition("; with: ")
        text = "".join(f"{x}\n" for x in lines[i + 2 : close])
        found.append(
            Block(page, mark.group(1), command.strip(), option.strip() == "loopback", i + 2, close, text)
        )
    return found


def normalise(text: str) -> str:
    """The text with what changes from run to run replaced by placeholders."""
    for pattern, placeholder in _VOLATILE:
        text = pattern.sub(placeholder, text)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()) + "\n"


def _environment(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not _DROPPED_ENV.match(k)}
    shim = work / ".bin"
    shim.mkdir()
    (shim / "panel").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m panel "$@"\n')
    (shim / "panel").chmod(0o755)
    path = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(
        PATH=f"{shim}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=path,
        COLUMNS=str(WIDTH),
        LINES="50",
        TERM="dumb",
        TZ="UTC",
    )
    env.pop("NO_COLOR", None)
    return env


@functools.cache
def run(command: str, config: str | None = None, timeout: float = 900) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `command` run as the docs run it (see the module's doc);
    once per process: the model's demo is shown twice and takes a minute."""
    from panel.testing.fake_provider import FakeProvider

    with tempfile.TemporaryDirectory(prefix="doc-outputs-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        (work / "examples").symlink_to(ROOT / "examples")
        env = _environment(work)
        address = LOOPBACK
        if config is not None:
            fake = stack.enter_context(FakeProvider())
            address = f"127.0.0.1:{fake.port}"
            (work / "panel.toml").write_text(config.replace(LOOPBACK, address))
            env.update(LOOPBACK_KEYS)
        done = subprocess.run(
            ["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, timeout=timeout
        )
    out, err = (s.replace(address, LOOPBACK).replace(tmp, ".") for s in (done.stdout, done.stderr))
    return done.returncode, out, err


def output_text(block: Block) -> str:
    """What the block should hold: `$ COMMAND` and what the command prints now."""
    config = _config_for(block) if block.loopback else None
    code, out, err = run(block.command, config)
    shown = out if code == 0 else out + err
    lines = [f"$ {block.command}", *(line.rstrip() for line in shown.rstrip("\n").splitlines())]
    return "\n".join(lines) + "\n"


def _config_for(block: Block) -> str:
    files = [
        b
        for b in blocks(block.page)
        if b.kind == "file" and b.command == "panel.toml" and b.end < block.first
    ]
    if not files:
        raise SystemExit(
            f"{block.where}: 'with: loopback' needs a block marked <!-- file: panel.toml --> above it"
        )
    return files[-1].text


def shorten_notes(text: str) -> str:
    """Keep each scorecard row's first line; a note that went on gets "…" (as the docs say)."""
    kept: list[str] = []
    for line in text.splitlines():
        cells = line.split("│")
        if line.startswith("│") and len(cells) > 3 and not cells[1].strip() and kept:
            note = kept[-1].split("│")
            words = note[-2].rstrip()
            if not words.endswith("…"):
                room = len(note[-2]) - len(words)
                note[-2] = (words + "…").ljust(len(note[-2])) if room >= 2 else words[:-1] + "… "
            kept[-1] = "│".join(note)
            continue
        kept.append(line)
    return "\n".join(line.rstrip() for line in kept) + "\n"


def replace_block(page: Path, block: Block, text: str) -> None:
    lines = page.read_text().splitlines(keepends=True)
    lines[block.first : block.end] = [f"{line}\n" for line in text.splitlines()]
    page.write_text("".join(lines))


def version_problems(page: Path, version: str) -> list[str]:
    text = page.read_text()
    return [
        f"{_shown(page)}:{text.count(chr(10), 0, m.start()) + 1}: "
        f"says version {m.group(1)}, the record is {version}"
        for m in _VERSION.finditer(text)
        if m.group(1) != version
    ]


def _diff(block: Block, want: str) -> str:
    return "".join(
        difflib.unified_diff(
            normalise(block.text).splitlines(keepends=True),
            normalise(want).splitlines(keepends=True),
            f"{block.where} (the docs)",
            f"{block.command} (now)",
        )
    )


# --- the shape of a model's output -------------------------------------------------------

_SUMMARY = re.compile(
    r"^(?P<name>.+?): panel ship (?P<display>\d+%|—) \((?P<ship>\d+) of (?P<valid>\d+) valid"
    r"(?:, (?P<failed>\d+) failed)?\) · community (?:\d+%|—)"
    r" · entry (?:Free|Freemium|Paid|Enterprise|Unknown)$"
)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip()[1:-1].split(line.strip()[0])]


def _title(lines: list[str]) -> str:
    return next((line.strip() for line in lines if line.strip().startswith("Reviewer scorecard")), "")


def _columns(lines: list[str]) -> list[str]:
    return next((_cells(line) for line in lines if line.startswith("┃")), [])


def _verdicts(lines: list[str]) -> dict[str, list[str]]:
    """Each tool's verdicts in the scorecard table, in order (a row's first line only)."""
    columns = _columns(lines)
    if not {"tool", "verdict"} <= set(columns):
        return {}
    found: dict[str, list[str]] = {}
    for line in lines:
        cells = _cells(line) if line.startswith("│") else []
        if len(cells) == len(columns) and cells[0]:
            found.setdefault(cells[0], []).append(cells[columns.index("verdict")])
    return found


def _after_table(lines: list[str]) -> tuple[dict[str, re.Match[str]], str, str]:
    """The per-tool lines, the headline (its wrapped lines joined) and the "wrote" line."""
    summary: dict[str, re.Match[str]] = {}
    rest: list[str] = []
    for line in lines[next((i for i, x in enumerate(lines) if x.startswith("└")), len(lines)) + 1 :]:
        match = _SUMMARY.match(line.strip())
        if summary and not rest and line.startswith("  "):
            continue  # a tool's confidence, under its line
        if match and not rest:
            summary[match.group("name")] = match
        else:
            rest.append(line.strip())
    blank = rest.index("") if "" in rest else len(rest)
    wrote = next((x for x in rest[blank:] if x.startswith("wrote ")), "")
    return summary, " ".join(rest[:blank]), wrote


def _row(tool: str, index: int, verdict: str) -> ReviewRow:
    """A review as the table shows it: a verdict, or "failed"."""
    from panel.store.rows import ReviewRow

    valid = verdict != "failed"
    return ReviewRow(
        tool_id=tool,
        persona_id=str(index),
        member="",
        backend="",
        model="",
        valid=valid,
        verdict=verdict if valid else None,
        verdict_note=None,
        data=None,
        error=None if valid else verdict,
        raw_reply=None,
        asks=1,
    )


def shape_problems(block: Block) -> list[str]:
    """How the block's shape differs from what its command prints (run on the fake backend)."""
    from panel.report.aggregate import ship_share
    from panel.report.headline import headline
    from panel.report.record import ComparisonRecord

    code, printed, err = run(f"{block.command} --backend fake")
    code_json, as_json, err_json = run(f"{block.command} --backend fake --json")
    if code or code_json:
        return [f"`{block.command} --backend fake` failed: {(err or err_json).strip()[-300:]}"]
    record = ComparisonRecord.model_validate_json(as_json)
    docs, now = block.text.splitlines(), printed.splitlines()
    problems = [
        f"the {name} reads {pick(docs)!r}, the command prints {pick(now)!r}"
        for name, pick in (("title", _title), ("columns", _columns))
        if pick(docs) != pick(now)
    ]
    summary, said, wrote = _after_table(docs)
    summary_now, said_now, wrote_now = _after_table(now)
    if said_now != record.headline.text or len(summary_now) != len(record.tools):
        return [
            *problems,
            "the command's output no longer has the layout this check reads: update shape_problems",
        ]
    if normalise(wrote) != normalise(wrote_now):
        problems.append(f"the last line reads {wrote!r}, the command prints {wrote_now!r}")
    verdicts, cards = _verdicts(docs), []
    for card in record.tools:
        line, table = summary.get(card.name), verdicts.get(card.name, [])
        share = ship_share([_row(card.id, i, verdict) for i, verdict in enumerate(table)])
        if line is None:
            problems.append(f"no line '{card.name}: panel ship …' after the table")
            continue
        shown = (
            line.group("display"),
            int(line.group("ship")),
            int(line.group("valid")),
            int(line.group("failed") or 0),
        )
        if shown != (share.display, share.ship, share.valid, share.failed):
            problems.append(
                f"{card.name}'s line says {line.group(0)!r}, its verdicts in the table are {table}"
            )
        cards.append(card.model_copy(update={"panel": share}))
    if len(cards) == len(record.tools):
        want = headline(cards, record.run).text
        if said != want:
            problems.append(f"the headline reads {said!r}; for these verdicts the code writes {want!r}")
    return problems


def main(argv: list[str] | None = None) -> int:
    from panel.report.record import RECORD_VERSION

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block differs")
    parser.add_argument("--model", action="store_true", help="run the embedded model's demo too")
    parser.add_argument("pages", nargs="*", type=Path, help="pages to act on (default: every page)")
    args = parser.parse_args(argv)
    failed = False
    for page in [p.resolve() for p in args.pages] or pages():
        problems = version_problems(page, RECORD_VERSION)
        if problems and not args.check:
            page.write_text(_VERSION.sub(f'"version": "{RECORD_VERSION}"', page.read_text()))
            problems = [f"{p} (rewritten)" for p in problems]
        for problem in problems:
            print(problem)
        failed |= bool(problems) and args.check
        # Bottom up, so that a rewritten block leaves the line numbers of those above it true.
        for block in reversed(blocks(page)):
            if block.kind == "file":
                continue
            if block.kind == "shape" and not args.model:
                issues = shape_problems(block)
                print(f"{block.where}: shape of `{block.command}`: " + ("; ".join(issues) or "ok"))
                failed |= bool(issues)
                continue
            want = shorten_notes(run(block.command)[1]) if block.kind == "shape" else output_text(block)
            if normalise(want) == normalise(block.text):
                print(f"{block.where}: `{block.command}`: unchanged")
            elif args.check:
                print(f"{block.where}: `{block.command}`: differs\n{_diff(block, want)}", end="")
                failed = True
            else:
                replace_block(page, block, want)
                print(f"{block.where}: `{block.command}`: rewritten")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
