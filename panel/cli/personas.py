"""`panel personas` and `panel personas validate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..personas import load_persona, load_personas, persona_files
from ..resources import data_dir
from ..text import for_console
from .apps import out_console, personas_app
from .options import PersonasDir

__all__ = ["personas_list", "personas_validate"]


@personas_app.callback()
def personas_list(
    ctx: typer.Context,
    personas_dir: PersonasDir = None,
) -> None:
    """List the personas and their questions."""
    if ctx.invoked_subcommand is not None:
        return
    folder = personas_dir or data_dir("personas")
    table = Table("id", "name", "lens", "questions", "version")
    for p in load_personas(folder).values():
        table.add_row(
            for_console(p.id),
            for_console(p.name),
            for_console(p.lens),
            ", ".join(q.key for q in p.questions),
            p.version,
        )
    out_console.print(table)


@personas_app.command("validate")
def personas_validate(
    paths: Annotated[list[Path] | None, typer.Argument(help="Persona files or folders.")] = None,
) -> None:
    """Check persona files and show the review schema each one yields."""
    files: list[Path] = []
    for path in paths or [data_dir("personas")]:
        files += persona_files(path)
    for file in files:
        persona = load_persona(file)
        fields = ", ".join(persona.review_schema["properties"]["answers"]["properties"])
        verdicts = "/".join(persona.verdicts)
        out_console.print(
            for_console(f"ok  {file}  ({persona.id}: answers {fields}; verdict {verdicts})"), highlight=False
        )
