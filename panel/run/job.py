"""What a run command does around the engine: announce the plan, run it, write its files
before the run is called done, and say how it ended.

A run ends in one of the store's statuses: `done`, `stopped` (at the budget), `interrupted`
(Ctrl-C: one line names the command that resumes it, exit code 130) or `failed` (its files
or the store could not be written: one line names the path).
"""

from __future__ import annotations

import asyncio
import shlex
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from ..errors import UserError
from ..report.diff import diff_runs
from ..report.files import write_run_files
from ..store import UNFINISHED, RunRow, Store
from .batch import DEFAULT_POLL_S
from .engine import RunStats
from .plan import Plan, RunOptions, plan_resume, require_prices, run_plan, start_run
from .pricing import estimate_cost
from .progress import Mode, Notices, Reporter
from .retry import RetryPolicy

__all__ = [
    "Job",
    "Outcome",
    "RunInterrupted",
    "RunRequest",
    "announce_plan",
    "budget_resume_command",
    "execute",
    "resume_args",
    "resume_command",
    "resume_target",
    "run_kind",
    "store_errors",
]

# SQLite's primary result codes that mean the disk or the file, not the program.
_STORAGE_CODES = {
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_CANTOPEN,
}


class RunInterrupted(Exception):
    """Ctrl-C stopped a run; the line saying how to resume it is already printed."""

    exit_code = 130


def resume_command(run_id: str, extra: Sequence[str] = ()) -> str:
    """The command that finishes a run, with the options it must repeat (--out, --max-cost ...)."""
    return shlex.join(["panel", "review", "--resume", run_id, *extra])


def resume_target(store: Store, resume: str) -> str:
    """The run `--resume` names; 'last' is the newest run that did not finish."""
    if resume != "last":
        return resume
    run_id = store.latest_run(*UNFINISHED)
    if run_id is None:
        raise UserError(f"--resume last: no unfinished run in {store.root}")
    return run_id


def resume_args(
    out: Path,
    *,
    config: Path | None = None,
    no_cache: bool = False,
    prices: Path | None = None,
    max_cost: float | None = None,
    poll_interval: float | None = None,
    reask_live: bool = False,
) -> list[str]:
    """The options of this command that `panel review --resume` must be given again (the
    batch route's own ones only where they differ from the defaults)."""
    args: list[str] = []
    if out != Path("runs"):
        args += ["--out", str(out)]
    if config is not None:
        args += ["--config", str(config)]
    if prices is not None:
        args += ["--prices", str(prices)]
    if no_cache:
        args.append("--no-cache")
    if max_cost is not None:
        args += ["--max-cost", str(max_cost)]
    if poll_interval is not None and poll_interval != DEFAULT_POLL_S:
        args += ["--poll-interval", f"{poll_interval:g}"]
    if reask_live:
        args += ["--reask", "live"]
    return args


def budget_resume_command(run_id: str, resume_args: Sequence[str]) -> str:
    """The resume command with a larger budget for the user to fill in."""
    args = list(resume_args)
    if "--max-cost" in args:
        i = args.index("--max-cost")
        del args[i : i + 2]
    return resume_command(run_id, args) + " --max-cost MORE"


def run_kind(run: RunRow) -> str:
    """Which command made a run ("compare" or "review"), so a resumed run writes its files."""
    kind = run.config.get("kind")
    if kind in ("compare", "review"):
        return str(kind)
    return "compare" if run.command.startswith("panel compare") else "review"


def announce_plan(plan: Plan, notices: Notices, routes: Mapping[str, str] | None = None) -> None:
    """The line before a run: how many reviews, and what they should cost at most (members
    on the batch route at batch prices, with what the live route would cost)."""
    estimate = estimate_cost(plan, routes=routes)
    text = (
        f"plan: {plan.total} reviews = {len(plan.tools)} tools x {len(plan.personas)} personas x "
        f"{len(plan.members)} members"
    )
    if plan.repeats > 1:
        text += f" x {plan.repeats} repeats"
    if plan.rebuttal:
        text += f", then a rebuttal round of up to {plan.total // plan.repeats} answers (not in the estimate)"
    if estimate.priced:
        text += f"; estimated ${estimate.expected_usd:.4f}, at most ${estimate.worst_usd:.4f}"
    live: dict[str, object] = {}
    if estimate.priced and estimate.batch_requests:
        text += f" (live route: ${estimate.live_expected_usd:.4f}, at most ${estimate.live_worst_usd:.4f})"
        live = {
            "batch_requests": estimate.batch_requests,
            "live_expected_usd": round(estimate.live_expected_usd, 6),
            "live_worst_usd": round(estimate.live_worst_usd, 6),
        }
    notices.chatter(
        "plan",
        text,
        reviews=plan.total,
        tools=len(plan.tools),
        personas=len(plan.personas),
        members=[m.backend.label for m in plan.members],
        repeats=plan.repeats,
        expected_usd=round(estimate.expected_usd, 6) if estimate.priced else None,
        worst_usd=round(estimate.worst_usd, 6) if estimate.priced else None,
        **live,
    )


@contextmanager
def store_errors(store: Store) -> Iterator[None]:
    """A store the disk refuses (full, read-only, gone) is one line naming it, not a traceback."""
    try:
        yield
    except sqlite3.Error as exc:
        code = getattr(exc, "sqlite_errorcode", None)
        if code is None or code & 0xFF not in _STORAGE_CODES:
            raise
        raise UserError(f"cannot write {store.path}: {exc}") from None


def _quiet_interrupt(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # Ctrl-C ends the tasks of the run with KeyboardInterrupt; the interrupted line says
    # all there is to say, so asyncio need not print their tracebacks too.
    if not isinstance(context.get("exception"), KeyboardInterrupt | asyncio.CancelledError):
        loop.default_exception_handler(context)


@dataclass
class Job:
    """One run of a plan in a store, shown in the chosen progress mode."""

    store: Store
    plan: Plan
    run_id: str
    notices: Notices
    console: Console
    progress: Mode = "bar"
    options: RunOptions = field(default_factory=RunOptions)
    #: options the resume command must repeat, such as --out DIR
    resume_args: Sequence[str] = ()
    elapsed: float = 0.0

    @property
    def resume(self) -> str:
        return resume_command(self.run_id, self.resume_args)

    def member_stopped(self, member: str, reason: str) -> None:
        """The one line when the run stops sending to a member: why, and how to finish."""
        self.notices.say(
            "member_stopped",
            f"{member}: stopped sending to it: {reason}. The rest of the panel carries on; "
            f"its reviews not made yet wait for: {self.resume}",
            run_id=self.run_id,
            member=member,
            reason=reason,
            resume=self.resume,
        )

    def run(self, command: str, write: Callable[[str, str], object]) -> RunStats:
        """Run the plan, then `write(run_id, status)` its files; the run is done only after both."""
        reporter = Reporter(self.progress, self.plan.total, self.console)
        try:
            with store_errors(self.store), reporter, asyncio.Runner() as runner:
                runner.get_loop().set_exception_handler(_quiet_interrupt)
                _, stats = runner.run(
                    run_plan(
                        self.plan,
                        self.store,
                        command,
                        reporter.update,
                        self.options,
                        self.run_id,
                        write,
                        on_batch=reporter.batch,
                        on_rebuttal=reporter,
                        on_stopped=self.member_stopped,
                    )
                )
        except KeyboardInterrupt:
            valid, failed = self.store.review_counts(self.run_id)
            self.notices.say(
                "interrupted",
                f"interrupted: run {self.run_id} has {valid + failed} of {self.plan.total} reviews; "
                f"resume with: {self.resume}",
                run_id=self.run_id,
                done=valid + failed,
                total=self.plan.total,
                resume=self.resume,
            )
            raise RunInterrupted(self.run_id) from None
        reporter.finish(stats)
        self.elapsed = reporter.elapsed
        return stats


@dataclass(frozen=True)
class RunRequest:
    """What `panel compare` or `panel review` asks for: a checked plan, or a run to resume."""

    kind: str  # "compare" or "review"; a resumed run keeps the kind it was made with
    plan: Plan | None = None  # None when resuming
    resume: str | None = None  # a run id, or "last"
    since: str | None = None  # a run id, or "last"
    prices: Path | None = None
    max_cost: float | None = None
    use_cache: bool = True
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    progress: Mode = "bar"
    #: options the resume command must repeat, such as --out DIR
    resume_args: Sequence[str] = ()
    #: the batch route: seconds between polls, re-ask invalid replies live, submit and exit
    poll_interval: float = DEFAULT_POLL_S
    reask_live: bool = False
    detach: bool = False


@dataclass(frozen=True)
class Outcome:
    """How a run ended, for the command to print."""

    run_id: str
    kind: str
    stats: RunStats
    folder: Path
    elapsed: float
    since_run: str | None = None
    flipped: int = 0

    @property
    def files(self) -> str:
        if self.kind == "compare":
            return "comparison.json, comparison.md, comparison.html"
        return "reviews.jsonl, tools/"

    @property
    def errors_in(self) -> Path:
        """The file where a reader finds why reviews failed."""
        return self.folder / ("comparison.json" if self.kind == "compare" else "reviews.jsonl")


def execute(store: Store, request: RunRequest, command: str, notices: Notices, console: Console) -> Outcome:
    """Start (or resume) a run, run it, write its files, and say how it ended."""
    kind, plan, run_id, since_run = _start(store, request)
    options = RunOptions(
        use_cache=request.use_cache,
        max_cost=request.max_cost,
        since_run=since_run,
        retry=request.retry,
        kind=kind,
        poll_interval=request.poll_interval,
        reask_live=request.reask_live,
        detach=request.detach,
    )
    announce_plan(plan, notices, {m.backend.label: m.route for m in plan.members})
    if run_id is None:
        run_id = start_run(plan, store, command, options)
    job = Job(store, plan, run_id, notices, console, request.progress, options, request.resume_args)
    stats = job.run(command, lambda rid, status: write_run_files(store, rid, status, kind))
    detached = stats.stopped == "detached"
    flipped = len(diff_runs(store, since_run, run_id).flipped) if since_run and not detached else 0
    return Outcome(run_id, kind, stats, store.run_dir(run_id), job.elapsed, since_run, flipped)


def _start(store: Store, request: RunRequest) -> tuple[str, Plan, str | None, str | None]:
    """(kind, plan, run id or None for a new run, the run to copy unchanged reviews from)."""
    if request.resume:
        run_id = resume_target(store, request.resume)
        plan = plan_resume(store, run_id, request.prices)
        require_prices(plan, request.max_cost)
        recorded = store.get_run(run_id)
        assert recorded is not None  # plan_resume found it
        return run_kind(recorded), plan, run_id, recorded.config.get("since")
    assert request.plan is not None, "a new run needs a plan"
    since_run = store.latest_run() if request.since == "last" else request.since
    if request.since and since_run is None:
        raise UserError("--since last: there is no finished run to compare with")
    if since_run and store.get_run(since_run) is None:
        raise UserError(f"--since: no run '{since_run}' in {store.path}")
    return request.kind, request.plan, None, since_run
