"""`panel backends` and `panel backends check`."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .._about import install_hint
from ..backends.check import CheckResult, backend_statuses, check_member
from ..config import load_config, resolve_members
from ..text import for_console
from .apps import backends_app, out_console
from .options import ConfigPath

__all__ = ["backends_check", "backends_list"]


@backends_app.callback()
def backends_list(ctx: typer.Context, config: ConfigPath = None) -> None:
    """List the backends, whether their SDK is installed and whether their key is set."""
    if ctx.invoked_subcommand is not None:
        return
    table = Table("backend", "installed", "install with", "key variable", "key set")
    for b in backend_statuses():
        key_set = "—" if b.key_present is None else ("yes" if b.key_present else "[red]no[/]")
        table.add_row(
            b.name,
            "yes" if b.installed else "[red]no[/]",
            escape(install_hint(b.extra)) if b.extra else "(built in)",
            b.key_env or "—",
            key_set,
        )
    out_console.print(table)
    panel_config = load_config(config)
    if panel_config.members:
        out_console.print(f"configured members ({for_console(panel_config.path)}):")
        for m in panel_config.members:
            out_console.print(
                f"  {for_console(m.spec)}" + (f"  (as {for_console(m.name)})" if m.name else "")
            )


@backends_app.command("check")
def backends_check(
    specs: Annotated[
        list[str] | None, typer.Argument(help="Members to check; default: the configured ones.")
    ] = None,
    config: ConfigPath = None,
) -> None:
    """Send each member one review request as a run would, at its depth; report its latency or the
    exact error (a server that cannot take the review schema fails here, before a run)."""
    members = resolve_members(specs or [], load_config(config))

    async def run_all() -> list[CheckResult]:
        return list(await asyncio.gather(*(check_member(m) for m in members)))

    failed = 0
    for result in asyncio.run(run_all()):
        if result.ok:
            out_console.print(
                f"[green]ok[/]    {for_console(result.member)}  {result.latency_s or 0:.2f} s  "
                f"{for_console(result.detail)}",
                highlight=False,
                soft_wrap=True,  # one line per member, however narrow: scripts grep them
            )
        else:
            failed += 1
            out_console.print(
                f"[red]fail[/]  {for_console(result.member)}  {for_console(result.detail)}",
                highlight=False,
                soft_wrap=True,
            )
    if failed:
        raise typer.Exit(1)
