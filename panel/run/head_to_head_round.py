"""Sending head-to-head asks through the engine: each (persona, member, pair) in both orders,
through the run's store, cache, budget, limiter and retries like any review; a reply that does
not fit is re-asked once with the error; every ask's answer or failure is stored
(`Store.save_head_to_head`), none dropped. An answer already stored is skipped (a resume)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

from ..backends.base import Request, Sampling
from ..catalog import Tool
from ..depth import Depth
from ..personas import Persona
from ..prompts import PromptSet
from .cells import Cell, Member
from .engine import Engine
from .events import HeadToHeadBegun, HeadToHeadMade
from .head_to_head import HEAD_TO_HEAD_MAX_TOKENS, HeadToHeadAsk, member_asks, parse_head_to_head
from .later_rounds import Workers, ask_twice
from .stats import RoundStats

__all__ = ["HEAD_TO_HEAD_MAX_TOKENS", "HeadToHeadCell", "HeadToHeadStats", "judge_pair", "run_head_to_head"]


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
        return HeadToHeadAsk(self.persona, self.backend.label, self.tool, self.rival).request(
            prompts, sampling
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
    asked = await ask_twice(engine, cell, member, request, parse_head_to_head)
    first, second = cell.shown
    data = asked.data
    engine.store.save_head_to_head(
        engine.run_id,
        cell.persona.id,
        cell.backend.label,
        cell.shown,
        cell.backend.name,
        cell.backend.model,
        picked=None if data is None else (first if data["ship_with"] == "A" else second),
        reason=data["reason"] if data is not None else None,
        error=asked.error,
        raw_reply=asked.raw,
        request_id=asked.request_id,
        asks=asked.asks,
    )
    return data is not None


async def run_head_to_head(
    engine: Engine,
    tools: Sequence[Tool],
    personas: Sequence[Persona],
    pairs: Iterable[tuple[str, str]] | None = None,
) -> HeadToHeadStats:
    """Ask every (persona, member, pair) in both orders on the engine's run (`pairs`: tool
    ids; default every pair of `tools`), none of a pair a member recuses from. Their counts
    also go to `engine.stats.head_to_head`; the engine's sink is told them before the first
    ask (`HeadToHeadBegun`, with what an earlier process answered) and at each answer
    stored (`HeadToHeadMade`)."""
    chosen = list(pairs) if pairs is not None else None
    stats = HeadToHeadStats()
    store, run_id = engine.store, engine.run_id
    cells = {
        member.backend.label: [
            HeadToHeadCell(a.first, a.persona, member.backend, rival=a.second)
            for a in member_asks(personas, member.backend, tools, chosen)
        ]
        for member in engine.members
    }
    # What an earlier process answered of these asks (a ranking's earlier rounds asked others).
    keys = {(c.persona.id, label, *c.shown) for label, mine in cells.items() for c in mine}
    stored = [
        r
        for r in store.head_to_heads(run_id)
        if (r.persona_id, r.member, r.first_tool, r.second_tool) in keys
    ]
    answered = sum(r.picked is not None for r in stored)
    progress = RoundStats(sum(map(len, cells.values())), len(stored), answered, len(stored) - answered)
    engine.stats.head_to_head = progress
    engine.tell(HeadToHeadBegun(copy.copy(progress)))

    def cells_for(member: Member) -> Iterator[HeadToHeadCell]:
        mine = cells[member.backend.label]
        stats.planned += len(mine)
        return iter(mine)

    def made(valid: bool) -> None:
        stats.valid += valid
        stats.failed += not valid
        progress.done += 1
        progress.valid += valid
        progress.failed += not valid
        engine.tell(HeadToHeadMade(valid, copy.copy(progress)))

    def skipped(cell: HeadToHeadCell) -> None:
        stats.skipped += 1

    workers: Workers[HeadToHeadCell, bool] = Workers(
        engine,
        lambda cell: store.has_head_to_head(run_id, cell.persona.id, cell.backend.label, cell.shown),
        judge_pair,
        made,
        skipped,
    )
    await workers.run(cells_for)
    return stats
