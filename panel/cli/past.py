"""Commands that read past runs and write nothing to the store: diff, runs, show, render, schema."""

from __future__ import annotations

import json
import shlex
import sqlite3
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from ..errors import UserError
from ..report.diff import diff_runs
from ..report.files import write_atomic
from ..report.leaderboard_file import Leaderboard, leaderboard_schema_text
from ..report.load import load_record
from ..report.ranking import confidence_line
from ..report.record import ComparisonRecord, record_schema_text
from ..report.render import FORMATS, render
from ..report.triage_file import triage_schema_text
from ..run.resume import resume_args, resume_command
from ..run.runref import resolve_run
from ..store import Store
from ..text import clean, for_console
from ..view.data import tool_record
from .apps import app, err_console, out_console
from .board_lines import print_board
from .head_to_head import print_head_to_head
from .options import RUN_HELP, RunRef, RunsDir
from .review_summary import print_review_summary, review_summary

__all__ = ["diff", "print_record", "render_run", "runs", "schema", "show"]


@app.command()
def diff(
    run_a: Annotated[str, typer.Argument(metavar="RUN_A", help=RUN_HELP, show_default=False)],
    run_b: Annotated[str, typer.Argument(metavar="RUN_B", help=RUN_HELP, show_default=False)],
    out: RunsDir = Path("runs"),
    json_out: Annotated[bool, typer.Option("--json", help="Print the diff as JSON.")] = False,
) -> None:
    """Verdicts that flipped between two runs, and why: what changed among their inputs."""
    with Store(out, readonly=True) as store:
        run_a, run_b = (resolve_run(store, run_id) for run_id in (run_a, run_b))
        result = diff_runs(store, run_a, run_b)
    if json_out:
        sys.stdout.write(json.dumps(result.as_dict(), indent=2) + "\n")
        return
    out_console.print(
        for_console(
            f"{result.same} cells unchanged, {len(result.flipped)} flipped, "
            f"{result.only_a} only in {run_a}, {result.only_b} only in {run_b}"
        ),
        highlight=False,
    )
    if result.flipped:
        out_console.print(for_console(result.summary), highlight=False, soft_wrap=True)
        table = Table("tool", "persona", "member", "repeat", for_console(run_a), for_console(run_b), "why")
        for f in result.flipped:
            member = f.key.member if f.member_after is None else f"{f.key.member} → {f.member_after}"
            why = "; ".join(r.text for r in f.reasons)
            cells = [f.key.tool_id, f.key.persona_id, member, str(f.key.repeat)]
            cells += [f.before or "failed", f.after or "failed", why]
            table.add_row(*(for_console(c) for c in cells))
        out_console.print(table)
    if result.tools:
        out_console.print(for_console(result.tool_summary), highlight=False, soft_wrap=True)
        table = Table("tool", for_console(run_a), for_console(run_b), "why")
        for t in result.tools:
            why = "; ".join(r.text for r in t.reasons)
            table.add_row(*(for_console(c) for c in (t.tool_id, t.before or "none", t.after or "none", why)))
        out_console.print(table)


RunStatus = Literal["done", "running", "stopped", "interrupted", "failed"]


@app.command()
def runs(
    out: RunsDir = Path("runs"),
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs.")] = 20,
    status: Annotated[RunStatus | None, typer.Option(help="Only runs with this status.")] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the runs as one JSON array on stdout.")
    ] = False,
) -> None:
    """List past runs, newest first, with their whole ids."""
    if not (out / "panel.db").is_file():
        if json_out:
            sys.stdout.write("[]\n")
        else:
            out_console.print(f"no runs yet in {out}", markup=False, highlight=False, soft_wrap=True)
        return
    with Store(out, readonly=True) as store:
        found = store.list_runs(limit, status)
        flying = {run.id: _in_flight(store, run.id) for run, _, _ in found if run.status != "done"}
        planned = store.planned_reviews([run.id for run, _, _ in found])
        # A ranking (`panel rank`) plans head-to-head asks, not reviews: its count is of those.
        asks = {run.id: len(store.head_to_heads(run.id)) for run, _, _ in found if run.kind == "rank"}
        planned |= dict.fromkeys(asks, 0)
    if json_out:
        rows = [
            {
                "id": run.id,
                "status": run.status,
                "started": _iso(run.created_at),
                "finished": _iso(run.finished_at) if run.finished_at else None,
                "reviews": n,
                "planned": planned.get(run.id, n),
                "valid": ok,
                "command": run.command,
                "batches_in_flight": flying.get(run.id, 0),
            }
            for run, n, ok in found
        ]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if not found:
        which = f"{status} " if status else ""
        out_console.print(f"no {which}runs in {out}", markup=False, highlight=False, soft_wrap=True)
        return
    # Plain lines, not a table: a table squeezed into a narrow terminal cuts or folds the
    # ids, and the id is what people copy into the next command.
    lines = [("run", "status", "reviews", "started", "command")]
    for run, n, ok in found:
        started = datetime.fromtimestamp(run.created_at).strftime("%Y-%m-%d %H:%M")
        state = run.status
        if flying.get(run.id):
            n_batches = flying[run.id]
            state += f", {n_batches} batch{'es' if n_batches != 1 else ''} in flight"
        reviews = f"{n} of {planned.get(run.id, n)} stored, {ok} valid"
        if run.id in asks:
            reviews = f"ranking: {asks[run.id]} head-to-head asks stored"
        lines.append((run.id, state, reviews, started, clean(run.command)))
    widths = [max(len(row[i]) for row in lines) for i in range(4)]
    for row in lines:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[4]
        out_console.print(line, markup=False, highlight=False, soft_wrap=True)


def _in_flight(store: Store, run_id: str) -> int:
    """How many of the run's batches are not yet collected (0 in a store older than batches)."""
    try:
        return len(store.batches(run_id, unfinished_only=True))
    except sqlite3.OperationalError:
        return 0


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


@app.command()
def show(
    run_id: RunRef,
    out: RunsDir = Path("runs"),
    tool: Annotated[
        str | None, typer.Option("--tool", metavar="ID", help="Only this tool's card (its comparison).")
    ] = None,
) -> None:
    """Print a past run: a comparison's scorecard and headline, or a catalog review in summary."""
    with Store(out, readonly=True) as store:
        run_id = resolve_run(store, run_id)
        run = store.get_run(run_id)
        if run is not None and tool is not None:
            record = tool_record(store, run_id, tool)
            if record is None:
                raise UserError(_no_tool(store, run_id, tool))
        elif run is not None and run.kind == "rank":
            _show_ranking(store, run_id, run.status, out)
            return
        elif run is not None and run.kind == "review":
            summary = review_summary(store, run)
            planned = store.planned_reviews([run_id]).get(run_id, 0)
            stored = sum(store.review_counts(run_id))
            print_review_summary(summary)
            print_head_to_head(store, run_id)
            _note_partial(run_id, run.status, planned, stored, out)
            return
        else:
            record = load_record(store, run_id)
    print_record(record)
    _note_unfinished(record, out)


def _show_ranking(store: Store, run_id: str, status: str, out: Path) -> None:
    """A ranking: its board's first lines (a ranking has no reviews to make a comparison of)."""
    path = store.run_dir(run_id) / "leaderboard.json"
    try:
        board = Leaderboard.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"run {run_id} is a ranking, and its board {path} cannot be read: {e}") from None
    print_board(board, store_dir=path.parent)
    if status != "done":
        err_console.print(
            for_console(
                f"note: ranking {run_id} is not finished ({status}); finish it with: "
                + shlex.join(["panel", "rank", "--resume", run_id, *resume_args(out)])
            ),
            highlight=False,
            soft_wrap=True,
        )


def _no_tool(store: Store, run_id: str, tool: str) -> str:
    ids = [t["id"] for t in store.run_tools(run_id)]
    listed = ", ".join(ids[:12]) + (f" and {len(ids) - 12} more" if len(ids) > 12 else "")
    return f"run {run_id} has no tool '{tool}': its tools are {listed}"


def _note_unfinished(record: ComparisonRecord, out: Path) -> None:
    state = record.run
    if not state.complete:
        _note_partial(record.run_id, state.status, state.planned, state.planned - state.missing, out)


def _note_partial(run_id: str, status: str, planned: int, stored: int, out: Path) -> None:
    """A partial run's figures are not the panel's verdict: say so where a person looks."""
    if status == "done" and stored >= planned:
        return
    missing = f"{planned - stored} of {planned} reviews missing" if stored < planned else "no review missing"
    resume = resume_command(run_id, resume_args(out))
    err_console.print(
        for_console(
            f"note: run {run_id} is not finished ({status}, {missing}): its figures are "
            f"partial. Finish it with: {resume}"
        ),
        highlight=False,
        soft_wrap=True,
    )


@app.command("render")
def render_run(
    run_id: RunRef,
    fmt: Annotated[str, typer.Option("--format", "-f", help="html, md or json.")] = "html",
    file: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
    how_made: Annotated[
        bool,
        typer.Option(
            "--how-made",
            help="End the page with how it was made: structure, re-asks, edits, regenerations.",
        ),
    ] = False,
    out: RunsDir = Path("runs"),
) -> None:
    """Render a past run's comparison record as an HTML page, Markdown or JSON.

    The page is for readers; the editorial internals are in the JSON, and at the page's end
    with --how-made."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format '{fmt}': use one of {', '.join(FORMATS)}")
    if file is not None and file.is_dir():
        raise UserError(f"--output {file} is a folder: give the name of the file to write")
    if not (out / "panel.db").exists() and (out.is_file() or out.suffix.lstrip(".") in FORMATS):
        # `--out` named the file to write before it named the runs folder, as everywhere else.
        raise UserError(
            f"--out {out}: --out is the runs folder; to write the {fmt} to a file, give -o/--output {out}"
        )
    with Store(out, readonly=True) as store:
        record = load_record(store, resolve_run(store, run_id))
    text = render(record, fmt, how_made=how_made)
    _note_unfinished(record, out)
    if file is None:
        sys.stdout.write(text)
        return
    write_atomic(file, text)
    err_console.print(f"wrote {for_console(file)}")


@app.command()
def schema(
    triage: Annotated[bool, typer.Option("--triage", help="The schema of triage.json instead.")] = False,
    leaderboard: Annotated[
        bool, typer.Option("--leaderboard", help="The schema of leaderboard.json (panel rank) instead.")
    ] = False,
) -> None:
    """Print the JSON Schema of the comparison record (or, with --triage, of triage.json; with
    --leaderboard, of leaderboard.json)."""
    if triage and leaderboard:
        raise UserError("give --triage or --leaderboard, not both")
    if leaderboard:
        sys.stdout.write(leaderboard_schema_text())
        return
    sys.stdout.write(triage_schema_text() if triage else record_schema_text())


def print_record(record: ComparisonRecord) -> None:
    # Catalog and model text is data: no markup, no emoji codes, no terminal controls.
    table = Table(title=f"Reviewer scorecard — {for_console(record.title)}", show_lines=False)
    table.add_column("tool")
    table.add_column("persona")
    if len(record.panel.members) > 1:
        table.add_column("member")
    table.add_column("verdict")
    table.add_column("note", overflow="fold", max_width=70)
    for card in record.tools:
        for e in card.scorecard:
            verdict = for_console(e.verdict or "") if e.valid else "[red]failed[/]"
            note = (e.verdict_note or "") if e.valid else (e.error or "")
            row = [card.name, e.persona_name]
            if len(record.panel.members) > 1:
                row.append(e.member)
            table.add_row(*(for_console(cell) for cell in row), verdict, for_console(note))
    out_console.print(table)
    for card in record.tools:
        failed = f", {card.panel.failed} failed" if card.panel.failed else ""
        out_console.print(
            f"{for_console(card.name)}: panel ship [bold]{card.panel.display}[/] ({card.panel.ship} of "
            f"{card.panel.valid} valid{failed}) · community {card.community.display}"
            f" · entry {card.entry.label}"
        )
        if card.confidence is not None:
            line = f"  {for_console(confidence_line(card.confidence))}"
            out_console.print(line, highlight=False, soft_wrap=True)
    out_console.print(f"[bold]{for_console(record.headline.text)}[/]")
    if record.headline.head_to_head:
        out_console.print(for_console(record.headline.head_to_head), highlight=False, soft_wrap=True)
    if record.headline.disagreement:
        out_console.print(
            f"[bold]{for_console(record.headline.disagreement)}[/]", highlight=False, soft_wrap=True
        )
