"""The engine: runs every (tool, persona, member, repeat) cell within limits, budget and faults.

Work streams: each panel member has a pool of workers that pull cells one at a time from a
lazy iterator, so memory stays flat however large the catalog. For each cell the engine
renders the request, sends it under the member's rate limiter and the one retry policy,
validates the reply, re-asks once with the error, and stores everything as it goes:

- a request is written before it is sent, and its reply in the same transaction that marks
  it done, so after a crash `--resume` re-sends only what had no stored reply;
- a request identical to one already answered (same cache key) is served from the store;
- before each send the worst-case cost is reserved against the budget; a send that could
  go over stops the run cleanly instead;
- a request a dead process left unanswered is marked lost when the run resumes and is
  charged at the worst case it reserved (see `Store.spent`), then sent again;
- a member whose server went away (a closed port on a request's last try) is stopped: the
  rest of the panel carries on, and its cells not yet reviewed wait for `--resume`
  (`panel.run.outage`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from ..backends.base import Backend, Reply, Request, Sampling
from ..catalog import Tool
from ..depth import Depth
from ..errors import BackendError, TransientError, UnreachableError
from ..memo import ByIdentity
from ..personas import Persona
from ..prompts import PromptSet
from ..store import CellKey, Store
from .limits import RateLimiter
from .outage import MemberStopped, ServerWatch
from .pricing import Price, input_tokens
from .retry import RetryPolicy, call_with_retries
from .usage import believed, charge
from .validate import InvalidReply, parse_review

__all__ = ["SEED_STRIDE", "Cell", "CellResult", "Engine", "Member", "RunStats", "cache_key"]

#: how far a regenerated review's seed moves per review of its cell set aside: far beyond
#: any number of repeats (whose seeds are seed + repeat), so no two requests share a seed
SEED_STRIDE = 100_003


@dataclass(frozen=True)
class Cell:
    """One review to make: a tool, read by a persona, on a panel member, in one repeat."""

    tool: Tool
    persona: Persona
    backend: Backend
    repeat: int = 0
    #: which round its requests belong to: 1, or 2 for the rebuttal round (`panel.run.rebuttal`)
    ROUND: ClassVar[int] = 1

    @property
    def key(self) -> CellKey:
        return CellKey(self.tool.id, self.persona.id, self.backend.label, self.repeat)

    def request(self, prompts: PromptSet, sampling: Sampling, depth: Depth = "brief") -> Request:
        """The first ask of this cell, as the engine sends it (benchmarks send the same)."""
        return Request(
            messages=prompts.review_messages(self.persona, self.tool, depth),
            schema=self.persona.review_schema,
            schema_name=f"{self.persona.id}_review",
            sampling=sampling,
            depth=depth,
        )


@dataclass
class CellResult:
    cell: Cell
    valid: bool
    verdict: str | None
    error: str | None
    asks: int
    #: "sent" (asked a model), "cached" (all replies from the store), "copied" (from --since)
    source: str = "sent"


@dataclass
class Member:
    """A backend on the panel with its limits, price and timeout."""

    backend: Backend
    concurrency: int
    limiter: RateLimiter = field(default_factory=RateLimiter)
    price: Price | None = None
    timeout: float | None = None
    #: "live", or "batch": the provider's Batch API (`panel.run.batch`)
    route: str = "live"
    #: how much the member is asked to write (`panel.depth`)
    depth: Depth = "brief"
    #: the token limit of its replies; None: the run's sampling setting
    max_tokens: int | None = None
    #: what this run saw of its server, and why it stopped sending to it (`panel.run.outage`)
    watch: ServerWatch = field(default_factory=ServerWatch)

    def sampling(self, run: Sampling) -> Sampling:
        """The run's sampling settings with this member's token limit."""
        if self.max_tokens is None or self.max_tokens == run.max_tokens:
            return run
        return replace(run, max_tokens=self.max_tokens)

    def request(self, cell: Cell, prompts: PromptSet, run: Sampling) -> Request:
        """A cell's first ask on this member: at its depth, within its token limit."""
        return cell.request(prompts, self.sampling(run), self.depth)


@dataclass
class RunStats:
    total: int
    done: int = 0
    valid: int = 0
    failed: int = 0
    sent: int = 0
    cached: int = 0
    copied: int = 0
    retries: int = 0
    #: requests sent by an earlier process whose replies were lost (charged at worst case)
    lost: int = 0
    spent: float = 0.0
    reserved: float = 0.0
    #: on the batch route, in this process: what its replies cost, and what the same replies
    #: would have cost on the live route
    batch_spent: float = 0.0
    batch_at_live: float = 0.0
    stopped: str | None = None
    #: members the run stopped sending to (their server went away), with the reason
    members_stopped: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    #: the rebuttal round's own counts (`panel.run.rebuttal.RoundStats`), once it has begun
    rebuttal: Any = None

    @property
    def rate(self) -> float:
        """Cells finished per second so far."""
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        rate = self.rate
        return (self.total - self.done) / rate if rate > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "total": self.total,
            "valid": self.valid,
            "failed": self.failed,
            "sent": self.sent,
            "cached": self.cached,
            "copied": self.copied,
            "retries": self.retries,
            "lost": self.lost,
            "spent_usd": round(self.spent, 6),
            "batch_spent_usd": round(self.batch_spent, 6),
            "batch_at_live_prices_usd": round(self.batch_at_live, 6),
            "rate_per_s": round(self.rate, 3),
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
            "stopped": self.stopped,
            "members_stopped": self.members_stopped,
        }


#: seconds a stretch of reviews that send nothing (cached, copied) keeps its writes uncommitted
_COMMIT_AT_LEAST_EVERY = 1.0
#: the cells of one tool come one after another, one per persona and member
_tool_fingerprint: ByIdentity[str] = ByIdentity(lambda tool: tool.fingerprint())


class BudgetStop(Exception):
    """The next send could take the run over its budget."""


def cache_key(backend: Backend, request: Request, persona_version: str) -> str:
    """Hash of the request as the member sends it: the body in the structured form it uses,
    with its string caps and sampling extras (`Backend.wire`), and where it goes with the
    options that change a reply (`Backend.identity`). Never timeouts, limits, prices or keys:
    the options left out are listed in `panel.backends.options.NOT_IN_CACHE_KEY`, and nothing
    the client sends beside the body (headers, keys) is hashed.

    The run's sampling settings are in it whether or not the provider takes each of them:
    the seed is what makes repeats of a review distinct requests, even to a provider that
    takes no seed.

    It is the sha256 of this JSON, keys sorted, each JSON Schema object in the request
    written as `"sha256:<hex digest of its sorted JSON>"`:
    `{"backend", "persona", "request", "sampling", "source"}`.
    """
    material = {
        "backend": backend.name,
        "persona": persona_version,
        "request": _schemas_hashed(backend.wire(request)),
        "sampling": request.sampling.as_dict(),
        "source": backend.identity(),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _schemas_hashed(value: Any) -> Any:
    """The request with each JSON Schema object in it written as its digest: the same few
    schemas go in every request of a run, so each is written out once, not once a request."""
    if isinstance(value, dict):
        if "properties" in value:
            return _schema_digest(value)
        return {k: _schemas_hashed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_schemas_hashed(v) for v in value]
    return value


_schema_digest: ByIdentity[str] = ByIdentity(
    lambda schema: "sha256:" + hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()
)


def _what(cell: Cell) -> str:
    """A request as the line about its member's server names it."""
    return f"{cell.tool.id} / {cell.persona.id}"


@dataclass
class Engine:
    store: Store
    run_id: str
    prompts: PromptSet
    members: list[Member]
    sampling: Sampling = field(default_factory=Sampling)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    use_cache: bool = True
    max_cost: float | None = None
    #: a previous run whose unchanged, valid reviews are copied instead of re-made
    since_run: str | None = None
    on_result: Callable[[CellResult, RunStats], None] | None = None
    #: told (member label, reason) when the run stops sending to a member
    on_stopped: Callable[[str, str], None] | None = None
    stats: RunStats = field(default_factory=lambda: RunStats(total=0))
    _stop: bool = field(default=False, init=False)
    #: whether workers run the cells (`run`), so a member whose server went away is stopped;
    #: a single review (regenerate) stores the failure instead
    _live: bool = field(default=False, init=False)
    #: whether this run had reviews or requests stored before this process began it
    _resumed: bool = field(default=True, init=False)
    #: the structured-output form stored for each backend's form key
    _forms: dict[str, str] = field(default_factory=dict, init=False)
    #: runs the members on the batch route (set it to choose its options)
    batch_runner: Any = None
    #: reviews set aside per cell (`Store.generations`): each moves the cell's seed on
    generations: dict[CellKey, int] = field(default_factory=dict)

    async def run(self, cells_for: Callable[[Backend], Iterator[Cell]], total: int) -> RunStats:
        """Run every cell; `cells_for(backend)` yields one member's cells lazily."""
        valid, failed = self.store.review_counts(self.run_id)
        self.store.mark_lost(self.run_id)
        # A cell whose review an editor set aside is made anew with its moved seed, here too.
        self.generations = self.store.generations(self.run_id)
        # A run that starts with nothing stored (not a resume) can skip the per-cell lookups
        # of what an earlier process of it did.
        self._resumed = valid + failed > 0 or self.store.has_requests(self.run_id)
        self.stats = RunStats(
            total=total,
            done=valid + failed,
            valid=valid,
            failed=failed,
            lost=self.store.lost_requests(self.run_id),
            spent=self.store.spent(self.run_id),
        )
        for member in self.members:
            # A form an earlier process found is used at once: the server is not asked again.
            found = self.store.member_form(member.backend.form_key())
            if found is not None:
                member.backend.adopt_form(found.form, found.max_length)
                self._forms[member.backend.form_key()] = found.form
        workers = []
        for member in self.members:
            cells = cells_for(member.backend)
            if member.route == "batch":
                workers.append(self._batch_member(member, cells))
                continue
            workers += [self._worker(member, cells) for _ in range(max(1, member.concurrency))]
        self._live = True
        # Writes are committed in groups; each request is committed before it is sent.
        self.store.group_commits(True)
        try:
            await asyncio.gather(*workers)
        finally:
            self.store.group_commits(False)
        return self.stats

    async def _worker(self, member: Member, cells: Iterator[Cell]) -> None:
        # Workers of one member share its iterator; next() never awaits, so no lock is needed.
        for cell in cells:
            if self._stop or member.watch.stopped is not None:
                return
            if self._resumed and self.store.has_review(self.run_id, cell.key):
                continue  # finished before a crash or a stop; counted at the start
            try:
                result = await self.review(cell, member)
            except BudgetStop:
                self._stop = True
                self.stats.stopped = "budget"
                return
            except MemberStopped:
                return  # this cell and the member's others stay unstored, for --resume
            self._count(result, result.source)
            self.store.commit_stale(_COMMIT_AT_LEAST_EVERY)

    async def _batch_member(self, member: Member, cells: Iterator[Cell]) -> None:
        from .batch import BatchRunner

        if self.batch_runner is None:
            self.batch_runner = BatchRunner(self)
        # One runner per member, with the options of the configured one: each polls only
        # its own provider's batches.
        runner = replace(self.batch_runner)
        try:
            await runner.run(member, cells)
        except BudgetStop:
            self._stop = True
            self.stats.stopped = "budget"

    async def reask(self, cell: Cell, member: Member, request: Request, fingerprint: str) -> CellResult:
        """The second ask of a cell whose first reply came back invalid (from a batch), live;
        MemberStopped, the cell left unstored, when its server went away (see `review`)."""
        try:
            request_id, reply, _ = await self._ask(cell, member, request, 2)
        except BackendError as exc:
            self.unless_stopped(member, exc)
            error = f"{exc.kind} error from {cell.backend.label}: {exc}"
            return self._save(cell, None, error, None, None, 2, fingerprint, "sent")
        judged = self.judge(cell, reply, request_id, 2, fingerprint, "sent")
        assert isinstance(judged, CellResult)  # a second ask is stored, valid or not
        return judged

    def _count(self, result: CellResult, source: str) -> None:
        s = self.stats
        s.done += 1
        s.cached += source == "cached"
        s.copied += source == "copied"
        s.valid += result.valid
        s.failed += not result.valid
        if self.on_result is not None:
            self.on_result(result, s)

    def fingerprint(self, cell: Cell) -> str:
        """Hash of a cell's inputs: the tool's facts, the persona file, the model, the prompts
        and the depth they were rendered at."""
        member = self._member(cell)
        material = [
            _tool_fingerprint(cell.tool),
            cell.persona.version,
            cell.backend.label,
            cell.backend.identity(),
            self.prompts.fingerprint,
            member.sampling(self._sampling(cell)).as_dict(),
            member.depth,
        ]
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]

    def _member(self, cell: Cell) -> Member:
        for member in self.members:  # a handful: a scan is cheaper than keeping a map in step
            if member.backend is cell.backend:
                return member
        raise LookupError(f"{cell.backend.label} is not a member of this run")

    def _sampling(self, cell: Cell) -> Sampling:
        # Repeats differ only in their seed, so test-retest runs are themselves repeatable; a
        # regenerated review's seed moves on by a stride per review of its cell set aside, so
        # its request (and cache key) is new, and a resume makes it with the same seed.
        shift = self.generations.get(cell.key, 0) * SEED_STRIDE if self.generations else 0
        return replace(self.sampling, seed=self.sampling.seed + cell.repeat + shift)

    def request(self, cell: Cell) -> Request:
        """The first ask of a cell: its member's depth and token limit, its repeat's seed."""
        return self._member(cell).request(cell, self.prompts, self._sampling(cell))

    async def review(self, cell: Cell, member: Member) -> CellResult:
        """Make one review: ask, validate, re-ask once with the error, store the outcome."""
        fingerprint = self.fingerprint(cell)
        if self.since_run is not None:
            copied = self._copy_from_since(cell, fingerprint)
            if copied is not None:
                return copied
        backend = cell.backend
        request = self.request(cell)
        raw: str | None = None
        request_id: int | None = None
        all_cached = True
        enforced: str | None = None
        for ask in (1, 2):
            try:
                request_id, reply, from_store = await self._ask(cell, member, request, ask)
            except BackendError as exc:
                self.unless_stopped(member, exc)
                error = f"{exc.kind} error from {backend.label}: {exc}"
                return self._save(cell, None, error, raw, request_id, ask, fingerprint, "sent", enforced)
            all_cached = all_cached and from_store
            enforced = reply.meta.get("enforced") or backend.enforced
            raw = reply.text
            source = "cached" if all_cached else "sent"
            judged = self.judge(cell, reply, request_id, ask, fingerprint, source)
            if isinstance(judged, CellResult):
                return judged
            request = replace(request, messages=self.prompts.reask_messages(request.messages, raw, judged))
        raise AssertionError("the second ask is always judged")

    def judge(
        self, cell: Cell, reply: Reply, request_id: int, ask: int, fingerprint: str, source: str
    ) -> CellResult | str:
        """Store the review a reply makes, valid or (after the re-ask) failed; an invalid first
        reply is not stored: its error comes back, for the re-ask."""
        enforced = reply.meta.get("enforced") or cell.backend.enforced
        try:
            review = parse_review(cell.persona.review_model, reply.text, reply.finish_reason)
        except InvalidReply as exc:
            if ask == 1:
                return str(exc)
            error = f"invalid after re-ask: {exc}"
            return self._save(cell, None, error, reply.text, request_id, ask, fingerprint, source, enforced)
        data = review.model_dump(mode="json")
        return self._save(cell, data, None, reply.text, request_id, ask, fingerprint, source, enforced)

    async def send(self, cell: Cell, member: Member, request: Request, ask: int) -> tuple[int, Reply, bool]:
        """One request of any round through the run's store, cache, budget, limiter and retries:
        (request id, reply, whether the reply came from the store)."""
        return await self._ask(cell, member, request, ask)

    async def _ask(self, cell: Cell, member: Member, request: Request, ask: int) -> tuple[int, Reply, bool]:
        """One request's reply: from this run (resume), from the cache, or from the model."""
        key = cache_key(cell.backend, request, cell.persona.version)
        stored = self.store.stored_reply(key, run_id=self.run_id) if self._resumed else None
        if stored is not None:
            return stored[0], stored[1], True
        if self.use_cache:
            stored = self.store.stored_reply(key)
            if stored is not None:
                request_id = self._record(cell, request, ask, key)
                self.store.finish_request(request_id, stored[1], 0, cached_from=stored[0])
                return request_id, stored[1], True

        est_in = input_tokens(request.messages, request.schema)
        worst = member.price.worst_case(est_in, request.sampling.max_tokens) if member.price else 0.0
        if self.max_cost is not None and self.stats.spent + self.stats.reserved + worst > self.max_cost:
            raise BudgetStop()
        self.stats.reserved += worst
        request_id = self._record(cell, request, ask, key, worst)
        await self.store.durable()  # never send a request a crash could forget
        estimate = est_in + request.sampling.max_tokens
        tries = [0]

        async def attempt() -> Reply:
            tries[0] += 1
            return await self._send(member, request, estimate, cell)

        try:
            reply, _ = await call_with_retries(
                attempt, self.retry, on_retry=lambda exc, wait: self._on_retry(member, exc, wait)
            )
        except BackendError as exc:
            self.store.finish_request(request_id, None, tries[0], error=str(exc))
            raise
        finally:
            self.stats.reserved -= worst
        cost = charge(member.price, reply.usage, worst)
        self.stats.spent += cost
        self.stats.sent += 1
        self.store.finish_request(request_id, reply, tries[0], cost_usd=cost)
        return request_id, reply, False

    def _record(self, cell: Cell, request: Request, ask: int, key: str, worst: float = 0.0) -> int:
        return self.store.begin_request(
            self.run_id,
            cell.key,
            cell.backend.name,
            cell.backend.model,
            ask,
            request.messages,
            request.schema_name,
            request.sampling.as_dict(),
            key,
            reserved_usd=worst,
            round_=cell.ROUND,
        )

    async def _send(self, member: Member, request: Request, estimate: int, cell: Cell) -> Reply:
        if member.watch.stopped is not None:
            raise MemberStopped(member.watch.stopped)
        reservation = await member.limiter.acquire(estimate)
        backend = member.backend
        try:
            # The client's own timeout should fire first; this one is the backstop. A timeout
            # scope, unlike wait_for, costs no task of its own per request.
            async with asyncio.timeout(member.timeout + 5 if member.timeout else None):
                reply = await backend.generate(request)
        except TimeoutError:
            raise TransientError(f"no reply within {member.timeout:.0f} s") from None
        except BackendError as exc:
            member.limiter.failed(reservation, exc)  # a 429 slows the whole member down
            if not isinstance(exc, UnreachableError):
                member.watch.took(_what(cell))  # the server is there: it answered, or broke
            raise
        except Exception as exc:  # our bug stops the run; an SDK error we did not map fails the review
            raise backend.bug(exc) or backend.as_backend_error(exc) from exc
        member.watch.took(_what(cell))
        self._remember_form(backend)
        reply.usage = believed(reply.usage, request)
        used = reply.usage.input_tokens + reply.usage.output_tokens
        member.limiter.settle(reservation, estimate if reply.usage.unknown else used)
        member.limiter.observe(reply.meta.get("ratelimit"))
        return reply

    def _remember_form(self, backend: Backend) -> None:
        """Store the form `structured = "auto"` found, once, so no later process probes."""
        form = backend.negotiated_form()
        key = backend.form_key()
        if form is not None and self._forms.get(key) != form:
            self._forms[key] = form
            self.store.save_member_form(key, form, backend.string_cap())

    def stop_member(self, member: Member, reason: str) -> None:
        """Send `member` nothing more in this run; the rest of the panel carries on.

        Its workers take no more cells, its requests in flight end at their next try, and
        its cells not yet reviewed stay unstored for `--resume`; the run ends `stopped`.
        """
        if member.watch.stopped is not None:
            return
        member.watch.stopped = reason
        self.stats.members_stopped[member.backend.label] = reason
        self.stats.stopped = self.stats.stopped or "member"
        if self.on_stopped is not None:
            self.on_stopped(member.backend.label, reason)

    def unless_stopped(self, member: Member, exc: BackendError) -> None:
        """Raise MemberStopped, for the request's cell to be left unstored (for --resume), when
        the request failed because its member is stopped: it was already, or the request met
        a closed port on its last try while workers run the cells (round 1, a batch's live
        re-asks, the rebuttal round). Any other failure is the cell's to store."""
        if isinstance(exc, UnreachableError) and self._live:
            self.stop_member(member, member.watch.gone(exc, self.retry.attempts))
        if member.watch.stopped is not None and isinstance(exc, MemberStopped | UnreachableError):
            raise MemberStopped(member.watch.stopped) from None

    def _on_retry(self, member: Member, exc: BackendError, wait: float) -> None:
        self.stats.retries += 1
        if exc.kind == "rate_limit":
            member.limiter.pause(wait)

    def _copy_from_since(self, cell: Cell, fingerprint: str) -> CellResult | None:
        assert self.since_run is not None
        previous = self.store.review(self.since_run, cell.key)
        if previous is None or not previous.valid or previous.fingerprint != fingerprint:
            return None
        self.store.save_review(
            self.run_id,
            cell.key,
            cell.backend.name,
            cell.backend.model,
            data=previous.data,
            error=None,
            raw_reply=previous.raw_reply,
            request_id=None,
            asks=previous.asks,
            fingerprint=fingerprint,
            copied_from=self.since_run,
            enforced=previous.enforced,
        )
        return CellResult(cell, True, previous.verdict, None, previous.asks, "copied")

    def _save(
        self,
        cell: Cell,
        data: dict[str, Any] | None,
        error: str | None,
        raw: str | None,
        request_id: int | None,
        asks: int,
        fingerprint: str,
        source: str,
        enforced: str | None = None,
    ) -> CellResult:
        self.store.save_review(
            self.run_id,
            cell.key,
            cell.backend.name,
            cell.backend.model,
            data=data,
            error=error,
            raw_reply=raw,
            request_id=request_id,
            asks=asks,
            fingerprint=fingerprint,
            enforced=enforced,
        )
        verdict = data.get("verdict") if data else None
        return CellResult(cell, data is not None, verdict, error, asks, source)
