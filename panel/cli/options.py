"""Options that several commands take, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .progress import Mode

__all__ = [
    "RUN_HELP",
    "ConfigPath",
    "Level",
    "MaxTokens",
    "Members",
    "NoCache",
    "PersonaIds",
    "PersonasDir",
    "ProgressMode",
    "RunRef",
    "RunsDir",
    "Seed",
    "Target",
    "Temperature",
]  # fmt: skip

ConfigPath = Annotated[
    Path | None,
    typer.Option("--config", help="panel.toml; default ./panel.toml or [tool.panel] in ./pyproject.toml."),
]
ProgressMode = Annotated[
    Mode, typer.Option("--progress", help="bar (live, for people), jsonl (for scripts) or quiet.")
]
#: The runs folder, `--out` in every command (`--runs` is read as `--out`: see `apps.py`).
RunsDir = Annotated[
    Path,
    typer.Option("--out", envvar="PANEL_RUNS_DIR", help="Runs folder: panel.db and one folder per run."),
]
#: What an argument that names a run takes (read by `panel.run.runref.resolve_run`).
RUN_HELP = "A run id, a unique start of one, or 'last' (the newest finished run)."
RunRef = Annotated[str, typer.Argument(metavar="RUN", help=RUN_HELP, show_default=False)]
# Options `compare` and `review` share, declared once.
Members = Annotated[
    list[str] | None,
    typer.Option(
        "--backend",
        "-b",
        help="Panel member as backend:model (or a name from panel.toml); repeat for several. "
        "Default: the configured members, else local.",
    ),
]
PersonaIds = Annotated[
    list[str] | None, typer.Option("--persona", "-p", help="Persona id; repeat. Default: all.")
]
PersonasDir = Annotated[Path | None, typer.Option(help="Folder of persona files.")]
MaxTokens = Annotated[
    int | None,
    typer.Option(
        min=32,
        help="Token limit of each reply, for every member. Default: the member's max_tokens in "
        "panel.toml, else by its depth (brief 700, full 1600).",
    ),
]
Temperature = Annotated[float, typer.Option(min=0.0, max=2.0)]
Seed = Annotated[int, typer.Option(help="Sampling seed, for repeatable runs; repeat k uses seed + k.")]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Send every request, even ones already answered.")]


def _rule_share(value: float) -> float:
    """--target/--level as the rule takes them (`panel.report.triage.rule_share`: 3 decimals)."""
    from ..report.triage import rule_share

    return rule_share(value)


#: the triage rule's stated agreement and confidence (`panel triage --reference`, `review --escalate`)
Target = Annotated[
    float,
    typer.Option(
        "--target",
        callback=_rule_share,
        help="The agreement with the reference the published verdicts must reach, strictly between "
        "0 and 1; rounded to 3 decimals (0.9000001 is 0.9).",
    ),
]
Level = Annotated[
    float,
    typer.Option(
        "--level",
        callback=_rule_share,
        help="The confidence that they reach it, at least 0.5 and below 1; rounded to 3 decimals.",
    ),
]
