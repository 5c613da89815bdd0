"""The batch route: a member's cells go to its provider's Batch API instead of one by one.

For each batch member the runner (1) re-attaches to the run's batches still unfinished in
the ledger, (2) walks the member's cells, skipping what is done, copied (`--since`) or in
the cache, and submits the rest in batches within the provider's limits and the budget,
(3) polls every batch until the provider is done with it and stores its results as they
come, matched by custom_id only, and (4) sends follow-up batches: errored and expired
requests again (up to the retry policy's attempts), invalid replies re-asked once.

Crash safety follows the ledger's order (see `panel.store.batches`): requests and their
batch are committed before the submit call, the provider's batch id right after it, and a
batch found 'submitting' on resume is looked for at the provider before it is sent again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from ..backends.base import Reply, Request
from ..backends.batch import METADATA_KEY, METADATA_RUN, BatchAPI, BatchEntry, BatchStatus
from ..errors import BackendError, FatalError, TransientError, UserError
from ..store import CellKey, custom_id_for
from .cells import Cell, CellResult, Member
from .engine import Engine
from .events import BatchSeen
from .outage import MemberStopped
from .pricing import Price, input_tokens
from .routes import BudgetStop
from .usage import believed, charge

__all__ = ["DEFAULT_POLL_S", "BatchRunner"]

DEFAULT_POLL_S = 30.0
#: results stored between commits while a batch is collected
_COMMIT_EVERY = 256
#: polls in a row that may fail to reach the provider before the run stops (resume later)
_FAILED_LOOKS = 10

Sleep = Callable[[float], Awaitable[None]]


@dataclass
class _Ask:
    """One request of a batch, as the runner needs it to store and judge the result."""

    cell: Cell
    request: Request
    ask: int
    request_id: int
    fingerprint: str
    #: how many batches this ask has been in (errored and expired requests go again)
    tries: int = 1


@dataclass
class _Batch:
    key: str
    attempt: int
    asks: dict[str, _Ask]
    reserved: float
    status: BatchStatus | None = None
    #: polls in a row that could not reach the provider
    failed_looks: int = 0
    #: when the ledger recorded it (finds it again at a provider that keeps no metadata)
    created_at: float | None = None


@dataclass
class BatchRunner:
    """The batch route of one member of an engine's run (see the module docstring); it
    tells the engine's sink of every batch submitted and of its state at every poll
    (`BatchSeen`)."""

    engine: Engine
    poll_interval: float = DEFAULT_POLL_S
    #: re-ask invalid replies live instead of in a follow-up batch
    reask_live: bool = False
    #: submit, then return without waiting for the results (`--detach`)
    detach: bool = False
    sleep: Sleep = asyncio.sleep
    _open: dict[str, _Batch] = field(default_factory=dict, init=False)
    #: the member this runner serves (the engine gives each batch member a runner of its own)
    _label: str = field(default="", init=False)

    def workers(self, member: Member, cells: Iterator[Cell]) -> list[Coroutine[Any, Any, None]]:
        """One worker: it submits, polls and collects the member's batches."""
        return [self._until_budget(member, cells)]

    async def _until_budget(self, member: Member, cells: Iterator[Cell]) -> None:
        try:
            await self.run(member, cells)
        except BudgetStop:
            self.engine.stop("budget")

    async def run(self, member: Member, cells: Iterator[Cell]) -> None:
        self._label = member.backend.label
        api = member.backend.batch_api()
        if api is None:
            raise UserError(
                f"{member.backend.label} cannot take route = \"batch\": backend '{member.backend.name}' "
                "has no batch API (openai, anthropic and mistral have one)"
            )
        try:
            await self._run(member, api, cells)
        finally:
            await api.aclose()

    async def _run(self, member: Member, api: BatchAPI, cells: Iterator[Cell]) -> None:
        engine, store = self.engine, self.engine.store
        label = member.backend.label
        unfinished = store.batches(engine.run_id, label, unfinished_only=True)
        # An earlier process's batches, first: their reservations count before anything new
        # is reserved, and one it may have sent without recording is looked for before this
        # process sends anything that could be mistaken for it.
        known = {row.provider_batch_id for row in store.batches(engine.run_id) if row.provider_batch_id}
        waiting: dict[CellKey, list[tuple[str, str, int]]] = {}
        for row in unfinished:
            engine.hold(row.reserved_usd)
            batch = _Batch(row.batch_key, row.attempt, {}, row.reserved_usd, created_at=row.created_at)
            self._open[row.batch_key] = batch
            if row.provider_batch_id is not None:
                batch.status = BatchStatus(row.provider_batch_id, row.state, row.counts)
            else:
                await self._find(api, batch, [cid for cid, _ in store.batch_custom_ids(row.batch_key)], known)
            for custom_id, request_id in store.unanswered_in_batch(row.batch_key):
                key = store.request_cell(request_id)
                waiting.setdefault(key, []).append((row.batch_key, custom_id, request_id))
        chunk: list[_Ask] = []
        size = 0
        for cell in cells:
            if cell.key in waiting:
                # The ledger's own custom_ids: the ones the provider answers under.
                for batch_key, custom_id, request_id in waiting.pop(cell.key):
                    self._open[batch_key].asks[custom_id] = self._ask_of(cell, request_id, batch_key)
                continue
            if engine.stopping:
                if not waiting:
                    break
                continue  # no new work, but the cells of batches in flight must be found
            if engine.done_before(cell):
                continue
            fingerprint = engine.fingerprint(cell)
            copied = engine.copy_since(cell, fingerprint)
            if copied is not None:
                engine.finish(copied)
                continue
            request = engine.request(cell)
            if self._from_cache(cell, request, fingerprint):
                continue
            ask = _Ask(cell, request, 1, 0, fingerprint)
            entry_size = api.size(BatchEntry(custom_id_for(10**12, engine.run_id), request))
            if chunk and (len(chunk) >= api.max_requests or size + entry_size > api.max_bytes):
                await self._submit(member, api, chunk, attempt=1)
                chunk, size = [], 0
            chunk.append(ask)
            size += entry_size
        if chunk and not engine.stopping:
            await self._submit(member, api, chunk, attempt=1)
        for row in unfinished:
            batch = self._open[row.batch_key]
            if batch.status is None:  # never reached the provider: send it now, as it was
                await self._send(member, api, batch)
        if self.detach:
            # Re-attached batches are looked at once, so the ledger and progress show them as
            # they are now; collecting is left to a run without --detach.
            for row in unfinished:
                if row.batch_key in self._open:
                    await self._look(api, self._open[row.batch_key])
            return
        await self._poll(member, api)

    async def _find(self, api: BatchAPI, batch: _Batch, custom_ids: list[str], known: set[str]) -> None:
        """A batch recorded as 'submitting': the provider may have it (never one the ledger
        already holds for another batch)."""
        metadata = {METADATA_KEY: batch.key, METADATA_RUN: self.engine.run_id}
        found = await api.find(metadata, custom_ids, since=batch.created_at)
        if found is None or found.provider_batch_id in known:
            return
        known.add(found.provider_batch_id)
        batch.status = found
        self.engine.store.batch_submitted(batch.key, found.provider_batch_id, found.state, found.counts)
        self.engine.store.commit()
        self._tell(batch)

    def _ask_of(self, cell: Cell, request_id: int, batch_key: str) -> _Ask:
        """An ask of an earlier process, rebuilt from the store for its result; it has been in
        as many batches as the batch's attempt says."""
        engine = self.engine
        messages, ask = engine.store.request_messages(request_id)
        request = replace(engine.request(cell), messages=messages)
        tries = self._open[batch_key].attempt
        return _Ask(cell, request, ask, request_id, engine.fingerprint(cell), tries=tries)

    def _from_cache(self, cell: Cell, request: Request, fingerprint: str) -> bool:
        """Serve the cell from the store's cache when an identical request was answered."""
        cached = self.engine.cached(cell, request, 1)
        if cached is None:
            return False
        request_id, reply = cached
        result = self._judge(_Ask(cell, request, 1, request_id, fingerprint), reply, "cached")
        if result is None:
            return False  # an invalid cached reply: let the batch ask again
        self.engine.finish(result)
        return True

    async def _submit(self, member: Member, api: BatchAPI, asks: list[_Ask], attempt: int) -> None:
        engine, store = self.engine, self.engine.store
        price = member.price.for_route("batch") if member.price else None
        worst = [self._worst(price, a.request) for a in asks]
        room = engine.room()
        if room is not None:
            # The batch's worst case is reserved before it goes; what does not fit waits for
            # a resume with a larger budget, and the run stops once submitted batches are in.
            fits, total = 0, 0.0
            for w in worst:
                if total + w > room:
                    break
                fits, total = fits + 1, total + w
            if fits < len(asks):
                engine.stop("budget")
                asks, worst = asks[:fits], worst[:fits]
            if not asks:
                return
        reserved = sum(worst)
        with store.transaction():
            for a, w in zip(asks, worst, strict=True):
                a.request_id = engine.reserve(a.cell, a.request, a.ask, w)
            pairs = [(a.request_id, custom_id_for(a.request_id, engine.run_id)) for a in asks]
            batch_key = store.new_batch(
                engine.run_id, member.backend.label, member.backend.name, attempt, reserved, pairs
            )
        store.commit()  # the batch and its requests are on disk before the provider sees them
        engine.hold(reserved)
        by_id = {custom_id: a for (_, custom_id), a in zip(pairs, asks, strict=True)}
        batch = _Batch(batch_key, attempt, by_id, reserved)
        self._open[batch_key] = batch
        await self._send(member, api, batch)

    @staticmethod
    def _worst(price: Price | None, request: Request) -> float:
        if price is None:
            return 0.0
        return price.worst_case(input_tokens(request.messages, request.schema), request.sampling.max_tokens)

    async def _send(self, member: Member, api: BatchAPI, batch: _Batch) -> None:
        entries = [BatchEntry(cid, a.request) for cid, a in batch.asks.items()]
        metadata = {METADATA_KEY: batch.key, METADATA_RUN: self.engine.run_id}
        try:
            batch.status = await api.submit(entries, metadata)
        except BackendError as exc:
            if exc.kind in ("transient", "rate_limit"):
                # The provider may have taken it before the answer was lost: sending it again
                # now could make two. A resume looks for it first, then sends it if need be.
                raise UserError(
                    f"{member.backend.label}: batch {batch.key} could not be submitted ({exc}); "
                    f"nothing is lost: `panel review --resume {self.engine.run_id}` looks for it "
                    "at the provider and sends it if it is not there"
                ) from None
            self._refused(member, batch, exc)
            return
        self.engine.store.batch_submitted(
            batch.key, batch.status.provider_batch_id, batch.status.state, batch.status.counts
        )
        self.engine.store.commit()
        self._tell(batch)

    def _refused(self, member: Member, batch: _Batch, exc: BackendError) -> None:
        """The provider refused the batch at submission (a 4xx): its cells fail with the
        provider's reason, and the batch is closed; sending it again would be refused again."""
        engine, store = self.engine, self.engine.store
        reason = f"{exc.kind} error from {member.backend.label}: batch refused at submission: {exc}"
        for a in batch.asks.values():
            store.finish_request(a.request_id, None, a.tries, error=str(exc))
            engine.finish(engine.save(a.cell, None, reason, None, a.request_id, a.ask, a.fingerprint, "sent"))
        store.batch_progress(batch.key, "failed", {}, str(exc))
        store.batch_collected(batch.key)
        store.commit()
        engine.release(batch.reserved)
        del self._open[batch.key]

    def _tell(self, batch: _Batch) -> None:
        if batch.status is not None:
            self.engine.tell(BatchSeen(self._label, batch.key, batch.status))

    async def _poll(self, member: Member, api: BatchAPI) -> None:
        while self._open:
            for batch in list(self._open.values()):
                assert batch.status is not None
                if not await self._look(api, batch):
                    continue
                if batch.status.finished:
                    try:
                        await self._collect(member, api, batch)
                    except BackendError as exc:
                        # What was stored stays; the batch stays uncollected at the provider.
                        self.engine.store.commit()
                        raise UserError(
                            f"{member.backend.label}: the results of batch {batch.key} could not be "
                            f"read ({exc}); `panel review --resume {self.engine.run_id}` reads them again"
                        ) from None
            if self._open:
                await self.sleep(self.poll_interval)

    async def _look(self, api: BatchAPI, batch: _Batch) -> bool:
        """Ask the provider for the state of a batch not yet finished; record and tell it.

        False when the provider could not be reached this time: the batch is the provider's
        to finish, so a failed look is tried again at the next poll, and only a run of them
        stops the run (to be resumed later).
        """
        assert batch.status is not None
        if batch.status.finished:
            return True
        try:
            batch.status = await api.status(batch.status.provider_batch_id)
        except BackendError as exc:
            batch.failed_looks += 1
            if exc.kind == "transient" and batch.failed_looks < _FAILED_LOOKS:
                return False
            raise UserError(
                f"{self._label}: batch {batch.key} could not be looked at "
                f"({batch.failed_looks} tries): {exc}; it is still the provider's to finish: "
                f"`panel review --resume {self.engine.run_id}` collects it later"
            ) from None
        batch.failed_looks = 0
        status = batch.status
        self.engine.store.batch_progress(batch.key, status.state, status.counts, status.error)
        self._tell(batch)
        return True

    async def _collect(self, member: Member, api: BatchAPI, batch: _Batch) -> None:
        engine, store = self.engine, self.engine.store
        assert batch.status is not None
        again: list[_Ask] = []
        reask: list[_Ask] = []
        price = member.price.for_route("batch") if member.price else None
        stored = unknown = 0
        seen: set[str] = set()
        async for outcome in api.results(batch.status):
            a = batch.asks.pop(outcome.custom_id, None)
            if a is None:
                # Not one of its requests (or a line seen twice): matched by custom_id only.
                # A line an earlier process already stored is its own, not unknown.
                ours = store.batch_request(outcome.custom_id, engine.run_id, member.backend.label)
                unknown += outcome.custom_id not in seen and ours is None
                continue
            seen.add(outcome.custom_id)
            stored += 1
            if stored % _COMMIT_EVERY == 0:
                store.commit()  # a large batch's results reach the disk as they are read
            if outcome.reply is not None:
                usage = outcome.reply.usage = believed(outcome.reply.usage, a.request)
                foreign = _foreign(a, outcome.reply)
                cost = charge(price, usage, self._worst(price, a.request))
                at_live = (
                    charge(member.price, usage, self._worst(member.price, a.request)) if member.price else 0.0
                )
                engine.paid(cost, batch_at_live=at_live)
                store.finish_request(a.request_id, outcome.reply, a.tries, error=foreign, cost_usd=cost)
                if foreign is not None:
                    # Paid for, and kept with its request, but not taken for this cell's answer.
                    self._retry_or_fail(a, TransientError(foreign), again)
                    continue
                result = self._judge(a, outcome.reply, "sent")
                if result is None:
                    reask.append(a)
                else:
                    engine.finish(result)
                continue
            error = outcome.error or BackendError("the provider gave no result")
            if batch.status.state == "cancelled":
                # A cancelled batch's `canceled` lines (Anthropic's) were cancelled on purpose.
                error = FatalError(f"{error} (the batch was cancelled)", request_id=error.request_id)
            store.finish_request(a.request_id, None, a.tries, error=str(error))
            self._retry_or_fail(a, error, again)
        state = batch.status.state
        for a in batch.asks.values():  # no line came back for these
            reason = f"no result in batch {batch.status.provider_batch_id} ({state})"
            if batch.status.error:
                reason += f": {batch.status.error}"
            store.finish_request(a.request_id, None, a.tries, error=reason)
            # Refused at validation, or cancelled on purpose: sending them again would not
            # help, or not be wanted. Expired, or a results file cut short: worth a follow-up.
            missing = FatalError(reason) if state in ("failed", "cancelled") else TransientError(reason)
            self._retry_or_fail(a, missing, again)
        if unknown:
            note = f"{unknown} result lines named no request of it: ignored"
            store.batch_progress(batch.key, state, batch.status.counts, note)
        store.batch_collected(batch.key)
        store.commit()
        engine.release(batch.reserved)
        del self._open[batch.key]
        for a in again:
            a.tries += 1
        if again and not engine.stopping:
            await self._submit(member, api, again, attempt=batch.attempt + 1)
        if reask and not engine.stopping:
            await self._reask(member, api, reask, batch.attempt + 1)

    def _retry_or_fail(self, a: _Ask, error: BackendError, again: list[_Ask]) -> None:
        if error.kind in ("transient", "rate_limit") and a.tries < self.engine.retry.attempts:
            again.append(a)
            return
        result = self.engine.save(
            a.cell, None, f"{error.kind} error from {a.cell.backend.label}: {error}", None,
            a.request_id, a.ask, a.fingerprint, "sent",
        )  # fmt: skip
        self.engine.finish(result)

    def _judge(self, a: _Ask, reply: Reply, source: str) -> CellResult | None:
        """Store a reply's review; None for an invalid first reply, now set up to be re-asked."""
        judged = self.engine.judge(a.cell, reply, a.request_id, a.ask, a.fingerprint, source)
        if isinstance(judged, CellResult):
            return judged
        messages = self.engine.prompts.reask_messages(a.request.messages, reply.text, judged)
        a.request = replace(a.request, messages=messages)
        a.ask = 2
        return None

    async def _reask(self, member: Member, api: BatchAPI, asks: list[_Ask], attempt: int) -> None:
        for a in asks:
            a.tries = 1
        if not self.reask_live:
            await self._submit(member, api, asks, attempt)
            return
        for a in asks:
            try:
                result = await self.engine.reask(a.cell, member, a.request, a.fingerprint)
            except MemberStopped:
                return  # its server went away: the cells left wait for --resume
            self.engine.finish(result)


def _foreign(a: _Ask, reply: Reply) -> str | None:
    """Why a result line's answer is not its request's, when what the provider echoes says
    so: in a tool form, a call to another review's tool.

    Providers echo nothing per request, so two requests of one persona whose answers came
    back under each other's custom_ids cannot be told apart; an answer to another persona
    fails its cell's schema (`Engine.judge`). The model an answer names is no sign either:
    one batch carries one member's requests, and a server may name the model behind the
    one asked for (an Azure deployment, a proxy's alias), which the live route takes."""
    tool = reply.meta.get("tool")
    if isinstance(tool, str) and tool != a.request.schema_name:
        return f"the result under its custom_id calls the tool {tool!r}, not {a.request.schema_name!r}"
    return None
