"""What a run tells as it goes: small typed events, delivered in order to one sink.

`panel.run` never prints. The command line renders these events (`panel.cli.progress`),
and `panel view` turns them into its jobs' progress (`panel.view.jobs`). Each event
carries the counts as they were when it happened (a copy, safe to keep).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: the modules that make these events import this one
    from ..backends.batch import BatchStatus
    from .cells import CellResult
    from .rebuttal import RebuttalResult
    from .stats import RoundStats, RunStats

__all__ = [
    "BatchSeen", "Event", "HeadToHeadBegun", "HeadToHeadMade", "RebuttalBegun", "RebuttalMade", "ReviewMade",
    "SendingStopped", "Sink",
]  # fmt: skip


@dataclass(frozen=True)
class ReviewMade:
    """A cell's review is stored (made, served from the cache, or copied), valid or failed."""

    result: CellResult
    stats: RunStats


@dataclass(frozen=True)
class SendingStopped:
    """The run sends nothing more to a member (its server went away); the rest carries on."""

    member: str
    reason: str


@dataclass(frozen=True)
class BatchSeen:
    """A batch of the batch route at its submission, or at a poll."""

    member: str
    key: str
    status: BatchStatus


@dataclass(frozen=True)
class RebuttalBegun:
    """The rebuttal round begins, with what an earlier process already answered."""

    stats: RoundStats


@dataclass(frozen=True)
class RebuttalMade:
    """A round-2 answer is stored, valid or failed."""

    result: RebuttalResult
    stats: RoundStats


@dataclass(frozen=True)
class HeadToHeadBegun:
    """The head-to-head asks begin, with what an earlier process already answered."""

    stats: RoundStats


@dataclass(frozen=True)
class HeadToHeadMade:
    """A head-to-head answer is stored, valid or failed."""

    valid: bool
    stats: RoundStats


Event = (
    ReviewMade | SendingStopped | BatchSeen | RebuttalBegun | RebuttalMade | HeadToHeadBegun | HeadToHeadMade
)
#: where a run's events go, one call each, in the order they happen
Sink = Callable[[Event], None]
