"""What the asks after round 1 share (the rebuttal round, head-to-head judgements): one ask sent
through the engine and re-asked once with the error when its reply does not fit, and the
workers that take a member's asks in turn until the budget or the member's server stops them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from ..backends.base import Request
from ..errors import BackendError
from .cells import Cell, Member
from .engine import Engine
from .outage import MemberStopped
from .routes import BudgetStop
from .validate import InvalidReply

__all__ = ["Asked", "Workers", "ask_twice"]

C = TypeVar("C", bound=Cell)
R = TypeVar("R")


@dataclass(frozen=True)
class Asked:
    """An ask's outcome: the valid answer or why there is none, with what to store beside it."""

    data: dict[str, Any] | None
    error: str | None
    raw: str | None
    request_id: int | None
    asks: int


async def ask_twice(
    engine: Engine,
    cell: Cell,
    member: Member,
    request: Request,
    parse: Callable[[str, str | None], dict[str, Any]],
) -> Asked:
    """Send, parse (`parse(text, finish_reason)` raises InvalidReply), re-ask once with the
    error; a backend error is the outcome too (a server gone away stops the member instead)."""
    raw: str | None = None
    request_id: int | None = None
    for ask in (1, 2):
        try:
            request_id, reply, _ = await engine.send(cell, member, request, ask)
        except BackendError as exc:
            engine.unless_stopped(member, exc)  # its server went away: left for --resume
            return Asked(None, f"{exc.kind} error from {cell.backend.label}: {exc}", raw, request_id, ask)
        raw = reply.text
        try:
            data = parse(reply.text, reply.finish_reason)
        except InvalidReply as exc:
            if ask == 2:
                return Asked(None, f"invalid after re-ask: {exc}", raw, request_id, ask)
            again = engine.prompts.reask_messages(request.messages, raw, str(exc))
            request = replace(request, messages=again)
            continue
        return Asked(data, None, raw, request_id, ask)
    raise AssertionError("the second ask is always judged")


#: seconds a stretch of answers that send nothing keeps its writes uncommitted
COMMIT_AT_LEAST_EVERY = 1.0


@dataclass
class Workers(Generic[C, R]):
    """Each member's asks, taken in turn by as many workers as the member's concurrency."""

    engine: Engine
    #: whether a cell's answer is stored already (answered before a crash or a stop)
    stored: Callable[[C], bool]
    answer: Callable[[Engine, C, Member], Awaitable[R]]
    #: told each answer made
    made: Callable[[R], None]
    #: told each cell skipped as stored
    skipped: Callable[[C], None] = lambda cell: None
    stop: bool = False

    async def worker(self, member: Member, cells: Iterator[C]) -> None:
        for cell in cells:
            if self.stop or member.watch.stopped is not None:
                return
            if self.stored(cell):
                self.skipped(cell)
                continue
            try:
                result = await self.answer(self.engine, cell, member)
            except BudgetStop:
                self.stop = True
                self.engine.stop("budget")
                return
            except MemberStopped:
                return  # this answer and the member's others stay unstored, for --resume
            self.made(result)
            self.engine.store.commit_stale(COMMIT_AT_LEAST_EVERY)

    async def run(self, cells_for: Callable[[Member], Iterator[C]]) -> None:
        """Every member's cells, its workers sharing one iterator; commits grouped meanwhile."""
        workers = []
        for member in self.engine.members:
            cells = cells_for(member)
            workers += [self.worker(member, cells) for _ in range(max(1, member.concurrency))]
        self.engine.store.group_commits(True)
        try:
            await asyncio.gather(*workers)
        finally:
            self.engine.store.group_commits(False)
