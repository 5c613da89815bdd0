"""A run's counts as it goes: round 1 (`RunStats`), and the rebuttal round and the head-to-head
asks (`RoundStats` each)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RoundStats", "RunStats"]


@dataclass
class RoundStats:
    """A later round's counts: asks to answer, answered, valid, failed, and (the rebuttal
    round) verdicts changed."""

    total: int
    done: int = 0
    valid: int = 0
    failed: int = 0
    changed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "total": self.total,
            "done": self.done,
            "valid": self.valid,
            "failed": self.failed,
            "changed": self.changed,
        }


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
    #: the rebuttal round's own counts, once it has begun
    rebuttal: RoundStats | None = None
    #: the head-to-head asks' own counts, once they have begun
    head_to_head: RoundStats | None = None

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
