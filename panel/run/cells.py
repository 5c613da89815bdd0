"""What the engine works on: a cell (one review to make), its result, and the panel member
that makes it (its limits, price, timeout, route and depth)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import ClassVar

from ..backends.base import Backend, Request, Sampling
from ..catalog import Tool
from ..depth import Depth
from ..memo import ByIdentity
from ..personas import Persona
from ..prompts import PromptSet
from ..store import CellKey
from .limits import RateLimiter
from .outage import ServerWatch
from .pricing import Price

__all__ = ["SEED_STRIDE", "Cell", "CellResult", "Member"]

#: how far a regenerated review's seed moves per review of its cell set aside: far beyond
#: any number of repeats (whose seeds are seed + repeat), so no two requests share a seed
SEED_STRIDE = 100_003
#: the cells of one tool come one after another, one per persona and member
_tool_fingerprint: ByIdentity[str] = ByIdentity(lambda tool: tool.fingerprint())


@dataclass(frozen=True)
class Cell:
    """One review to make: a tool, read by a persona, on a panel member, in one repeat."""

    tool: Tool
    persona: Persona
    backend: Backend
    repeat: int = 0
    #: which round its requests belong to: 1, 2 for the rebuttal round (`panel.run.rebuttal`),
    #: 3 for a head-to-head ask (`panel.run.head_to_head_round`)
    ROUND: ClassVar[int] = 1

    @property
    def key(self) -> CellKey:
        return CellKey(self.tool.id, self.persona.id, self.backend.label, self.repeat)

    @property
    def rival_id(self) -> str | None:
        """The second tool its requests show (a head-to-head ask); None for a review."""
        return None

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

    def fingerprint(self, cell: Cell, prompts: PromptSet, run: Sampling) -> str:
        """Hash of a cell's inputs on this member: the tool's facts, the persona file, the
        model, the prompts, and the sampling and depth they are asked at (`run`: the run's
        sampling with the cell's seed)."""
        material = [
            _tool_fingerprint(cell.tool),
            cell.persona.version,
            cell.backend.label,
            cell.backend.identity(),
            prompts.fingerprint,
            self.sampling(run).as_dict(),
            self.depth,
        ]
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]
