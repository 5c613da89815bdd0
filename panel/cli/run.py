"""`panel compare` and `panel review`: parse, hand the run to `panel.cli.execute`, print how it ended."""

from __future__ import annotations

import shlex
import sqlite3
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..backends.base import Sampling
from ..config import load_config
from ..errors import UserError
from ..report.files import write_triage
from ..report.load import load_record
from ..report.triage import check_labels, check_rule, parse_reference, require_rule
from ..run.batch import DEFAULT_POLL_S
from ..run.plan import plan_compare, plan_run, require_prices
from ..run.resume import budget_resume_command, resume_args, resume_command, resume_target
from ..run.runref import LAST
from ..store import BatchRow, Store
from ..text import clean, for_console
from .apps import app, err_console, notices, out_console
from .execute import Outcome, RunRequest, execute
from .head_to_head import print_head_to_head
from .options import (
    ConfigPath,
    Level,
    MaxTokens,
    Members,
    NoCache,
    PersonaIds,
    PersonasDir,
    ProgressMode,
    RunsDir,
    Seed,
    Target,
    Temperature,
)
from .past import print_record
from .progress import summary_line

__all__ = ["TRIAGE_NOT_WRITTEN", "compare", "review"]

#: `review --escalate`: the run finished and its files are written, but triage.json is not
TRIAGE_NOT_WRITTEN = 4

Rebuttal = Annotated[
    bool,
    typer.Option(
        "--rebuttal",
        help="After the first round, each reviewer reads the others' reviews of the tool (names "
        "removed) and keeps or changes its verdict; the record shows both rounds.",
    ),
]

HeadToHead = Annotated[
    bool,
    typer.Option(
        "--head-to-head",
        help="Also ask each persona on each member which of each pair of tools it would ship "
        "with, twice with the order swapped; a pick by position counts as a tie.",
    ),
]


HeadToHeadPairs = Annotated[
    list[str] | None,
    typer.Option(
        "--head-to-head",
        metavar="TOOL_A:TOOL_B",
        help="After the reviews, ask each persona on each member which of these two tools it "
        "would ship with, twice with the order swapped (repeat for more pairs).",
    ),
]


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
    max_tokens: MaxTokens = None,
    temperature: Temperature = 0.3,
    seed: Seed = 1234,
    no_cache: NoCache = False,
    progress: ProgressMode = "bar",
    rebuttal: Rebuttal = False,
    head_to_head: HeadToHead = False,
) -> None:
    """Review two tools with the whole panel and draft their comparison.

    Exit codes: 0 done, 1 no review was valid, 2 bad input or a file that cannot be written,
    3 a member's server went away and the run stopped sending to it (finish with --resume),
    130 interrupted (the line printed says how to resume).
    """
    notices.mode = progress
    sampling = Sampling(temperature=temperature, seed=seed)
    panel_config = load_config(config)
    plan = plan_compare(
        tools,
        max_tokens=max_tokens,
        catalog=catalog,
        backends=backend or [],
        persona_ids=persona or [],
        personas_dir=personas_dir,
        sampling=sampling,
        config=panel_config,
        rebuttal=rebuttal,
        head_to_head=head_to_head,
    )
    request = RunRequest(
        "compare",
        plan,
        use_cache=not no_cache,
        retry=panel_config.retry.policy(),
        progress=progress,
        resume_args=resume_args(out, config=config, no_cache=no_cache),
    )
    with Store(out) as store:
        outcome = execute(store, request, _command_line(), notices, err_console)
        record = load_record(store, outcome.run_id)
        if not json_out:
            print_record(record)
            print_head_to_head(store, outcome.run_id, [t.id for t in plan.tools])
    if json_out:
        sys.stdout.write(record.model_dump_json(indent=2) + "\n")
        notices.say("wrote", f"wrote {outcome.folder}", folder=str(outcome.folder))
    else:
        out_console.print(f"\nwrote [bold]{for_console(outcome.folder)}[/] ({outcome.files})")
    _fail_if_none_valid(outcome)
    _exit_if_member_stopped(outcome)


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
            help="Finish an interrupted, stopped or failed run (of review or compare): its id, a "
            "unique start of it, or 'last' for the newest such run."
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Copy unchanged reviews from this run (an id, a unique start of one, or 'last') "
            "and re-review only the rest."
        ),
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
    max_tokens: MaxTokens = None,
    temperature: Temperature = 0.3,
    seed: Seed = 1234,
    progress: ProgressMode = "bar",
    route: Annotated[
        str | None,
        typer.Option(
            metavar="live|batch",
            help="live or batch (the providers' Batch APIs: half price, results within 24 h). "
            "Default: each member's route in panel.toml, else live.",
        ),
    ] = None,
    poll_interval: Annotated[
        float, typer.Option(min=0.0, help="Seconds between two polls of the batches in flight.")
    ] = DEFAULT_POLL_S,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach", help="Submit the batches, then exit, printing the command that collects them."
        ),
    ] = False,
    reask: Annotated[
        str,
        typer.Option(
            metavar="batch|live", help="Re-ask invalid batch replies in a follow-up batch (batch) or live."
        ),
    ] = "batch",
    rebuttal: Rebuttal = False,
    head_to_head: HeadToHeadPairs = None,
    escalate: Annotated[
        bool,
        typer.Option(
            "--escalate",
            help="After the run, write triage.json: which verdicts can be published unread at "
            "--target agreement with --reference, and which need an editor.",
        ),
    ] = False,
    reference: Annotated[
        str,
        typer.Option(
            "--reference",
            metavar="editors|LABELS.csv|community",
            help="With --escalate: the labels the rule is checked on.",
        ),
    ] = "editors",
    target: Target = 0.9,
    level: Level = 0.95,
) -> None:
    """Review a whole catalog: every tool x persona x member, within limits and a budget.

    Exit codes: 0 done (or detached with batches in flight), 1 no review was valid, 2 bad
    input or a file that cannot be written, 3 stopped at the budget or a member's server went
    away (finish it with --resume), 4 (--escalate) the run is done and stored but triage.json
    could not be written (the line printed says why and which `panel triage` gives it),
    130 interrupted (the line printed says how to resume).
    """
    notices.mode = progress
    if route is not None and route not in ("live", "batch"):
        raise UserError(f"--route: '{route}' is not a route: use live or batch")
    if reask not in ("batch", "live"):
        raise UserError(f"--reask: '{reask}' is not batch or live")
    if escalate:  # checked before the run: bad input writes nothing
        check_rule(target, level)
        parse_reference(reference)
        require_rule()
    panel_config = load_config(config)
    plan = None
    if resume:
        if (
            catalog
            or tools
            or backend
            or persona
            or since
            or repeats != 1
            or route
            or rebuttal
            or head_to_head
        ):
            raise UserError(
                "--resume finishes a run as it was planned: give no catalog, tools, members, "
                "personas, route, --rebuttal or --head-to-head"
            )
        if not (out / "panel.db").is_file():
            if resume == LAST:
                raise UserError(f"--resume {LAST}: no unfinished run in {out}")
            raise UserError(f"no run '{resume}': {out} holds no runs")
        if escalate:  # the labels file read against the stored run's tools and personas
            with Store(out, readonly=True) as store:
                stored = resume_target(store, resume)
                tool_ids = [str(t["id"]) for t in store.run_tools(stored)]
                check_labels(reference, tool_ids, store.run_personas(stored))
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
            sampling=Sampling(temperature=temperature, seed=seed),
            route=route,
            rebuttal=rebuttal,
            max_tokens=max_tokens,
            head_to_head_pairs=head_to_head or (),
        )
        require_prices(plan, max_cost)
        if escalate:  # the labels file read as the triage will read it after the run
            personas = [p.model_dump(mode="json") for p in plan.personas]
            check_labels(reference, [t.id for t in plan.tools], personas)
        if since and not (out / "panel.db").is_file():
            raise UserError(f"--since: {out} holds no runs to compare with")
    again = resume_args(
        out,
        config=config,
        no_cache=no_cache,
        prices=prices,
        max_cost=max_cost,
        poll_interval=poll_interval,
        reask_live=reask == "live",
    )
    request = RunRequest(
        "review",
        plan,
        resume=resume,
        since=since,
        prices=prices,
        max_cost=max_cost,
        use_cache=not no_cache,
        retry=panel_config.retry.policy(),
        progress=progress,
        resume_args=again,
        poll_interval=poll_interval,
        reask_live=reask == "live",
        detach=detach,
    )
    with Store(out) as store:
        outcome = execute(store, request, _command_line(), notices, err_console)
        in_flight = store.batches(outcome.run_id, unfinished_only=True) if detach else []
    stats, run_id = outcome.stats, outcome.run_id
    line = summary_line(stats, outcome.elapsed)
    if stats.stopped == "detached":
        out_console.print(f"{run_id}: {clean(line)}", highlight=False, markup=False, soft_wrap=True)
        _say_detached(run_id, in_flight, resume_command(run_id, again))
        if escalate:
            notices.say(
                "triage",
                f"triage.json not written: the run is detached; once it is collected, run "
                f"{_triage_command(run_id, reference, target, level, out)}",
                run_id=run_id,
            )
        return
    if outcome.since_run:
        line += f" · {outcome.flipped} verdicts flipped since {outcome.since_run}"
    out_console.print(f"{run_id}: {clean(line)}", highlight=False, markup=False, soft_wrap=True)
    if outcome.why:  # what changed for each flip: `panel diff` lists them
        out_console.print(clean(outcome.why), highlight=False, markup=False, soft_wrap=True)
    found, unwritten = None, ""
    if escalate:  # the run's files are written and it is stored, whatever happens here
        try:
            with Store(out) as store:
                found = write_triage(store, run_id, reference=reference, target=target, level=level)
        except (UserError, OSError, sqlite3.Error) as exc:
            again_with = _triage_command(run_id, reference, target, level, out)
            unwritten = f"triage.json not written: {exc}; run {again_with}"
    files = f"{outcome.files}, triage.json" if found is not None else outcome.files
    out_console.print(
        f"wrote {clean(outcome.folder)} ({files})", highlight=False, markup=False, soft_wrap=True
    )
    if found is not None:
        out_console.print(clean(found.summary()), highlight=False, markup=False, soft_wrap=True)
    with Store(out, readonly=True) as store:
        print_head_to_head(store, run_id)
    if unwritten:
        notices.say("triage", unwritten, run_id=run_id)
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
    _fail_if_none_valid(outcome)
    _exit_if_member_stopped(outcome)
    if unwritten:
        raise typer.Exit(TRIAGE_NOT_WRITTEN)


def _triage_command(run_id: str, reference: str, target: float, level: float, out: Path) -> str:
    """The `panel triage` command that gives the triage of a stored run with the same rule."""
    words = ["panel", "triage", run_id, "--reference", reference]
    words += [f"--target={target:g}"] if target != 0.9 else []
    words += [f"--level={level:g}"] if level != 0.95 else []
    words += ["--out", str(out)] if out != Path("runs") else []
    return f"`{shlex.join(words)}`"


def _exit_if_member_stopped(outcome: Outcome) -> None:
    """Exit 3 when the run stopped sending to a member: its line said why and how to finish."""
    if outcome.stats.members_stopped:
        raise typer.Exit(3)


def _say_detached(run_id: str, in_flight: list[BatchRow], collect: str) -> None:
    n = len(in_flight)
    requests = sum(row.requests for row in in_flight)
    members = ", ".join(sorted({row.member for row in in_flight}))
    notices.say(
        "detached",
        f"detached: {n} batch{'es' if n != 1 else ''} ({requests} requests, {members}) in flight "
        f"for run {run_id}; `panel batches {run_id}` shows them. Collect the results with: {collect}",
        run_id=run_id,
        batches=[row.batch_key for row in in_flight],
        requests=requests,
        resume=collect,
    )


def _fail_if_none_valid(outcome: Outcome) -> None:
    stats = outcome.stats
    if stats.total and stats.valid == 0 and not stats.stopped:
        notices.say(
            "failed",
            f"no review of run {outcome.run_id} is valid: every one failed "
            f"(the errors are in {outcome.errors_in})",
            run_id=outcome.run_id,
        )
        raise typer.Exit(1)


def _command_line() -> str:
    """The command as typed, recorded with the run."""
    return "panel " + shlex.join(sys.argv[1:])
