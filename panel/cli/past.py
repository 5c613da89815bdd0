"""Commands that read past runs and write nothing to the store: diff, runs, show, render, schema."""

from __future__ import annotations

import json
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
from ..report.load import load_record
from ..report.record import ComparisonRecord, record_schema_text
from ..report.render import FORMATS, render
from ..run.resume import resume_args, resume_command
from ..store import Store
from ..text import clean, for_console
from .apps import app, err_console, out_console
from .options import RunsDir

__all__ = ["diff", "print_record", "render_run", "runs", "schema", "show"]


@app.command()
def diff(
    run_a: str,
    run_b: str,
    out: RunsDir = Path("runs"),
    json_out: Annotated[bool, typer.Option("--json", help="Print the diff as JSON.")] = False,
) -> None:
    """Verdicts that flipped between two runs."""
    with Store(out, readonly=True) as store:
        for run_id in (run_a, run_b):
            if store.get_run(run_id) is None:
                raise UserError(f"no run '{run_id}' in {store.path}")
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
        table = Table("tool", "persona", "member", "repeat", for_console(run_a), for_console(run_b))
        for f in result.flipped:
            cells = [*f.key[:3], str(f.key.repeat), f.before or "failed", f.after or "failed"]
            table.add_row(*(for_console(c) for c in cells))
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
    if json_out:
        rows = [
            {
                "id": run.id,
                "status": run.status,
                "started": _iso(run.created_at),
                "finished": _iso(run.finished_at) if run.finished_at else None,
                "reviews": n,
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
    lines = [("run", "status", "valid", "started", "command")]
    for run, n, ok in found:
        started = datetime.fromtimestamp(run.created_at).strftime("%Y-%m-%d %H:%M")
        state = run.status
        if flying.get(run.id):
            n_batches = flying[run.id]
            state += f", {n_batches} batch{'es' if n_batches != 1 else ''} in flight"
        lines.append((run.id, state, f"{ok}/{n}", started, clean(run.command)))
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
def show(run_id: str, out: RunsDir = Path("runs")) -> None:
    """Print a past run's scorecard and headline."""
    with Store(out, readonly=True) as store:
        record = load_record(store, run_id)
    print_record(record)
    _note_unfinished(record, out)


def _note_unfinished(record: ComparisonRecord, out: Path) -> None:
    """A partial run's figures are not the panel's verdict: say so where a person looks."""
    state = record.run
    if state.complete:
        return
    missing = f"{state.missing} of {state.planned} reviews missing" if state.missing else "no review missing"
    resume = resume_command(record.run_id, resume_args(out))
    err_console.print(
        for_console(
            f"note: run {record.run_id} is not finished ({state.status}, {missing}): its figures are "
            f"partial. Finish it with: {resume}"
        ),
        highlight=False,
        soft_wrap=True,
    )


@app.command("render")
def render_run(
    run_id: str,
    fmt: Annotated[str, typer.Option("--format", "-f", help="html, md or json.")] = "html",
    file: Annotated[Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")] = None,
    how_made: Annotated[
        bool,
        typer.Option(
            "--how-made",
            help="End the page with how it was made: structure, re-asks, edits, regenerations.",
        ),
    ] = False,
    out: Annotated[
        Path,
        typer.Option("--runs", envvar="PANEL_RUNS_DIR", help="Runs folder: panel.db and one folder per run."),
    ] = Path("runs"),
) -> None:
    """Render a past run's comparison record as an HTML page, Markdown or JSON.

    The page is for readers; the editorial internals are in the JSON, and at the page's end
    with --how-made."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format '{fmt}': use one of {', '.join(FORMATS)}")
    if file is not None and file.is_dir():
        raise UserError(f"--out {file} is a folder: give the name of the file to write")
    with Store(out, readonly=True) as store:
        record = load_record(store, run_id)
    text = render(record, fmt, how_made=how_made)
    _note_unfinished(record, out)
    if file is None:
        sys.stdout.write(text)
        return
    write_atomic(file, text)
    err_console.print(f"wrote {for_console(file)}")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the comparison record."""
    sys.stdout.write(record_schema_text())


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
    out_console.print(f"[bold]{for_console(record.headline.text)}[/]")
