"""`panel triage RUN`: the run's tools most doubtful first, each with why, for an editor (a
table) or for another tool (JSON or CSV with stable column names).

The ranking is `panel.report.ranking.ranked` over the run's confidence; with `--reference`
the rule of `panel.report.triage` splits it into verdicts safe to publish unread and tools for
an editor (the `decision` column), and the rule's figures go above the table and in the JSON.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..errors import UserError
from ..report.confidence import cached_confidence
from ..report.files import csv_chunks
from ..report.ranking import ranking_note, run_basis
from ..report.triage import ASSUMPTION, COLUMNS, Triage, audit_sample
from ..report.triage import triage as triage_of
from ..run.runref import resolve_run
from ..store import Store
from ..text import clean, for_console, spreadsheet_safe
from .apps import app, err_console, out_console
from .options import RUN_HELP, Level, RunsDir, Target

__all__ = ["AUDIT_HELP", "COLUMNS", "FORMATS", "REFERENCE_HELP", "rule_line", "triage", "triage_rows"]

FORMATS = ("table", "json", "csv")
REFERENCE_HELP = (
    "Split the tools into verdicts safe to publish unread and tools for an editor, checked "
    "against: editors (their labels in the store), community, or a labels CSV."
)

AUDIT_HELP = (
    "List N tools drawn at random (the same for the same --seed) for the editors to label: the "
    "random sample the rule's guarantee assumes, which a queue read most doubtful first is not."
)


def triage_rows(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Every tool of the run as a row of :data:`COLUMNS`, most doubtful first (no rule)."""
    return triage_of(store, run_id, confidence=cached_confidence(store, run_id)).rows


def rule_line(found: Triage) -> str:
    """The run-level line: the rule's outcome with threshold, bound, coverage and labels used,
    or why no guarantee is possible; empty without a reference."""
    r = found.rule
    if r is None:
        return ""
    if not r["guarantee"]:
        return f"{found.sentence} Every tool goes to an editor; ranked by doubt only."
    return (
        f"Threshold {r['threshold']:.3f} for agreement >= {r['target']:.2f} at {r['level']:.0%} "
        f"confidence: bound {r['bound']:.3f} (agreement seen {r['agreement']:.3f}), coverage "
        f"{r['coverage']:.2f} ({r['published']:,} of {r['tools']:,} published unread), on "
        f"{r['labels']:,} {found.label_word} labels ({ASSUMPTION})."
    )


@app.command()
def triage(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help=RUN_HELP, show_default=False)],
    fmt: Annotated[str, typer.Option("--format", help="table (for people), json or csv.")] = "table",
    limit: Annotated[int | None, typer.Option("--limit", help="Show the N most doubtful tools.")] = None,
    reference: Annotated[
        str | None, typer.Option("--reference", metavar="editors|LABELS.csv|community", help=REFERENCE_HELP)
    ] = None,
    target: Target = 0.9,
    level: Level = 0.95,
    audit: Annotated[int | None, typer.Option("--audit", metavar="N", help=AUDIT_HELP)] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="The draw of --audit: the same seed, the same tools.")
    ] = 1,
    out: RunsDir = Path("runs"),
) -> None:
    """The run's tools, most doubtful verdict first, with the reasons for each; with
    --reference, which verdicts can be published unread at --target agreement; with --audit N,
    N of them drawn at random (--seed) for the editors to label."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format '{fmt}': use one of {', '.join(FORMATS)}")
    if limit is not None and limit < 1:
        raise UserError(f"--limit {limit}: give a number of tools, 1 or more")
    if audit is not None and audit < 1:
        raise UserError(f"--audit {audit}: give a number of tools, 1 or more")
    with Store(out, readonly=True) as store:
        run = resolve_run(store, run_id)
        cached = cached_confidence(store, run) if reference is None else None
        found = triage_of(store, run, reference=reference, target=target, level=level, confidence=cached)
    if audit is not None:
        drawn = audit_sample([r["tool_id"] for r in found.rows], audit, seed)
        by_id = {r["tool_id"]: r for r in found.rows}
        found = replace(found, rows=[by_id[t] for t in drawn])
    data = found.to_dict(limit)
    if audit is not None:
        data["audit"] = {"tools": audit, "seed": seed}
    rows = data["tools"]
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return
    drawn_line = (
        "" if audit is None else f"{audit:,} tools drawn at random (--seed {seed}) for the editors to label."
    )
    basis = run_basis(found.confidence)
    mixed = ranking_note(found.confidence)
    said = [line for line in (basis, mixed, drawn_line, rule_line(found), *found.notes) if line]
    if fmt == "csv":
        for line in said:  # stdout stays one CSV table
            err_console.print(for_console(line), markup=False, highlight=False)
        words = ({k: _cell(v) for k, v in row.items()} for row in rows)
        sys.stdout.writelines(csv_chunks(words, COLUMNS))  # true/false, as in the JSON
        return
    for line in said:
        out_console.print(for_console(line), markup=False, highlight=False)
    _table(rows, decided=found.rule is not None)


def _cell(value: object) -> object:
    """A CSV cell: true/false as in the JSON, text guarded against a spreadsheet's formulas."""
    if isinstance(value, bool):
        return str(value).lower()
    return spreadsheet_safe(value) if isinstance(value, str) else value


def _table(rows: list[dict[str, Any]], *, decided: bool) -> None:
    table = Table("#", "tool", "doubt", "ship", "interval", *(["decision"] if decided else []), "reasons")
    table.columns[-1].overflow = "fold"
    for row in rows:
        ship = "—" if row["ship"] is None else f"{row['ship']:.2f}"
        interval = "—" if row["low"] is None else f"{row['low']:.2f}–{row['high']:.2f}"
        why = row["why"] or ("cannot be estimated" if row["ship"] is None else "")
        name = clean(row["name"]).replace("\n", " ")
        decision = [row["decision"]] if decided else []
        table.add_row(
            str(row["rank"]),
            for_console(name),
            f"{row['doubt']:.2f}",
            ship,
            interval,
            *decision,
            for_console(why),
        )
    out_console.print(table)
