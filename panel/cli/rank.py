"""`panel rank`: the command and its options. The ranking itself (:mod:`panel.cli.ranking`)
needs the analysis extra (numpy, choix), so it is imported only when the command runs: every
other command starts without it, and without the extra this one says so in one line."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated, Literal

import typer

from ..errors import MissingExtraError
from .apps import app
from .options import (
    ConfigPath,
    MaxTokens,
    Members,
    NoCache,
    PersonaIds,
    PersonasDir,
    ProgressMode,
    RunsDir,
)

__all__ = ["rank"]


@app.command()
def rank(
    category: Annotated[str | None, typer.Option(help="Rank every tool of this catalog category.")] = None,
    tools: Annotated[str | None, typer.Option(help="Rank these tool ids, comma-separated.")] = None,
    catalog: Annotated[
        Path | None, typer.Option(help="Catalog file (YAML, JSON or JSONL); default examples/catalog.yaml.")
    ] = None,
    backend: Members = None,
    persona: PersonaIds = None,
    personas_dir: PersonasDir = None,
    config: ConfigPath = None,
    prices: Annotated[
        Path | None, typer.Option(help="Price file (TOML); default the bundled prices.toml.")
    ] = None,
    budget: Annotated[
        str | None,
        typer.Option(
            metavar="'N pairs'|'$USD'",
            help="The most pairs to ask ('60 pairs') or the most to spend ('$0.50'). Default: "
            "N log2 N pairs for N tools.",
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Seed of the models' sampling, the first round's cycle and the bootstrap.")
    ] = 1234,
    fmt: Annotated[
        Literal["table", "json"],
        typer.Option("--format", help="table (the board's first lines) or json (the whole board on stdout)."),
    ] = "table",
    resume: Annotated[
        str | None,
        typer.Option(help="Finish an interrupted or stopped ranking: its id, or a unique start of it."),
    ] = None,
    out: RunsDir = Path("runs"),
    max_tokens: MaxTokens = None,
    no_cache: NoCache = False,
    progress: ProgressMode = "bar",
) -> None:
    """Rank tools from head-to-head judgements (Bradley-Terry, pairs chosen adaptively).

    Each persona on each member names the tool it would ship with for each pair asked, in both
    orders. Exit codes: 0 done, 2 bad input, 3 stopped at the cost budget or a member's server
    went away (finish with --resume), 130 interrupted.
    """
    for module in ("numpy", "choix", "threadpoolctl"):
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError("panel rank", module, "analysis")
    from .ranking import rank_tools

    rank_tools(
        category, tools, catalog, backend, persona, personas_dir, config, prices, budget, seed, fmt,
        resume, out, max_tokens, no_cache, progress,
    )  # fmt: skip
