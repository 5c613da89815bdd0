"""`panel labels export`: the editors' labels as the labels CSV that `--reference FILE` reads."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from ..errors import UserError
from ..report.files import check_writable, csv_chunks, write_atomic
from ..run.runref import resolve_run
from ..store import Store
from ..text import for_console, spreadsheet_safe
from .apps import app, err_console
from .options import RUN_HELP, RunsDir

__all__ = ["COLUMNS", "export", "label_rows"]

#: the columns written, those `panel.analysis.reference.load_labels` reads
COLUMNS = ("tool", "verdict", "rater", "source")

labels_app = typer.Typer(
    help="The editors' labels (approvals and verdict edits in `panel view`).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(labels_app, name="labels")


def label_rows(store: Store, run_ids: Sequence[str]) -> tuple[list[dict[str, str]], int]:
    """The labels in force on each run's tools (`Store.labels_in_force`) as rows of the labels
    CSV, and how many were left out; ``source`` is the action the label rests on and the run
    it was made in. The runs are taken in the order given (newest first): a tool's labels are
    written from the first run that holds the tool, which counts every label made on the same
    entry of it; a label on an entry of the tool that has changed since is left out (it would
    count, under the bare tool id, on runs of the new entry). Cells are `spreadsheet_safe`."""
    rows: list[dict[str, str]] = []
    seen: set[tuple[int, ...]] = set()  # a label in force on several runs (one entry) rests on the same rows
    held: set[str] = set()  # the tools of the runs taken so far
    left_out = 0
    for run_id in run_ids:
        for label in store.labels_in_force(run_id):
            if label.ids in seen:
                continue
            seen.add(label.ids)
            if label.tool_id in held:
                left_out += 1
                continue
            row = {"tool": label.tool_id, "verdict": label.verdict, "rater": label.editor}
            row["source"] = f"{label.action} run {label.run_id}"
            rows.append({name: spreadsheet_safe(cell) for name, cell in row.items()})
        held.update(tool.id for tool in store.runs_tools([run_id]).get(run_id, []))
    return rows, left_out


@labels_app.command("export")
def export(
    out: RunsDir = Path("runs"),
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Write the CSV into this file (default: stdout); missing folders are made."
        ),
    ] = None,
    run: Annotated[
        str | None, typer.Option("--run", metavar="RUN", help=f"Only this run's labels. {RUN_HELP}")
    ] = None,
) -> None:
    """Write the editors' labels in force (the latest of each editor on each tool; approvals
    and verdict edits, not publishes) as a labels CSV: tool, verdict, rater (the editor),
    source (the action and its run). `panel agreement RUN --reference FILE` reads it back with
    the same figures as `--reference editors`.

    Without --run, each tool's labels on its newest entry: taken from the newest run that holds
    the tool (labels made on earlier runs of the same entry count there); labels made on an
    entry of the tool that has changed since are left out, and a line on stderr says how many
    (export them with --run). A cell starting with = + - @, a tab or a carriage return gets a
    single quote before it, so a spreadsheet shows it as text; `--reference FILE` reads it
    back without the quote. Exit code 2: no runs, or no such run.
    """
    if not (out / "panel.db").is_file():
        raise UserError(f"no runs in {out}")
    if output is not None:
        check_writable(output)
    with Store(out, readonly=True) as store:
        if run is not None:
            run_ids = [resolve_run(store, run)]
        else:
            run_ids = [r.id for r, _, _ in store.list_runs(limit=1 << 62)]
        rows, left_out = label_rows(store, run_ids)
    if left_out:
        err_console.print(
            f"left out {left_out} label{'s' if left_out != 1 else ''} made on an earlier entry of "
            "their tool (its catalog entry changed since): export them with --run RUN"
        )
    chunks = csv_chunks(rows, COLUMNS)
    if output is None:
        sys.stdout.writelines(chunks)
        return
    write_atomic(output, chunks)
    err_console.print(f"wrote {len(rows)} label{'s' if len(rows) != 1 else ''} to {for_console(str(output))}")
