"""What `panel compare` and `panel review` do around a run: announce the plan, run it with its
progress shown, write its files before the run is called done, and say how it ended.

A run ends in one of the store's statuses (`panel.run.ending`); Ctrl-C leaves it
`interrupted`, and one line names the command that resumes it (exit code 130).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from ..errors import UserError
from ..report.diff import diff_runs
from ..report.files import write_run_files
from ..run.batch import DEFAULT_POLL_S
from ..run.ending import store_errors
from ..run.events import Event, SendingStopped
from ..run.plan import Plan, RunOptions, plan_resume, require_prices, run_plan, start_run
from ..run.pricing import estimate_cost
from ..run.resume import resume_command, resume_target
from ..run.retry import RetryPolicy
from ..run.runref import resolve_run
from ..run.stats import RunStats
from ..store import Store
from .progress import Mode, Notices, Reporter

__all__ = ["Outcome", "RunInterrupted", "RunRequest", "announce_plan", "execute"]


class RunInterrupted(Exception):
    """Ctrl-C stopped a run; the line saying how to resume it is already printed."""

    exit_code = 130


def announce_plan(
    plan: Plan,
    notices: Notices,
    routes: Mapping[str, str] | None = None,
    resumed: tuple[str, Mapping[str, int]] | None = None,
) -> None:
    """The line before a run: how many reviews, and what they should cost at most (members
    on the batch route at batch prices, with what the live route would cost). `resumed`
    (the run id, and its reviews stored by member) says what is done, and estimates the rest."""
    done = resumed[1] if resumed else {}
    estimate = estimate_cost(plan, routes=routes, done=done)
    shape = f"{len(plan.tools)} tools x {len(plan.personas)} personas x {len(plan.members)} members"
    if plan.repeats > 1:
        shape += f" x {plan.repeats} repeats"
    recused = len(plan.tools) * len(plan.personas) * len(plan.members) * plan.repeats - plan.total
    if recused:
        shape += f", less {recused} recused (a member's maker made the tool)"
    reviews_to_go = estimate.requests - estimate.head_to_head
    stored = plan.total - reviews_to_go
    if resumed:
        text = (
            f"plan: resuming run {resumed[0]}: {stored} of {plan.total} reviews done, "
            f"{reviews_to_go} to go ({shape})"
        )
    else:
        text = f"plan: {plan.total} reviews = {shape}"
    if plan.rebuttal:
        text += f", then a rebuttal round of up to {plan.total // plan.repeats} answers (not in the estimate)"
    if estimate.head_to_head:
        # on a resume, those answered before are skipped: the estimate counts them all
        text += f", then {'up to ' if resumed else ''}{_head_to_head_shape(plan, estimate.head_to_head)}"
    if estimate.priced:
        left = f" for the {estimate.requests} to go" if resumed else ""
        text += f"; estimated ${estimate.expected_usd:.4f}{left}, at most ${estimate.worst_usd:.4f}"
    extra: dict[str, object] = {}
    if estimate.priced and estimate.batch_requests:
        text += f" (live route: ${estimate.live_expected_usd:.4f}, at most ${estimate.live_worst_usd:.4f})"
        extra = {
            "batch_requests": estimate.batch_requests,
            "live_expected_usd": round(estimate.live_expected_usd, 6),
            "live_worst_usd": round(estimate.live_worst_usd, 6),
        }
    if resumed:
        extra |= {"run_id": resumed[0], "done": stored, "to_go": reviews_to_go}
    notices.chatter(
        "plan",
        text,
        reviews=plan.total,
        tools=len(plan.tools),
        personas=len(plan.personas),
        members=[m.backend.label for m in plan.members],
        repeats=plan.repeats,
        head_to_head=estimate.head_to_head,
        expected_usd=round(estimate.expected_usd, 6) if estimate.priced else None,
        worst_usd=round(estimate.worst_usd, 6) if estimate.priced else None,
        **extra,
    )
    for member in plan.members:
        backend = member.backend
        if backend.options.recuse == "maker" and backend.maker is None:
            notices.say(
                "recusal_unknown",
                f'{backend.label}: recuse = "maker" leaves nothing out, its maker is unknown: set '
                f'maker = "..." (who made its model, such as "Meta") on the member in panel.toml',
                member=backend.label,
            )


def _head_to_head_shape(plan: Plan, asks: int) -> str:
    """`12 head-to-head asks = 3 pairs x 2 orders x 2 personas x 1 members[, less 4 recused]`."""
    n = len(plan.tools)
    named = plan.judged_pairs
    pairs = n * (n - 1) // 2 if named is None else len(named)
    every = pairs * 2 * len(plan.personas) * len(plan.members)
    text = (
        f"{asks} head-to-head asks = {pairs} pairs x 2 orders x {len(plan.personas)} personas "
        f"x {len(plan.members)} members"
    )
    return text + (f", less {every - asks} recused" if every > asks else "")


def _quiet_interrupt(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # Ctrl-C ends the tasks of the run with KeyboardInterrupt; the interrupted line says
    # all there is to say, so asyncio need not print their tracebacks too.
    if not isinstance(context.get("exception"), KeyboardInterrupt | asyncio.CancelledError):
        loop.default_exception_handler(context)


@dataclass(frozen=True)
class RunRequest:
    """What `panel compare` or `panel review` asks for: a checked plan, or a run to resume."""

    kind: str  # "compare" or "review"; a resumed run keeps the kind it was made with
    plan: Plan | None = None  # None when resuming
    resume: str | None = None  # a run id, a prefix of one, or "last"
    since: str | None = None  # a run id, a prefix of one, or "last"
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
    #: the flips since `since_run` by reason (`RunDiff.summary`), when any flipped
    why: str = ""

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
    routes = {m.backend.label: m.route for m in plan.members}
    announce_plan(plan, notices, routes, (run_id, _stored_by_member(store, run_id)) if run_id else None)
    if run_id is None:
        run_id = start_run(plan, store, command, options)
    resume = resume_command(run_id, request.resume_args)

    def write(rid: str, status: str) -> None:
        write_run_files(store, rid, status, kind)

    reporter = Reporter(request.progress, plan.total, console)

    def show(event: Event) -> None:
        if isinstance(event, SendingStopped):
            # The one line when the run stops sending to a member: why, and how to finish.
            notices.say(
                "member_stopped",
                f"{event.member}: stopped sending to it: {event.reason}. The rest of the panel "
                f"carries on; its reviews not made yet wait for: {resume}",
                run_id=run_id,
                member=event.member,
                reason=event.reason,
                resume=resume,
            )
        else:
            reporter.show(event)

    try:
        with store_errors(store), reporter, asyncio.Runner() as runner:
            runner.get_loop().set_exception_handler(_quiet_interrupt)
            _, stats = runner.run(
                run_plan(plan, store, command, options=options, run_id=run_id, write=write, on_event=show)
            )
    except KeyboardInterrupt:
        valid, failed = store.review_counts(run_id)
        notices.say(
            "interrupted",
            f"interrupted: run {run_id} has {valid + failed} of {plan.total} reviews; resume with: {resume}",
            run_id=run_id,
            done=valid + failed,
            total=plan.total,
            resume=resume,
        )
        raise RunInterrupted(run_id) from None
    reporter.finish(stats)
    elapsed = reporter.elapsed
    detached = stats.stopped == "detached"
    since = diff_runs(store, since_run, run_id) if since_run and not detached else None
    flipped, why = (len(since.flipped), since.summary if since.flipped else "") if since else (0, "")
    return Outcome(run_id, kind, stats, store.run_dir(run_id), elapsed, since_run, flipped, why)


def _stored_by_member(store: Store, run_id: str) -> Counter[str]:
    """A run's reviews already stored, by member: what a resume does not make again."""
    return Counter(key.member for key in store.cell_verdicts(run_id))


def _start(store: Store, request: RunRequest) -> tuple[str, Plan, str | None, str | None]:
    """(kind, plan, run id or None for a new run, the run to copy unchanged reviews from)."""
    if request.resume:
        run_id = resume_target(store, request.resume)
        recorded = store.get_run(run_id)
        assert recorded is not None  # resume_target found it
        if recorded.kind == "rank":
            raise UserError(f"run {run_id} is a ranking: finish it with `panel rank --resume {run_id}`")
        plan = plan_resume(store, run_id, request.prices)
        require_prices(plan, request.max_cost)
        return recorded.kind, plan, run_id, recorded.config.get("since")
    assert request.plan is not None, "a new run needs a plan"
    since_run = None
    if request.since:
        since_run = resolve_run(store, request.since, what="finished run to compare with", flag="--since")
    return request.kind, request.plan, None, since_run
