"""The `panel` command's Typer apps and the consoles and notices its commands print through."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from .._about import __version__
from .progress import Notices

__all__ = ["app", "backends_app", "err_console", "notices", "out_console", "personas_app"]


def _option_name(name: str) -> str:
    """An option's name as the commands declare it: `--runs`, the name `view` and `render`
    once gave the runs folder, is read as `--out`, the name every command gives it (an
    alias kept out of the help, so that the help speaks of one name)."""
    return "out" if name == "runs" else name


app = typer.Typer(
    help="A panel of LLM personas reviews software tools and drafts comparison records.",
    context_settings={"token_normalize_func": _option_name},
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help is plain text: "[tool.panel]" is a name, not markup
)
personas_app = typer.Typer(
    help="List and check persona files.", invoke_without_command=True, rich_markup_mode=None
)
app.add_typer(personas_app, name="personas")


def _print_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"panel {__version__}\n")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    pass


backends_app = typer.Typer(
    help="List backends, or check panel members.", invoke_without_command=True, rich_markup_mode=None
)
app.add_typer(backends_app, name="backends")

# No emoji codes: ":smile:" in a review, or "fake:m:" in a line, is data and prints as written.
out_console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)
# Lines on stderr around a run; a run command sets its mode, so that under
# `--progress jsonl` even an error is a JSON line.
notices = Notices(err_console)
