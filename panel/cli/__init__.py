"""The `panel` command. It parses, shows progress and prints; the work lives elsewhere."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .._about import __version__, install_hint
from ..backends.base import Sampling
from ..backends.check import CheckResult, backend_statuses, check_member
from ..config import load_config, resolve_members
from ..errors import UserError
from ..personas import load_persona, load_personas, persona_files
from ..report.files import diff_runs, write_review_outputs
from ..report.record import ComparisonRecord
from ..report.render import FORMATS, render
from ..resources import data_dir
from ..run.engine import RunStats
from ..run.job import (
    Job,
    RunInterrupted,
    announce_plan,
    budget_resume_command,
    resume_args,
    resume_command,
    resume_target,
    run_kind,
)
from ..run.plan import (
    Plan,
    RunOptions,
    load_record,
    plan_compare,
    plan_resume,
    plan_run,
    record_schema_text,
    start_run,
    write_atomic,
    write_outputs,
)
from ..run.progress import Mode, Notices, summary_line
from ..store import Store
from ..text import clean, for_console

__all__ = ["app", "main"]

app = typer.Typer(
    help="A panel of LLM personas reviews software tools and drafts comparison records.",
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
    """Review two tools with the whole panel and draft their comparison.

    Exit codes: 0 done, 1 no review was valid, 2 bad input or a file that cannot be written,
    130 interrupted (the line printed says how to resume).
    """
    notices.mode = progress
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
    options = RunOptions(use_cache=not no_cache, retry=panel_config.retry.policy(), kind="compare")
    again = resume_args(out, config=config, no_cache=no_cache)
    with Store(out) as store:
        announce_plan(plan, notices)
        command = _command_line()
        job = _job(store, plan, start_run(plan, store, command, options), progress, options, again)
        stats = job.run(command, lambda rid, status: write_outputs(store, load_record(store, rid, status)))
        record = load_record(store, job.run_id)
        folder = store.run_dir(job.run_id)
    if json_out:
        sys.stdout.write(record.model_dump_json(indent=2) + "\n")
        notices.say("wrote", f"wrote {folder}", folder=str(folder))
    else:
        _print_record(record)
        out_console.print(
            f"\nwrote [bold]{for_console(folder)}[/] (comparison.json, comparison.md, comparison.html)"
        )
    _fail_if_none_valid(stats, job.run_id, folder / "comparison.json")


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
    resume: Annotated[
        str | None,
        typer.Option(
            help="Finish an interrupted, stopped or failed run (of review or compare), "
            "or 'last' for the newest such run."
        ),
    ] = None,
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

    Exit codes: 0 done, 1 no review was valid, 2 bad input or a file that cannot be written,
    3 stopped at the budget (finish it with --resume), 130 interrupted (the line printed
    says how to resume).
    """
    notices.mode = progress
    panel_config = load_config(config)
    db_exists = (out / "panel.db").is_file()
    if resume:
        if catalog or tools or backend or persona or since or repeats != 1:
            raise UserError(
                "--resume finishes a run as it was planned: give no catalog, tools, members or personas"
            )
        if not db_exists:
            if resume == "last":
                raise UserError(f"--resume last: no unfinished run in {out}")
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
    again = resume_args(out, config=config, no_cache=no_cache, prices=prices, max_cost=max_cost)
    with Store(out) as store:
        command = _command_line()
        kind = "review"
        if resume:
            run_id = resume_target(store, resume)
            plan = plan_resume(store, run_id, prices)
            _check_prices(plan, max_cost)
            recorded = store.get_run(run_id)
            since_run = recorded.config.get("since") if recorded else None
            kind = run_kind(recorded) if recorded else "review"
        else:
            since_run = store.latest_run() if since == "last" else since
            if since and since_run is None:
                raise UserError("--since last: there is no finished run to compare with")
            if since_run and store.get_run(since_run) is None:
                raise UserError(f"--since: no run '{since_run}' in {store.path}")
        options = RunOptions(
            use_cache=not no_cache,
            max_cost=max_cost,
            since_run=since_run,
            retry=panel_config.retry.policy(),
            kind=kind,
        )
        announce_plan(plan, notices)
        if not resume:
            run_id = start_run(plan, store, command, options)
        job = _job(store, plan, run_id, progress, options, again)
        if kind == "compare":
            stats = job.run(
                command, lambda rid, status: write_outputs(store, load_record(store, rid, status))
            )
            files = "comparison.json, comparison.md, comparison.html"
        else:
            stats = job.run(command, lambda rid, status: write_review_outputs(store, rid, status))
            files = "reviews.jsonl, tools/"
        folder = store.run_dir(run_id)
        line = summary_line(stats, job.elapsed)
        if since_run:
            flipped = diff_runs(store, since_run, run_id).flipped
            line += f" · {len(flipped)} verdicts flipped since {since_run}"
    out_console.print(f"{run_id}: {line}", highlight=False, markup=False, soft_wrap=True)
    out_console.print(f"wrote {folder} ({files})", highlight=False, markup=False, soft_wrap=True)
    if stats.stopped == "budget":
        more = budget_resume_command(run_id, again)
        notices.say(
            "stopped",
            f"stopped before going over the budget of ${max_cost:.4f}: "
            f"{stats.done} of {stats.total} reviews done. Finish with: {more}",
            run_id=run_id,
            done=stats.done,
            total=stats.total,
            resume=more,
        )
        raise typer.Exit(3)
    _fail_if_none_valid(stats, run_id, folder / ("comparison.json" if kind == "compare" else "reviews.jsonl"))


def _job(
    store: Store, plan: Plan, run_id: str, progress: Mode, options: RunOptions, resume_args: list[str]
) -> Job:
    return Job(store, plan, run_id, notices, err_console, progress, options, resume_args)


def _fail_if_none_valid(stats: RunStats, run_id: str, errors_in: Path) -> None:
    if stats.total and stats.valid == 0 and not stats.stopped:
        notices.say(
            "failed",
            f"no review of run {run_id} is valid: every one failed (the errors are in {errors_in})",
            run_id=run_id,
        )
        raise typer.Exit(1)


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
    with Store(out, readonly=True) as store:
        for run_id in (run_a, run_b):
            if store.get_run(run_id) is None:
                raise UserError(f"no run '{run_id}' in {store.path}")
        result = diff_runs(store, run_a, run_b)
    if json_out:
        sys.stdout.write(json.dumps(result.as_dict(), indent=2) + "\n")
        return
    out_console.print(
        for_console(
            f"{result.same} cells unchanged, {len(result.flipped)} flipped, "
            f"{result.only_a} only in {run_a}, {result.only_b} only in {run_b}"
        ),
        highlight=False,
    )
    if result.flipped:
        table = Table("tool", "persona", "member", "repeat", for_console(run_a), for_console(run_b))
        for f in result.flipped:
            cells = [*f.key[:3], str(f.key.repeat), f.before or "failed", f.after or "failed"]
            table.add_row(*(for_console(c) for c in cells))
        out_console.print(table)


RunStatus = Literal["done", "running", "stopped", "interrupted", "failed"]


@app.command()
def runs(
    out: RunsDir = Path("runs"),
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs.")] = 20,
    status: Annotated[RunStatus | None, typer.Option(help="Only runs with this status.")] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the runs as one JSON array on stdout.")
    ] = False,
) -> None:
    """List past runs, newest first, with their whole ids."""
    if not (out / "panel.db").is_file():
        if json_out:
            sys.stdout.write("[]\n")
        else:
            out_console.print(f"no runs yet in {out}", markup=False, highlight=False, soft_wrap=True)
        return
    with Store(out, readonly=True) as store:
        found = store.list_runs(limit, status)
    if json_out:
        rows = [
            {
                "id": run.id,
                "status": run.status,
                "started": _iso(run.created_at),
                "finished": _iso(run.finished_at) if run.finished_at else None,
                "reviews": n,
                "valid": ok,
                "command": run.command,
            }
            for run, n, ok in found
        ]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if not found:
        which = f"{status} " if status else ""
        out_console.print(f"no {which}runs in {out}", markup=False, highlight=False, soft_wrap=True)
        return
    # Plain lines, not a table: a table squeezed into a narrow terminal cuts or folds the
    # ids, and the id is what people copy into the next command.
    lines = [("run", "status", "valid", "started", "command")]
    for run, n, ok in found:
        started = datetime.fromtimestamp(run.created_at).strftime("%Y-%m-%d %H:%M")
        lines.append((run.id, run.status, f"{ok}/{n}", started, clean(run.command)))
    widths = [max(len(row[i]) for row in lines) for i in range(4)]
    for row in lines:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[4]
        out_console.print(line, markup=False, highlight=False, soft_wrap=True)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


@app.command()
def show(run_id: str, out: RunsDir = Path("runs")) -> None:
    """Print a past run's scorecard and headline."""
    with Store(out, readonly=True) as store:
        record = load_record(store, run_id)
    _print_record(record)
    _note_unfinished(record, out)


def _note_unfinished(record: ComparisonRecord, out: Path) -> None:
    """A partial run's figures are not the panel's verdict: say so where a person looks."""
    state = record.run
    if state.complete:
        return
    missing = f"{state.missing} of {state.planned} reviews missing" if state.missing else "no review missing"
    resume = resume_command(record.run_id, resume_args(out))
    err_console.print(
        for_console(
            f"note: run {record.run_id} is not finished ({state.status}, {missing}): its figures are "
            f"partial. Finish it with: {resume}"
        ),
        highlight=False,
        soft_wrap=True,
    )


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
    if file is not None and file.is_dir():
        raise UserError(f"--out {file} is a folder: give the name of the file to write")
    with Store(out, readonly=True) as store:
        record = load_record(store, run_id)
    text = render(record, fmt)
    _note_unfinished(record, out)
    if file is None:
        sys.stdout.write(text)
        return
    write_atomic(file, text)
    err_console.print(f"wrote {for_console(file)}")


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
    """Send one tiny request to each member and report its latency or the exact error."""
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
            )
        else:
            failed += 1
            out_console.print(
                f"[red]fail[/]  {for_console(result.member)}  {for_console(result.detail)}", highlight=False
            )
    if failed:
        raise typer.Exit(1)


def _print_record(record: ComparisonRecord) -> None:
    # Catalog and model text is data: no markup, no emoji codes, no terminal controls.
    table = Table(title=f"Reviewer scorecard — {for_console(record.title)}", show_lines=False)
    table.add_column("tool")
    table.add_column("persona")
    if len(record.panel.members) > 1:
        table.add_column("member")
    table.add_column("verdict")
    table.add_column("note", overflow="fold", max_width=70)
    for card in record.tools:
        for e in card.scorecard:
            verdict = for_console(e.verdict or "") if e.valid else "[red]failed[/]"
            note = (e.verdict_note or "") if e.valid else (e.error or "")
            row = [card.name, e.persona_name]
            if len(record.panel.members) > 1:
                row.append(e.member)
            table.add_row(*(for_console(cell) for cell in row), verdict, for_console(note))
    out_console.print(table)
    for card in record.tools:
        failed = f", {card.panel.failed} failed" if card.panel.failed else ""
        out_console.print(
            f"{for_console(card.name)}: panel ship [bold]{card.panel.display}[/] ({card.panel.ship} of "
            f"{card.panel.valid} valid{failed}) · community {card.community.display}"
            f" · entry {card.entry.label}"
        )
    out_console.print(f"[bold]{for_console(record.headline.text)}[/]")


from .agreement import agreement as _agreement  # noqa: E402

app.command("agreement")(_agreement)


def main() -> None:
    notices.reset()  # a run command sets its mode; main may run many times in one process
    try:
        app()
    except UserError as exc:
        if notices.mode == "jsonl":
            notices.say("error", f"error: {exc}")
        else:
            err_console.print(f"[bold red]error:[/] {for_console(exc)}", highlight=False, soft_wrap=True)
        raise SystemExit(exc.exit_code) from None
    except RunInterrupted as exc:
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
