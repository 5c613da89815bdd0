"""Sending head-to-head asks through the engine: each (persona, member, pair) in both orders,
through the run's store, cache, budget, limiter and retries like any review; a reply that does
not fit is re-asked once with the error; every ask's answer or failure is stored
(`Store.save_head_to_head`), none dropped. An answer already stored is skipped (a resume)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from ..backends.base import Request, Sampling
from ..catalog import Tool
from ..depth import Depth
from ..errors import BackendError
from ..personas import Persona
from ..prompts import PromptSet
from .cells import Cell, Member
from .engine import Engine
from .head_to_head import asks, head_to_head_messages, head_to_head_schema, parse_head_to_head
from .outage import MemberStopped
from .routes import BudgetStop
from .validate import InvalidReply

__all__ = ["HEAD_TO_HEAD_MAX_TOKENS", "HeadToHeadCell", "HeadToHeadStats", "judge_pair", "run_head_to_head"]

#: the reply limit of a head-to-head ask: a letter and a sentence
HEAD_TO_HEAD_MAX_TOKENS = 300


@dataclass(frozen=True)
class HeadToHeadCell(Cell):
    """One order of one pair for one judge: `tool` shown first (Tool A), `rival` second."""

    rival: Tool | None = None
    ROUND: ClassVar[int] = 3

    @property
    def rival_id(self) -> str | None:
        return self.rival.id if self.rival is not None else None

    @property
    def shown(self) -> tuple[str, str]:
        assert self.rival is not None
        return (self.tool.id, self.rival.id)

    def request(self, prompts: PromptSet, sampling: Sampling, depth: Depth = "brief") -> Request:
        """The same short ask at either depth."""
        assert self.rival is not None
        return Request(
            messages=head_to_head_messages(prompts, self.persona, self.tool, self.rival),
            schema=head_to_head_schema(),
            schema_name=f"{self.persona.id}_head_to_head",
            sampling=replace(sampling, max_tokens=min(sampling.max_tokens, HEAD_TO_HEAD_MAX_TOKENS)),
        )


@dataclass
class HeadToHeadStats:
    """What a head-to-head run did: asks answered, failed, and skipped as stored before."""

    planned: int = 0
    valid: int = 0
    failed: int = 0
    skipped: int = 0


async def judge_pair(engine: Engine, cell: HeadToHeadCell, member: Member) -> bool:
    """One ask: send, validate, re-ask once with the error, store the outcome; whether valid."""
    request = cell.request(engine.prompts, member.sampling(engine.sampling))
    raw: str | None = None
    request_id: int | None = None
    for ask in (1, 2):
        try:
            request_id, reply, _ = await engine.send(cell, member, request, ask)
        except BackendError as exc:
            engine.unless_stopped(member, exc)  # its server went away: left for --resume
            return _save(
                engine, cell, None, f"{exc.kind} error from {cell.backend.label}: {exc}", raw, request_id, ask
            )
        raw = reply.text
        try:
            data = parse_head_to_head(reply.text, reply.finish_reason)
        except InvalidReply as exc:
            if ask == 2:
                return _save(engine, cell, None, f"invalid after re-ask: {exc}", raw, request_id, ask)
            request = replace(
                request, messages=engine.prompts.reask_messages(request.messages, raw, str(exc))
            )
            continue
        return _save(engine, cell, data, None, raw, request_id, ask)
    raise AssertionError("the second ask is always judged")


def _save(
    engine: Engine,
    cell: HeadToHeadCell,
    data: dict[str, Any] | None,
    error: str | None,
    raw: str | None,
    request_id: int | None,
    asks_made: int,
) -> bool:
    first, second = cell.shown
    picked = None if data is None else (first if data["ship_with"] == "A" else second)
    engine.store.save_head_to_head(
        engine.run_id,
        cell.persona.id,
        cell.backend.label,
        cell.shown,
        cell.backend.name,
        cell.backend.model,
        picked=picked,
        reason=data["reason"] if data is not None else None,
        error=error,
        raw_reply=raw,
        request_id=request_id,
        asks=asks_made,
    )
    return data is not None


@dataclass
class _Round:
    engine: Engine
    stats: HeadToHeadStats
    stop: bool = field(default=False)

    async def worker(self, member: Member, cells: Iterator[HeadToHeadCell]) -> None:
        store, run_id = self.engine.store, self.engine.run_id
        for cell in cells:
            if self.stop or member.watch.stopped is not None:
                return
            if store.has_head_to_head(run_id, cell.persona.id, cell.backend.label, cell.shown):
                self.stats.skipped += 1
                continue
            try:
                valid = await judge_pair(self.engine, cell, member)
            except BudgetStop:
                self.stop = True
                self.engine.stop("budget")
                return
            except MemberStopped:
                return  # this ask and the member's others stay unstored, for --resume
            self.stats.valid += valid
            self.stats.failed += not valid
            store.commit_stale(1.0)


async def run_head_to_head(
    engine: Engine,
    tools: Sequence[Tool],
    personas: Sequence[Persona],
    pairs: Iterable[tuple[str, str]] | None = None,
) -> HeadToHeadStats:
    """Ask every (persona, member, pair) in both orders on the engine's run (`pairs`: tool
    ids; default every pair of `tools`)."""
    chosen = list(pairs) if pairs is not None else None
    stats = HeadToHeadStats()
    runner = _Round(engine, stats)
    workers = []
    for member in engine.members:
        backend = member.backend
        cells = [
            HeadToHeadCell(a.first, a.persona, backend, rival=a.second)
            for a in asks(personas, [backend.label], tools, chosen)
        ]
        stats.planned += len(cells)
        feed = iter(cells)
        workers += [runner.worker(member, feed) for _ in range(max(1, member.concurrency))]
    engine.store.group_commits(True)
    try:
        await asyncio.gather(*workers)
    finally:
        engine.store.group_commits(False)
    return stats
