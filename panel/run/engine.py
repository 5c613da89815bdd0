"""The engine: runs every (tool, persona, member, repeat) cell within limits, budget and faults.

Work streams: each panel member's cells come from a lazy iterator, so memory stays flat
however large the catalog, and go through the route the member takes (`panel.run.routes`:
live, or the provider's batch API). For each cell the engine renders the request, sends it
under the member's rate limiter and the one retry policy, validates the reply, re-asks once
with the error, and stores everything as it goes:

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

The routes, the rebuttal round (`panel.run.rebuttal`) and regenerate use only the public
operations below: `done_before`, `fingerprint`, `request`, `copy_since`, `cached`,
`reserve`, `room`, `hold`/`release`, `paid`, `send`, `review` (`review_alone`), `reask`,
`judge`, `save`, `finish`, `stop`, `tell`. What it tells goes to `on_event` as events
(`panel.run.events`).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from ..backends.base import Backend, Reply, Request, Sampling
from ..errors import BackendError, UnreachableError, UserError
from ..prompts import PromptSet
from ..store import CellKey, Store
from .cache_key import cache_key
from .cells import SEED_STRIDE, Cell, CellResult, Member
from .events import Event, ReviewMade, SendingStopped, Sink
from .outage import MemberStopped
from .pricing import input_tokens
from .records import RunRecords
from .retry import RetryPolicy, call_with_retries
from .routes import BudgetStop, LiveRoute, Route, RouteMaker
from .sending import call_member
from .stats import RunStats
from .usage import charge
from .validate import InvalidReply, parse_review

__all__ = ["Engine"]


def _what(cell: Cell) -> str:
    """A request as the line about its member's server names it."""
    return f"{cell.tool.id} / {cell.persona.id}"


@dataclass
class Engine(RunRecords):
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
    #: told every event of the run, in order (`panel.run.events`)
    on_event: Sink | None = None
    stats: RunStats = field(default_factory=lambda: RunStats(total=0))
    #: the routes members may take besides "live", by name (the batch route: `panel.run.plan`)
    routes: dict[str, RouteMaker] = field(default_factory=dict)
    #: reviews set aside per cell (`Store.generations`): each moves the cell's seed on
    generations: dict[CellKey, int] = field(default_factory=dict)
    _stopping: bool = field(default=False, init=False)
    #: whether routes run the cells (`run`), so a member whose server went away is stopped;
    #: a single review (regenerate) stores the failure instead
    _live: bool = field(default=False, init=False)
    #: whether this run had reviews or requests stored before this process began it
    _resumed: bool = field(default=True, init=False)
    #: the structured-output form stored for each backend's form key
    _forms: dict[str, str] = field(default_factory=dict, init=False)

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
        routes = [(member, self._route(member)) for member in self.members]  # all known first
        workers = [w for member, route in routes for w in route.workers(member, cells_for(member.backend))]
        self._live = True
        # Writes are committed in groups; each request is committed before it is sent.
        self.store.group_commits(True)
        try:
            await asyncio.gather(*workers)
        finally:
            self.store.group_commits(False)
        return self.stats

    def _route(self, member: Member) -> Route:
        make = self.routes.get(member.route) or (LiveRoute if member.route == "live" else None)
        if make is None:
            raise UserError(f'{member.backend.label}: this run has no route "{member.route}"')
        return make(self)

    # -- what routes ask of the run --------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """Whether the run takes no new work (it stopped at the budget)."""
        return self._stopping

    def stop(self, reason: str) -> None:
        """Take no new work: what is in flight finishes, the rest waits for `--resume`."""
        self._stopping = True
        self.stats.stopped = reason

    def done_before(self, cell: Cell) -> bool:
        """Whether an earlier process of this run stored the cell's review (counted already)."""
        return self._resumed and self.store.has_review(self.run_id, cell.key)

    def tell(self, event: Event) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def finish(self, result: CellResult) -> None:
        """Count a stored review, and tell it (`ReviewMade`)."""
        s = self.stats
        s.done += 1
        s.cached += result.source == "cached"
        s.copied += result.source == "copied"
        s.valid += result.valid
        s.failed += not result.valid
        if self.on_event is not None:
            self.on_event(ReviewMade(result, copy.copy(s)))

    def room(self) -> float | None:
        """What the budget has left for new sends (None: no budget)."""
        if self.max_cost is None:
            return None
        return self.max_cost - self.stats.spent - self.stats.reserved

    def hold(self, worst: float) -> None:
        """Reserve a worst case against the budget until `release`."""
        self.stats.reserved += worst

    def release(self, worst: float) -> None:
        self.stats.reserved -= worst

    def paid(self, cost: float, *, batch_at_live: float | None = None) -> None:
        """Count one reply from a model and what it cost; on the batch route, also what the
        same reply would have cost on the live route."""
        s = self.stats
        s.spent += cost
        s.sent += 1
        if batch_at_live is not None:
            s.batch_spent += cost
            s.batch_at_live += batch_at_live

    def fingerprint(self, cell: Cell) -> str:
        """Hash of a cell's inputs: the tool's facts, the persona file, the model, the prompts
        and the depth they were rendered at."""
        return self._member(cell).fingerprint(cell, self.prompts, self._sampling(cell))

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

    # -- making a review -------------------------------------------------------------------

    async def review_alone(self, cell: Cell, member: Member) -> CellResult:
        """Make one cell's review outside a run of its routes (regenerate): with the seed the
        reviews of the cell set aside move it to, its failure stored, and counted alone."""
        self.generations = self.store.generations(self.run_id)
        self.stats = RunStats(total=1)
        result = await self.review(cell, member)
        self.finish(result)
        return result

    async def review(self, cell: Cell, member: Member) -> CellResult:
        """Make one review: ask, validate, re-ask once with the error, store the outcome."""
        fingerprint = self.fingerprint(cell)
        copied = self.copy_since(cell, fingerprint)
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
                request_id, reply, from_store = await self.send(cell, member, request, ask)
            except BackendError as exc:
                self.unless_stopped(member, exc)
                error = f"{exc.kind} error from {backend.label}: {exc}"
                return self.save(cell, None, error, raw, request_id, ask, fingerprint, "sent", enforced)
            all_cached = all_cached and from_store
            enforced = reply.meta.get("enforced") or backend.enforced
            raw = reply.text
            source = "cached" if all_cached else "sent"
            judged = self.judge(cell, reply, request_id, ask, fingerprint, source)
            if isinstance(judged, CellResult):
                return judged
            request = replace(request, messages=self.prompts.reask_messages(request.messages, raw, judged))
        raise AssertionError("the second ask is always judged")

    async def reask(self, cell: Cell, member: Member, request: Request, fingerprint: str) -> CellResult:
        """The second ask of a cell whose first reply came back invalid (from a batch), live;
        MemberStopped, the cell left unstored, when its server went away (see `review`)."""
        try:
            request_id, reply, _ = await self.send(cell, member, request, 2)
        except BackendError as exc:
            self.unless_stopped(member, exc)
            error = f"{exc.kind} error from {cell.backend.label}: {exc}"
            return self.save(cell, None, error, None, None, 2, fingerprint, "sent")
        judged = self.judge(cell, reply, request_id, 2, fingerprint, "sent")
        assert isinstance(judged, CellResult)  # a second ask is stored, valid or not
        return judged

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
            return self.save(cell, None, error, reply.text, request_id, ask, fingerprint, source, enforced)
        data = review.model_dump(mode="json")
        return self.save(cell, data, None, reply.text, request_id, ask, fingerprint, source, enforced)

    # -- sending one request ---------------------------------------------------------------

    async def send(self, cell: Cell, member: Member, request: Request, ask: int) -> tuple[int, Reply, bool]:
        """One request of any round through the run's store, cache, budget, limiter and
        retries: (request id, reply, whether the reply came from the store)."""
        key = cache_key(cell.backend, request, cell.persona.version)
        stored = self.store.stored_reply(key, run_id=self.run_id) if self._resumed else None
        if stored is not None:
            return stored[0], stored[1], True
        cached = self.cached(cell, request, ask, key)
        if cached is not None:
            return cached[0], cached[1], True

        est_in = input_tokens(request.messages, request.schema)
        worst = member.price.worst_case(est_in, request.sampling.max_tokens) if member.price else 0.0
        if self.max_cost is not None and self.stats.spent + self.stats.reserved + worst > self.max_cost:
            raise BudgetStop()
        self.hold(worst)
        request_id = self._record(cell, request, ask, key, worst)
        await self.store.durable()  # never send a request a crash could forget
        estimate = est_in + request.sampling.max_tokens
        tries = [0]

        async def attempt() -> Reply:
            tries[0] += 1
            reply = await call_member(member, request, estimate, _what(cell))
            self._remember_form(member.backend)
            return reply

        try:
            reply, _ = await call_with_retries(
                attempt, self.retry, on_retry=lambda exc, wait: self._on_retry(member, exc, wait)
            )
        except BackendError as exc:
            self.store.finish_request(request_id, None, tries[0], error=str(exc))
            raise
        finally:
            self.release(worst)
        cost = charge(member.price, reply.usage, worst)
        self.paid(cost)
        self.store.finish_request(request_id, reply, tries[0], cost_usd=cost)
        return request_id, reply, False

    def _remember_form(self, backend: Backend) -> None:
        """Store the form `structured = "auto"` found, once, so no later process probes."""
        form = backend.negotiated_form()
        key = backend.form_key()
        if form is not None and self._forms.get(key) != form:
            self._forms[key] = form
            self.store.save_member_form(key, form, backend.string_cap())

    def _on_retry(self, member: Member, exc: BackendError, wait: float) -> None:
        self.stats.retries += 1
        if exc.kind == "rate_limit":
            member.limiter.pause(wait)

    # -- a member's server going away ------------------------------------------------------

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
        self.tell(SendingStopped(member.backend.label, reason))

    def unless_stopped(self, member: Member, exc: BackendError) -> None:
        """Raise MemberStopped, for the request's cell to be left unstored (for --resume), when
        the request failed because its member is stopped: it was already, or the request met
        a closed port on its last try while routes run the cells (round 1, a batch's live
        re-asks, the rebuttal round). Any other failure is the cell's to store."""
        if isinstance(exc, UnreachableError) and self._live:
            self.stop_member(member, member.watch.gone(exc, self.retry.attempts))
        if member.watch.stopped is not None and isinstance(exc, MemberStopped | UnreachableError):
            raise MemberStopped(member.watch.stopped) from None
