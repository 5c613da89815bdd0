"""The `panel` command. It parses, shows progress and prints; the work lives elsewhere."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .backends.base import Sampling
from .backends.check import CheckResult, backend_statuses, check_member
from .config import load_config, resolve_members
from .errors import BackendBug, UserError
from .personas import load_persona, load_personas
from .pipeline import (
    Plan,
    RunOptions,
    load_record,
    plan_compare,
    plan_resume,
    plan_run,
    record_schema_text,
    run_plan,
    write_atomic,
    write_outputs,
)
from .progress import Mode, Reporter, summary_line
from .record import ComparisonRecord
from .render import FORMATS, render
from .resources import data_dir
from .review import diff_runs, estimate_cost, write_review_outputs
from .store import Store

__all__ = ["app", "main"]

app = typer.Typer(
    help="A panel of LLM personas reviews software tools and drafts comparison records.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
personas_app = typer.Typer(help="List and check persona files.", invoke_without_command=True)
app.add_typer(personas_app, name="personas")
backends_app = typer.Typer(help="List backends, or check panel members.", invoke_without_command=True)
app.add_typer(backends_app, name="backends")

out_console = Console()
err_console = Console(stderr=True)

ConfigPath = Annotated[
    Path | None,
    typer.Option("--config", help="panel.toml; default ./panel.toml or [tool.panel] in ./pyproject.toml."),
]
ProgressMode = Annotated[
    Mode, typer.Option("--progress", help="bar (live, for people), jsonl (for scripts) or quiet.")
]
RunsDir = Annotated[
    Path,
    typer.Option("--out", envvar="PANEL_RUNS_DIR", help="Runs folder: panel.db and one folder per run."),
]
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
MaxTokens = Annotated[int, typer.Option(min=32, help="Token limit of each reply.")]
Temperature = Annotated[float, typer.Option(min=0.0, max=2.0)]
Seed = Annotated[int, typer.Option(help="Sampling seed, for repeatable runs; repeat k uses seed + k.")]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Send every request, even ones already answered.")]


@app.command()
def compare(
    tools: Annotated[list[str], typer.Argument(help="Two or more tool ids from the catalog.")],
    catalog: Annotated[
        Path | None,
        typer.Option(help="Catalog file (YAML, JSON or JSONL); default examples/catalog.yaml."),
    ] = None,
    backend: Members = None,
    persona: PersonaIds = None,
    personas_dir: PersonasDir = None,
    config: ConfigPath = None,
    out: RunsDir = Path("runs"),
    json_out: Annotated[
        bool,
        typer.Option("--json", help="Print the record as JSON on stdout, and nothing else there."),
    ] = False,
    max_tokens: MaxTokens = 700,
    temperature: Temperature = 0.3,
    seed: Seed = 1234,
    no_cache: NoCache = False,
    progress: ProgressMode = "bar",
) -> None:
    """Review two tools with the whole panel and draft their comparison."""
    sampling = Sampling(temperature=temperature, max_tokens=max_tokens, seed=seed)
    panel_config = load_config(config)
    plan = plan_compare(
        tools,
        catalog=catalog,
        backends=backend or [],
        persona_ids=persona or [],
        personas_dir=personas_dir,
        sampling=sampling,
        config=panel_config,
    )
    options = RunOptions(use_cache=not no_cache, retry=panel_config.retry.policy())
    with Store(out) as store, Reporter(progress, plan.total, err_console) as reporter:
        command = _command_line()
        run_id, stats = asyncio.run(run_plan(plan, store, command, reporter.update, options))
        reporter.finish(stats)
        record = load_record(store, run_id)
        folder = write_outputs(store, record)
    if json_out:
        sys.stdout.write(record.model_dump_json(indent=2) + "\n")
        err_console.print(f"wrote {folder}")
        return
    _print_record(record)
    out_console.print(f"\nwrote [bold]{folder}[/] (comparison.json, comparison.md, comparison.html)")


@app.command()
def review(
    catalog: Annotated[
        Path | None, typer.Argument(help="Catalog file; default examples/catalog.yaml.")
    ] = None,
    backend: Members = None,
    persona: PersonaIds = None,
    tools: Annotated[str | None, typer.Option(help="Only these tool ids, comma-separated.")] = None,
    max_cost: Annotated[
        float | None,
        typer.Option(min=0.0, help="Stop cleanly before spending more than this, in USD."),
    ] = None,
    resume: Annotated[str | None, typer.Option(help="Finish an interrupted or stopped run.")] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Copy unchanged reviews from this run (or 'last') and re-review only the rest."),
    ] = None,
    no_cache: NoCache = False,
    repeats: Annotated[
        int,
        typer.Option(min=1, help="Review every cell N times (seeds differ), for self-consistency."),
    ] = 1,
    personas_dir: PersonasDir = None,
    prices: Annotated[
        Path | None, typer.Option(help="Price file (TOML); default the bundled prices.toml.")
    ] = None,
    config: ConfigPath = None,
    out: RunsDir = Path("runs"),
    max_tokens: MaxTokens = 700,
    temperature: Temperature = 0.3,
    seed: Seed = 1234,
    progress: ProgressMode = "bar",
) -> None:
    """Review a whole catalog: every tool x persona x member, within limits and a budget.

    Exit codes: 0 done, 2 bad input, 3 stopped at the budget (finish it with --resume).
    """
    panel_config = load_config(config)
    db_exists = (out / "panel.db").is_file()
    if resume:
        if catalog or tools or backend or persona or since or repeats != 1:
            raise UserError(
                "--resume finishes a run as it was planned: give no catalog, tools, members or personas"
            )
        if not db_exists:
            raise UserError(f"no run '{resume}': {out} holds no runs")
    else:
        # Every input is checked before the store is opened, so bad input writes nothing.
        plan = plan_run(
            [t.strip() for t in tools.split(",") if t.strip()] if tools else None,
            catalog=catalog,
            backends=backend or [],
            persona_ids=persona or [],
            personas_dir=personas_dir,
            config=panel_config,
            prices=prices,
            repeats=repeats,
            sampling=Sampling(temperature=temperature, max_tokens=max_tokens, seed=seed),
        )
        _check_prices(plan, max_cost)
        if since and not db_exists:
            raise UserError(f"--since: {out} holds no runs to compare with")
    with Store(out) as store:
        if resume:
            plan = plan_resume(store, resume, prices)
            _check_prices(plan, max_cost)
            recorded = store.get_run(resume)
            since_run = recorded.config.get("since") if recorded else None
        else:
            since_run = store.latest_run() if since == "last" else since
            if since and since_run is None:
                raise UserError("--since last: there is no finished run to compare with")
            if since_run and store.get_run(since_run) is None:
                raise UserError(f"--since: no run '{since_run}' in {store.path}")
        estimate = estimate_cost(plan)
        if progress != "quiet":
            cost = (
                f"; estimated ${estimate.expected_usd:.4f}, at most ${estimate.worst_usd:.4f}"
                if estimate.priced
                else ""
            )
            err_console.print(
                f"plan: {plan.total} reviews = {len(plan.tools)} tools x {len(plan.personas)} personas x "
                f"{len(plan.members)} members"
                + (f" x {plan.repeats} repeats" if plan.repeats > 1 else "")
                + cost,
                highlight=False,
            )
        options = RunOptions(
            use_cache=not no_cache, max_cost=max_cost, since_run=since_run, retry=panel_config.retry.policy()
        )
        with Reporter(progress, plan.total, err_console) as reporter:
            command = _command_line()
            run_id, stats = asyncio.run(run_plan(plan, store, command, reporter.update, options, resume))
            reporter.finish(stats)
        folder = write_review_outputs(store, run_id)
        line = summary_line(stats, reporter.elapsed)
        if since_run:
            flipped = diff_runs(store, since_run, run_id).flipped
            line += f" · {len(flipped)} verdicts flipped since {since_run}"
    out_console.print(f"{run_id}: {line}", highlight=False)
    out_console.print(f"wrote {folder} (reviews.jsonl, tools/)", highlight=False)
    if stats.stopped == "budget":
        err_console.print(
            f"stopped before going over the budget of ${max_cost:.4f}: "
            f"{stats.done} of {stats.total} reviews done. "
            f"Finish with: panel review --resume {run_id} --max-cost MORE",
            highlight=False,
        )
        raise typer.Exit(3)


def _command_line() -> str:
    """The command as typed, recorded with the run."""
    return "panel " + shlex.join(sys.argv[1:])


def _check_prices(plan: Plan, max_cost: float | None) -> None:
    unpriced = [m.backend.label for m in plan.members if m.price is None]
    if max_cost is not None and unpriced:
        raise UserError(
            f"--max-cost needs a price for {', '.join(unpriced)}: add it to the price file "
            "(--prices FILE) or set price_input and price_output on the member in panel.toml"
        )


@app.command()
def diff(
    run_a: str,
    run_b: str,
    out: RunsDir = Path("runs"),
    json_out: Annotated[bool, typer.Option("--json", help="Print the diff as JSON.")] = False,
) -> None:
    """Verdicts that flipped between two runs."""
    with Store(out) as store:
        for run_id in (run_a, run_b):
            if store.get_run(run_id) is None:
                raise UserError(f"no run '{run_id}' in {store.path}")
        result = diff_runs(store, run_a, run_b)
    if json_out:
        sys.stdout.write(json.dumps(result.as_dict(), indent=2) + "\n")
        return
    out_console.print(
        f"{result.same} cells unchanged, {len(result.flipped)} flipped, "
        f"{result.only_a} only in {run_a}, {result.only_b} only in {run_b}"
    )
    if result.flipped:
        table = Table("tool", "persona", "member", "repeat", run_a, run_b)
        for f in result.flipped:
            cells = [*f.key[:3], str(f.key.repeat), f.before or "failed", f.after or "failed"]
            table.add_row(*(escape(c) for c in cells))
        out_console.print(table)


@app.command()
def runs(out: RunsDir = Path("runs"), limit: int = 20) -> None:
    """List past runs, newest first."""
    if not (out / "panel.db").is_file():
        out_console.print(f"no runs yet in {out}")
        return
    with Store(out) as store:
        table = Table("run", "started", "status", "reviews", "valid", "command")
        for run, n, ok in store.list_runs(limit):
            started = datetime.fromtimestamp(run.created_at).strftime("%Y-%m-%d %H:%M")
            table.add_row(run.id, started, run.status, str(n), str(ok), escape(run.command))
        out_console.print(table)


@app.command()
def show(run_id: str, out: RunsDir = Path("runs")) -> None:
    """Print a past run's scorecard and headline."""
    with Store(out) as store:
        _print_record(load_record(store, run_id))


@app.command("render")
def render_run(
    run_id: str,
    fmt: Annotated[str, typer.Option("--format", "-f", help="html, md or json.")] = "html",
    file: Annotated[Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")] = None,
    out: Annotated[
        Path,
        typer.Option("--runs", envvar="PANEL_RUNS_DIR", help="Runs folder: panel.db and one folder per run."),
    ] = Path("runs"),
) -> None:
    """Render a past run's comparison record as an HTML page, Markdown or JSON."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format '{fmt}': use one of {', '.join(FORMATS)}")
    with Store(out) as store:
        text = render(load_record(store, run_id), fmt)
    if file is None:
        sys.stdout.write(text)
        return
    write_atomic(file, text)
    err_console.print(f"wrote {file}")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the comparison record."""
    sys.stdout.write(record_schema_text())


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
        table.add_row(p.id, escape(p.name), escape(p.lens), ", ".join(q.key for q in p.questions), p.version)
    out_console.print(table)


@personas_app.command("validate")
def personas_validate(
    paths: Annotated[list[Path] | None, typer.Argument(help="Persona files or folders.")] = None,
) -> None:
    """Check persona files and show the review schema each one yields."""
    files: list[Path] = []
    for path in paths or [data_dir("personas")]:
        files += sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    for file in files:
        persona = load_persona(file)
        fields = ", ".join(persona.review_schema["properties"]["answers"]["properties"])
        out_console.print(
            f"ok  {file}  ({persona.id}: answers {fields}; verdict {'/'.join(persona.verdicts)})"
        )


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
            escape(f"pip install 'panel[{b.extra}]'") if b.extra else "(built in)",
            b.key_env or "—",
            key_set,
        )
    out_console.print(table)
    panel_config = load_config(config)
    if panel_config.members:
        out_console.print(f"configured members ({panel_config.path}):")
        for m in panel_config.members:
            out_console.print(f"  {m.spec}" + (f"  (as {m.name})" if m.name else ""))


@backends_app.command("check")
def backends_check(
    specs: Annotated[
        list[str] | None, typer.Argument(help="Members to check; default: the configured ones.")
    ] = None,
    config: ConfigPath = None,
) -> None:
    """Send one tiny request to each member and report its latency or the exact error."""
    members = resolve_members(specs or [], load_config(config))

    async def run_all() -> list[CheckResult]:
        return list(await asyncio.gather(*(check_member(m) for m in members)))

    failed = 0
    for result in asyncio.run(run_all()):
        if result.ok:
            out_console.print(
                f"[green]ok[/]    {escape(result.member)}  {result.latency_s or 0:.2f} s  "
                f"{escape(result.detail)}",
                highlight=False,
            )
        else:
            failed += 1
            out_console.print(
                f"[red]fail[/]  {escape(result.member)}  {escape(result.detail)}", highlight=False
            )
    if failed:
        raise typer.Exit(1)


def _print_record(record: ComparisonRecord) -> None:
    # Catalog and model text may hold square brackets: escape it, or rich reads it as markup.
    table = Table(title=f"Reviewer scorecard — {escape(record.title)}", show_lines=False)
    table.add_column("tool")
    table.add_column("persona")
    if len(record.panel.members) > 1:
        table.add_column("member")
    table.add_column("verdict")
    table.add_column("note", overflow="fold", max_width=70)
    for card in record.tools:
        for e in card.scorecard:
            verdict = escape(e.verdict or "") if e.valid else "[red]failed[/]"
            note = (e.verdict_note or "") if e.valid else (e.error or "")
            row = [card.name, e.persona_name]
            if len(record.panel.members) > 1:
                row.append(e.member)
            table.add_row(*(escape(cell) for cell in row), verdict, escape(note))
    out_console.print(table)
    for card in record.tools:
        failed = f", {card.panel.failed} failed" if card.panel.failed else ""
        out_console.print(
            f"{escape(card.name)}: panel ship [bold]{card.panel.display}[/] ({card.panel.ship} of "
            f"{card.panel.valid} valid{failed}) · community {card.community.display}"
            f" · entry {card.entry.label}"
        )
    out_console.print(f"[bold]{escape(record.headline.text)}[/]")


from .agreement_cli import agreement as _agreement  # noqa: E402

app.command("agreement")(_agreement)


def main() -> None:
    try:
        app()
    except (UserError, BackendBug) as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
