"""How a member's cells reach its model: a route is a strategy behind the engine.

The engine (`panel.run.engine`) gives each member's cells to the route the member takes;
the route drives them through the engine's public operations (`done_before`, `review` or
`reserve` and `judge`, `save`, `finish`, `stop`). The live route is here; the batch route
(`panel.run.batch.BatchRunner`) is registered by whoever runs the plan (`panel.run.plan`),
so the engine never imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .cells import Cell, Member
from .outage import MemberStopped

if TYPE_CHECKING:  # the engine imports this module for its live route
    from .engine import Engine

__all__ = ["BudgetStop", "LiveRoute", "Route", "RouteMaker"]

#: seconds a stretch of reviews that send nothing (cached, copied) keeps its writes uncommitted
_COMMIT_AT_LEAST_EVERY = 1.0


class BudgetStop(Exception):
    """The next send could take the run over its budget (a route stops on it: `Engine.stop`)."""


class Route(Protocol):
    """Makes one member's cells: each stored, and told to the engine (`Engine.finish`).

    `workers` gives the coroutines that do it; the engine runs every member's workers side
    by side in one gather (no task of a route's own between them and the run: Ctrl-C in a
    worker then reaches the run at once, which records the run as interrupted). A worker
    that meets the budget (`BudgetStop`) stops the run (`Engine.stop("budget")`) and returns.
    """

    def workers(self, member: Member, cells: Iterator[Cell]) -> list[Coroutine[Any, Any, None]]: ...


#: makes a member's route for an engine (one route per member)
RouteMaker = Callable[["Engine"], Route]


@dataclass
class LiveRoute:
    """One request at a time per worker, `member.concurrency` workers sharing the cells."""

    engine: Engine

    def workers(self, member: Member, cells: Iterator[Cell]) -> list[Coroutine[Any, Any, None]]:
        return [self._worker(member, cells) for _ in range(max(1, member.concurrency))]

    async def _worker(self, member: Member, cells: Iterator[Cell]) -> None:
        # Workers of one member share its iterator; next() never awaits, so no lock is needed.
        engine = self.engine
        for cell in cells:
            if engine.stopping or member.watch.stopped is not None:
                return
            if engine.done_before(cell):
                continue  # finished before a crash or a stop; counted at the start
            try:
                result = await engine.review(cell, member)
            except BudgetStop:
                engine.stop("budget")
                return
            except MemberStopped:
                return  # this cell and the member's others stay unstored, for --resume
            engine.finish(result)
            engine.store.commit_stale(_COMMIT_AT_LEAST_EVERY)
