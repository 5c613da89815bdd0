"""`panel labels export`: the editors' labels as the labels CSV that `--reference FILE` reads."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated

import typer

from ..errors import UserError
from ..report.files import check_writable, csv_chunks, write_atomic
from ..run.runref import resolve_run
from ..store import Store
from ..text import for_console
from .apps import app, err_console
from .options import RUN_HELP, RunsDir

__all__ = ["COLUMNS", "export", "label_rows"]

#: the columns written, those `panel.analysis.reference.load_labels` reads
COLUMNS = ("tool", "verdict", "rater", "source")

labels_app = typer.Typer(
    help="The editors' labels (approvals, verdict edits, publishes in `panel view`).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(labels_app, name="labels")


def label_rows(store: Store, run_ids: Sequence[str]) -> Iterator[dict[str, str]]:
    """The labels in force on each run's tools (`Store.labels_in_force`) as rows of the labels
    CSV; ``source`` is the action the label rests on and the run it was made in. A label that
    counts for several of the runs is written once, for the first run given that has it."""
    seen: set[tuple[str, str]] = set()
    for run_id in run_ids:
        for label in store.labels_in_force(run_id):
            if (label.tool_id, label.editor) in seen:
                continue
            seen.add((label.tool_id, label.editor))
            source = f"{label.action} run {label.run_id}"
            yield {"tool": label.tool_id, "verdict": label.verdict, "rater": label.editor, "source": source}


@labels_app.command("export")
def export(
    out: RunsDir = Path("runs"),
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the CSV into this file (default: stdout).")
    ] = None,
    run: Annotated[
        str | None, typer.Option("--run", metavar="RUN", help=f"Only this run's labels. {RUN_HELP}")
    ] = None,
) -> None:
    """Write the editors' labels in force (the latest of each editor on each tool) as a labels
    CSV: tool, verdict, rater (the editor), source (the action and its run). `panel agreement RUN
    --reference FILE` reads it back with the same figures as `--reference editors`.

    Without --run, the labels of every run, newest run first; an editor's label on a tool is
    written once, from the newest run that has it. Exit code 2: no runs, or no such run.
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
        rows = list(label_rows(store, run_ids))
    chunks = csv_chunks(rows, COLUMNS)
    if output is None:
        sys.stdout.writelines(chunks)
        return
    write_atomic(output, chunks)
    err_console.print(f"wrote {len(rows)} label{'s' if len(rows) != 1 else ''} to {for_console(str(output))}")
