"""`panel batches [RUN]`: a run's provider batches; `panel batches cancel RUN` stops them."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from ..errors import UserError
from ..run.batch_cancel import cancel_batches
from ..run.resume import resume_args, resume_command
from ..run.runref import resolve_run
from ..store import BatchRow, Store
from ..text import clean
from .apps import app, out_console
from .options import RunsDir

__all__ = ["batches"]

_HEAD = ("batch", "member", "provider id", "state", "requests", "counts", "attempt", "updated")


@app.command()
def batches(
    words: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[cancel] [RUN]",
            help="A run: an id, a unique start of one, or 'last' (default: the newest run with "
            "batches); or 'cancel' and a run.",
        ),
    ] = None,
    out: RunsDir = Path("runs"),
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the batches as one JSON array on stdout.")
    ] = False,
) -> None:
    """List a run's batches on the batch route (state, counts, attempt), or cancel them.

    `panel batches cancel RUN` asks each provider to stop the run's batches still in flight;
    what they finished stays readable and `panel review --resume RUN` collects it (the
    requests the cancel cut off are stored as failed, with the reason).
    Exit code 2: no such run, or a runs folder with no runs.
    """
    args = list(words or [])
    if args[:1] == ["cancel"]:
        if len(args) != 2:
            raise UserError("panel batches cancel RUN: give exactly one run id")
        _cancel(out, args[1], json_out)
        return
    if len(args) > 1:
        raise UserError(f"panel batches takes one run id, or 'cancel RUN': not {' '.join(args)}")
    if not (out / "panel.db").is_file():
        raise UserError(f"no runs in {out}")
    with Store(out, readonly=True) as store:
        run_id = _named_run(store, args[0]) if args else store.latest_batch_run()
        if run_id is None:
            raise UserError(f"no run in {out} has batches: they come from `panel review --route batch`")
        rows = store.batches(run_id)
        outcomes = store.batch_outcomes(run_id)
    if json_out:
        found = [{**_as_dict(row), "outcomes": outcomes.get(row.batch_key, {})} for row in rows]
        sys.stdout.write(json.dumps(found, indent=2) + "\n")
        return
    if not rows:
        out_console.print(f"run {run_id} has no batches", markup=False, highlight=False, soft_wrap=True)
        return
    _print_rows(run_id, rows, outcomes)


def _as_dict(row: BatchRow) -> dict[str, object]:
    return {
        "batch": row.batch_key,
        "run_id": row.run_id,
        "member": row.member,
        "backend": row.backend,
        "provider_id": row.provider_batch_id,
        "state": row.state,
        "requests": row.requests,
        "counts": row.counts,
        "attempt": row.attempt,
        "reserved_usd": round(row.reserved_usd, 6),
        "created": _iso(row.created_at),
        "updated": _iso(row.updated_at),
        "error": row.error,
    }


def _counts(counts: dict[str, object]) -> str:
    parts = [f"{counts.get('done', 0)}/{counts.get('total', 0)} done"] if "total" in counts else []
    parts += [f"{v} {k}" for k, v in counts.items() if k not in ("done", "total") and v]
    return ", ".join(parts) or "-"


def _outcomes(row: BatchRow, outcomes: dict[str, int]) -> str:
    """What became of each request once results are stored ("1 valid, 7 cancelled of 8"); the
    provider's counts before that (its "done" counts a request it cancelled)."""
    if not outcomes or set(outcomes) == {"waiting"}:
        return _counts(row.counts)
    said = ", ".join(f"{n} {outcome}" for outcome, n in outcomes.items())
    return f"{said} of {row.requests}"


def _print_rows(run_id: str, rows: list[BatchRow], outcomes: dict[str, dict[str, int]]) -> None:
    # Plain lines as `panel runs` prints them: ids stay whole, to copy.
    lines = [_HEAD]
    for row in rows:
        updated = datetime.fromtimestamp(row.updated_at).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(
            (
                row.batch_key,
                row.member,
                row.provider_batch_id or "-",
                row.state,
                str(row.requests),
                _outcomes(row, outcomes.get(row.batch_key, {})),
                str(row.attempt),
                updated,
            )
        )
    widths = [max(len(clean(line[i])) for line in lines) for i in range(len(_HEAD))]
    out_console.print(f"run {run_id}", markup=False, highlight=False, soft_wrap=True)
    for line in lines:
        text = "  ".join(clean(cell).ljust(width) for cell, width in zip(line, widths, strict=True))
        out_console.print(text.rstrip(), markup=False, highlight=False, soft_wrap=True)
    errors = [row for row in rows if row.error]
    for row in errors:
        out_console.print(
            clean(f"{row.batch_key}: {row.error}"), markup=False, highlight=False, soft_wrap=True
        )


def _named_run(store: Store, ref: str) -> str:
    """The run `ref` names; here `last` is the newest run with batches."""
    return resolve_run(store, ref, newest=store.latest_batch_run, what="run with batches")


def _cancel(out: Path, run_id: str, json_out: bool) -> None:
    if not (out / "panel.db").is_file():
        raise UserError(f"no run '{run_id}': {out} holds no runs")
    with Store(out) as store:
        run_id = _named_run(store, run_id)
        outcomes = asyncio.run(cancel_batches(store, run_id))
    if json_out:
        rows = [{"batch": o.row.batch_key, "state": o.state, "note": o.note} for o in outcomes]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if not outcomes:
        out_console.print(
            f"run {run_id} has no batch in flight: nothing to cancel",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return
    for o in outcomes:
        where = f"{o.row.member}, {o.row.provider_batch_id}" if o.row.provider_batch_id else o.row.member
        state = f": {o.state}" if o.state else ""
        out_console.print(
            clean(f"batch {o.row.batch_key} ({where}){state} ({o.note})"),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    asked = sum(o.note == "cancel asked" for o in outcomes)
    out_console.print(
        clean(
            f"asked the providers to cancel {asked} of {len(outcomes)} unfinished batches of run {run_id}; "
            f"collect what they finished (the rest is stored as failed) with: "
            f"{resume_command(run_id, resume_args(out))}"
        ),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")
