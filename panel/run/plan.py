"""Plans and runs: check every input, build the panel, record the run, run the engine.

`plan_run` does all the checking and touches no file, so bad input stops a command before
anything is written under runs/.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..backends.base import Backend, Sampling
from ..backends.registry import MemberSpec, create_backend, recorded_member
from ..catalog import Catalog, Tool, load_catalog
from ..config import PanelConfig, resolve_members
from ..depth import member_depth
from ..errors import BackendSpecError, ConfigError, UserError
from ..personas import Persona, load_personas, resolve_personas
from ..prompts import PromptSet
from ..report.load import run_inputs
from ..resources import data_dir
from ..store import Store, new_run_id
from .batch import DEFAULT_POLL_S, BatchRunner
from .cells import Cell, Member
from .ending import Write, running
from .engine import Engine
from .events import Sink
from .head_to_head import named_pairs
from .head_to_head_round import run_head_to_head
from .limits import shared_limiters
from .pricing import load_prices, price_for
from .rebuttal import run_rebuttals
from .retry import RetryPolicy
from .routes import Route
from .stats import RunStats

__all__ = [
    "Plan",
    "RunOptions",
    "build_members",
    "default_catalog",
    "plan_compare",
    "plan_engine",
    "plan_resume",
    "plan_run",
    "require_prices",
    "run_plan",
    "start_run",
]


@dataclass
class Plan:
    """Everything a run needs, checked."""

    tools: list[Tool]
    personas: list[Persona]
    members: list[Member]
    specs: list[MemberSpec]
    catalog_path: Path | None
    prompts: PromptSet = field(default_factory=PromptSet)
    sampling: Sampling = field(default_factory=Sampling)
    repeats: int = 1
    #: a rebuttal round after round 1 (`panel.run.rebuttal`)
    rebuttal: bool = False
    #: every pair of tools judged head to head, in both orders (`panel.run.head_to_head_round`)
    head_to_head: bool = False
    #: only these pairs (tool ids) judged head to head, in both orders (`panel review --head-to-head`)
    head_to_head_pairs: list[tuple[str, str]] = field(default_factory=list)

    @property
    def judged_pairs(self) -> list[tuple[str, str]] | None:
        """The pairs judged head to head: None for every pair of the tools, [] for none."""
        return None if self.head_to_head else list(self.head_to_head_pairs)

    @property
    def total(self) -> int:
        return sum(self.planned_for(m.backend) for m in self.members)

    def planned_for(self, backend: Backend) -> int:
        """How many cells the member has: every tool it does not recuse from, by persona and
        repeat."""
        reviewed = sum(not backend.recuses_from(t.maker) for t in self.tools)
        return reviewed * len(self.personas) * self.repeats

    def recused(self) -> dict[str, list[str]]:
        """The tools each recusing member leaves out (`recuse = "maker"`), by member label;
        only members that leave one out."""
        found = {
            m.backend.label: [t.id for t in self.tools if m.backend.recuses_from(t.maker)]
            for m in self.members
        }
        return {label: tools for label, tools in found.items() if tools}

    def cells_for(self, backend: Backend) -> Iterator[Cell]:
        """One member's cells, made as they are needed; none of a tool it recuses from."""
        for tool in self.tools:
            if backend.recuses_from(tool.maker):
                continue  # never requested, never paid
            for persona in self.personas:
                for repeat in range(self.repeats):
                    yield Cell(tool, persona, backend, repeat)

    @property
    def cells(self) -> list[Cell]:
        return [c for m in self.members for c in self.cells_for(m.backend)]


@dataclass
class RunOptions:
    use_cache: bool = True
    max_cost: float | None = None
    since_run: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: which command made the run ("compare" or "review"): a resumed run writes its files
    kind: str = "review"
    #: the batch route: seconds between polls, re-ask live, return once submitted
    poll_interval: float = DEFAULT_POLL_S
    reask_live: bool = False
    detach: bool = False
    #: more of the command's settings to record with the run (`panel rank`'s budget, seed ...)
    settings: dict[str, Any] = field(default_factory=dict)


def default_catalog() -> Path:
    local = Path("examples/catalog.yaml")
    return local if local.is_file() else data_dir("examples") / "catalog.yaml"


def build_members(specs: Sequence[MemberSpec], prices_path: str | Path | None = None) -> list[Member]:
    """Backends with their concurrency, rate limits, price and timeout; fails before any work.

    Members on one connection (the same backend, model, server and key: two names for one
    model) share one rate limiter, since they draw on one provider quota."""
    prices = load_prices(prices_path)
    backends = [create_backend(spec) for spec in specs]
    limiters = shared_limiters([(b.connection_key(), b.options) for b in backends])
    members = []
    for backend, limiter in zip(backends, limiters, strict=True):
        o = backend.options
        depth, max_tokens = member_depth(o.depth, o.max_tokens, backend.default_depth())
        members.append(
            Member(
                backend=backend,
                concurrency=o.concurrency or backend.default_concurrency,
                limiter=limiter,
                price=price_for(backend.name, backend.model, o, prices),
                timeout=o.timeout or backend.default_timeout,
                route=o.route or "live",
                depth=depth,
                max_tokens=max_tokens,
            )
        )
    for member in members:
        if member.route == "batch" and member.backend.batch_api() is None:
            raise BackendSpecError(
                f'{member.backend.label}: route = "batch" needs a provider with a batch API '
                f"(openai, anthropic, mistral), not '{member.backend.name}'"
            )
    labels = [m.backend.label for m in members]
    if len(set(labels)) != len(labels):
        twice = sorted({label for label in labels if labels.count(label) > 1})
        raise BackendSpecError(
            f"the same panel member is listed twice: {', '.join(twice)} "
            "(give each its own name in panel.toml)"
        )
    return members


def plan_run(
    tool_ids: Sequence[str] | None,
    *,
    catalog: str | Path | Catalog | None = None,
    backends: Sequence[str] = (),
    persona_ids: Sequence[str] = (),
    personas_dir: str | Path | None = None,
    sampling: Sampling | None = None,
    config: PanelConfig | None = None,
    prices: str | Path | None = None,
    repeats: int = 1,
    route: str | None = None,
    rebuttal: bool = False,
    max_tokens: int | None = None,
    head_to_head: bool = False,
    head_to_head_pairs: Sequence[str] = (),
) -> Plan:
    """Check every input and build the backends; raise a UserError before any file is written.

    `catalog` is a path, or a `Catalog` read already. `tool_ids` None means every tool of
    the catalog. `max_tokens` sets every member's reply limit; unset, each member's own
    (`max_tokens` in panel.toml), else its depth's. A `sampling` whose `max_tokens` is not
    the default sets it too, as `max_tokens` would. `head_to_head_pairs` ("TOOL_A:TOOL_B") name
    pairs of the run's tools to judge head to head after the reviews.
    """
    if max_tokens is None and sampling is not None and sampling.max_tokens != Sampling().max_tokens:
        max_tokens = sampling.max_tokens  # a caller's own limit: no member's depth overrides it
    if isinstance(catalog, Catalog):  # read already (the app keeps its catalog)
        cat, catalog_path = catalog, catalog.path
    else:
        catalog_path = Path(catalog) if catalog else default_catalog()
        cat = load_catalog(catalog_path)
    tools = list(cat) if tool_ids is None else [cat.get(tid) for tid in tool_ids]
    _no_repeats("tool", [t.id for t in tools])
    pairs = named_pairs(head_to_head_pairs, cat, [t.id for t in tools])
    personas = resolve_personas(load_personas(personas_dir or data_dir("personas")), list(persona_ids))
    _no_repeats("persona", [p.id for p in personas])
    specs = resolve_members(list(backends), config or PanelConfig())
    # Kept in each member's options, so a resumed run takes the same route and limit.
    given = {k: v for k, v in {"route": route, "max_tokens": max_tokens}.items() if v is not None}
    if given:
        specs = [replace(spec, options=spec.options.with_(spec.backend, **given)) for spec in specs]
    if repeats < 1:
        raise UserError("--repeats must be at least 1")
    plan = Plan(
        tools,
        personas,
        build_members(specs, prices),
        specs,
        catalog_path,
        sampling=sampling or Sampling(),
        repeats=repeats,
        rebuttal=rebuttal,
        head_to_head=head_to_head,
        head_to_head_pairs=pairs,
    )
    _someone_reviews_each(plan)
    return plan


def _someone_reviews_each(plan: Plan) -> None:
    """A tool every member recuses from would have no review: its shares, its headline and
    its head-to-head pairs would rest on nothing. Refused before anything is written."""
    for tool in plan.tools:
        if plan.members and all(m.backend.recuses_from(tool.maker) for m in plan.members):
            raise UserError(f"no member is left to review {tool.id}: every member's maker made it")


def plan_compare(tool_ids: Sequence[str], **kwargs: Any) -> Plan:
    if len(tool_ids) < 2:
        raise UserError("compare needs at least two tool ids")
    return plan_run(tool_ids, **kwargs)


def require_prices(plan: Plan, max_cost: float | None) -> None:
    """A budget needs a price for every member, or the guard could not hold it."""
    unpriced = [m.backend.label for m in plan.members if m.price is None]
    if max_cost is not None and unpriced:
        raise UserError(
            f"--max-cost needs a price for {', '.join(unpriced)}: add it to the price file "
            "(--prices FILE) or set price_input and price_output on the member in panel.toml"
        )


def _no_repeats(kind: str, ids: list[str]) -> None:
    """A tool or persona named twice (or by id and by name) would make the same cell twice."""
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise UserError(f"{kind} '{item}' is listed twice")
        seen.add(item)


def plan_resume(store: Store, run_id: str, prices: str | Path | None = None) -> Plan:
    """The plan of an earlier run, as it was recorded, to finish it."""
    run, tools, personas = run_inputs(store, run_id)
    config = run.config
    if "member_specs" not in config:
        raise ConfigError(f"run '{run_id}' was recorded without its plan and cannot be resumed")
    specs = []
    for i, recorded in enumerate(config["member_specs"]):
        options = recorded["options"]
        if "depth" not in options:
            # Recorded before members had a depth: every member wrote brief reviews, within
            # the run's token limit.
            options = {**options, "depth": "brief", "max_tokens": config["sampling"]["max_tokens"]}
        specs.append(recorded_member(run_id, i, recorded, options))
    return Plan(
        tools,
        personas,
        build_members(specs, prices),
        specs,
        Path(run.catalog) if run.catalog else None,
        sampling=Sampling(**config["sampling"]),
        repeats=int(config.get("repeats", 1)),
        rebuttal=bool(config.get("rebuttal", False)),
        head_to_head=bool(config.get("head_to_head", False)),
        head_to_head_pairs=[(a, b) for a, b in config.get("head_to_head_pairs", [])],
    )


def start_run(plan: Plan, store: Store, command: str, options: RunOptions | None = None) -> str:
    """Record a new run of a plan (its tools, personas, members and settings); returns its id."""
    options = options or RunOptions()
    run_id = new_run_id()
    store.create_run(
        run_id,
        command,
        str(plan.catalog_path) if plan.catalog_path else None,
        {
            "members": [m.backend.label for m in plan.members],
            # who made each member's model (None: unknown) and what each left out for it
            "makers": {m.backend.label: m.backend.maker for m in plan.members},
            "recused": plan.recused(),
            "member_specs": [
                {"spec": s.text, "name": s.name, "options": _resolved(s, m)}
                # a plan built by hand (benchmarks, tests) may list no specs: nothing to resume by
                for s, m in zip(plan.specs, plan.members, strict=False)
            ],
            "sampling": plan.sampling.as_dict(),
            "prompts": plan.prompts.fingerprint,
            "repeats": plan.repeats,
            "since": options.since_run,
            "kind": options.kind,
            "rebuttal": plan.rebuttal,
            "head_to_head": plan.head_to_head,
            "head_to_head_pairs": [list(pair) for pair in plan.head_to_head_pairs],
            **options.settings,
        },
        tools=((t.id, t.fingerprint(), t.model_dump(mode="json")) for t in plan.tools),
        personas=[(p.id, p.version, p.model_dump(mode="json")) for p in plan.personas],
    )
    return run_id


def _resolved(spec: MemberSpec, member: Member) -> dict[str, Any]:
    """A member's options with its depth and token limit as this run settled them, so a
    resumed run asks the same whatever the defaults have become since."""
    settled: dict[str, Any] = {"depth": member.depth}
    if member.max_tokens is not None:
        settled["max_tokens"] = member.max_tokens
    return {**spec.options.written(), **settled}


def plan_engine(
    plan: Plan, store: Store, run_id: str, options: RunOptions, on_event: Sink | None = None
) -> Engine:
    """The engine of a plan's run: its members, prompts and sampling, with the options'
    cache, budget, retries and the run to copy unchanged reviews from."""
    return Engine(
        store,
        run_id,
        plan.prompts,
        plan.members,
        plan.sampling,
        options.retry,
        use_cache=options.use_cache,
        max_cost=options.max_cost,
        since_run=options.since_run,
        on_event=on_event,
    )


async def run_plan(
    plan: Plan,
    store: Store,
    command: str,
    *,
    options: RunOptions | None = None,
    run_id: str | None = None,
    write: Write | None = None,
    on_event: Sink | None = None,
) -> tuple[str, RunStats]:
    """Run a plan as a new run, or finish the run `run_id` (started, or resumed).

    `write(run_id, status)` writes the run's files before the run takes that status
    (`panel.run.ending`). Ctrl-C leaves the run `interrupted`, ready for `--resume`; so does
    `detach` while batches are in flight (its stats say `stopped = "detached"`; no files are
    written). With `plan.rebuttal`, the rebuttal round follows round 1 (unless it stopped), and
    with `plan.head_to_head` (every pair) or `plan.head_to_head_pairs` (those) the head-to-head
    asks follow them (unless the run is stopping).
    `on_event` is told every event of the run, in order (`panel.run.events`): each review
    made, each batch submitted or polled, the rebuttal round's answers, and a member the run
    stops sending to because its server went away (`panel.run.outage`).
    """
    options = options or RunOptions()
    if run_id is None:
        run_id = start_run(plan, store, command, options)
    engine = plan_engine(plan, store, run_id, options, on_event)

    def batch_route(of: Engine) -> Route:
        return BatchRunner(
            of, poll_interval=options.poll_interval, reask_live=options.reask_live, detach=options.detach
        )

    engine.routes["batch"] = batch_route
    async with running(store, run_id, [m.backend for m in plan.members]) as end:
        stats = await engine.run(plan.cells_for, plan.total)
        if options.detach and not stats.stopped and store.batches(run_id, unfinished_only=True):
            stats.stopped = "detached"  # batches in flight: `--resume` collects them
            end.leave("interrupted")
            return run_id, stats
        if plan.rebuttal and not stats.stopped:
            await run_rebuttals(engine, plan.tools, plan.personas)
        if (plan.head_to_head or plan.head_to_head_pairs) and not stats.stopped and not engine.stopping:
            await run_head_to_head(engine, plan.tools, plan.personas, plan.judged_pairs)
        end.finish("stopped" if stats.stopped else "done", write)
    return run_id, stats
