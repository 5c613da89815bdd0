"""`panel triage RUN`: the run's tools most doubtful first, each with why, for an editor (a
table) or for another tool (JSON or CSV with stable column names).

The ranking is `panel.report.confidence.ranked` over the run's confidence; a rule that splits
the ranking into verdicts safe to publish unread and tools for an editor (`--reference`,
`--target`) goes in as options whose decision is one more column of `triage_rows`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..errors import UserError
from ..report.confidence import as_row, cached_confidence, ranked
from ..report.files import csv_chunks
from ..run.runref import resolve_run
from ..store import Store
from ..text import clean, for_console
from .apps import app, out_console
from .options import RUN_HELP, RunsDir

__all__ = ["COLUMNS", "FORMATS", "triage", "triage_rows"]

FORMATS = ("table", "json", "csv")
#: the columns of the JSON objects and the CSV, in order (stable: other tools read them)
COLUMNS = ("rank", "tool_id", "name", "doubt", "ship", "low", "high", "method", "reviews", "contested",
           "reasons", "why")  # fmt: skip


def triage_rows(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Every tool of the run as a row of :data:`COLUMNS`, most doubtful first."""
    names = {str(t["id"]): str(t.get("name") or t["id"]) for t in store.run_tools(run_id)}
    rows = []
    for rank, (tool_id, c) in enumerate(ranked(cached_confidence(store, run_id)), start=1):
        rows.append({"rank": rank, **as_row(tool_id, names.get(tool_id, tool_id), c)})
    return rows


@app.command()
def triage(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help=RUN_HELP, show_default=False)],
    fmt: Annotated[str, typer.Option("--format", help="table (for people), json or csv.")] = "table",
    limit: Annotated[int | None, typer.Option("--limit", help="Show the N most doubtful tools.")] = None,
    out: RunsDir = Path("runs"),
) -> None:
    """The run's tools, most doubtful verdict first, with the reasons for each."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format '{fmt}': use one of {', '.join(FORMATS)}")
    if limit is not None and limit < 1:
        raise UserError(f"--limit {limit}: give a number of tools, 1 or more")
    with Store(out, readonly=True) as store:
        rows = triage_rows(store, resolve_run(store, run_id))
    rows = rows[:limit] if limit is not None else rows
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        words = ({k: str(v).lower() if isinstance(v, bool) else v for k, v in row.items()} for row in rows)
        sys.stdout.writelines(csv_chunks(words, COLUMNS))  # true/false, as in the JSON
    else:
        _table(rows)


def _table(rows: list[dict[str, Any]]) -> None:
    table = Table("#", "tool", "doubt", "ship", "interval", "reasons")
    table.columns[-1].overflow = "fold"
    for row in rows:
        ship = "—" if row["ship"] is None else f"{row['ship']:.2f}"
        interval = "—" if row["low"] is None else f"{row['low']:.2f}–{row['high']:.2f}"
        why = row["why"] or ("cannot be estimated" if row["ship"] is None else "")
        name = clean(row["name"]).replace("\n", " ")
        table.add_row(
            str(row["rank"]), for_console(name), f"{row['doubt']:.2f}", ship, interval, for_console(why)
        )
    out_console.print(table)
