"""`panel regenerate`: set one review of a run aside and make it again with a new seed."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import UserError
from ..run.regenerate import regenerate_review
from ..run.runref import resolve_run
from ..store import CellKey, Store
from .apps import out_console
from .options import RunRef, RunsDir

__all__ = ["regenerate"]


def regenerate(
    run_id: RunRef,
    tool: Annotated[str, typer.Argument(help="The review's tool id.")],
    persona: Annotated[str, typer.Argument(help="The review's persona id.")],
    member: Annotated[
        str,
        typer.Argument(
            help="The review's panel member: as the run names it, or as it was given (a name in "
            "panel.toml, backend:model, or the backend alone when one member has it)."
        ),
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why: kept with the review set aside.")],
    repeat: Annotated[int, typer.Option(min=0, help="The review's repeat.")] = 0,
    out: RunsDir = Path("runs"),
    prices: Annotated[Path | None, typer.Option(help="Price file, as the run was given.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the new review's outcome as JSON.")] = False,
) -> None:
    """Regenerate one review: the same persona and member, a new seed; the old one is kept."""
    key = CellKey(tool, persona, member, repeat)
    if not (out / "panel.db").is_file():  # a mistyped --out would otherwise become a new store
        raise UserError(
            f"{out}: no run store here (panel.db); give the runs folder of run '{run_id}' with --out"
        )
    with Store(out) as store:
        run_id = resolve_run(store, run_id)
        result = asyncio.run(regenerate_review(store, run_id, key, reason, prices=prices))
        status = store.get_run(run_id)
    member = result.cell.backend.label  # as the run names it
    outcome = {
        "run_id": run_id,
        "tool": tool,
        "persona": persona,
        "member": member,
        "repeat": repeat,
        "valid": result.valid,
        "verdict": result.verdict,
        "error": result.error,
        "run_status": status.status if status else None,
    }
    if json_out:
        sys.stdout.write(json.dumps(outcome) + "\n")
        return
    said = result.verdict if result.valid else f"failed: {result.error}"
    out_console.print(
        f"regenerated {tool} by {persona} on {member}: {said}; run {run_id} is {outcome['run_status']}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
