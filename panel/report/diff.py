"""Which verdicts flipped between two runs, cell by cell."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..store import CellKey, Store

__all__ = ["FlippedVerdict", "RunDiff", "diff_runs"]


@dataclass(frozen=True)
class FlippedVerdict:
    key: CellKey
    before: str | None
    after: str | None


@dataclass(frozen=True)
class RunDiff:
    run_a: str
    run_b: str
    same: int
    flipped: list[FlippedVerdict]
    only_a: int
    only_b: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_a": self.run_a,
            "run_b": self.run_b,
            "same": self.same,
            "only_a": self.only_a,
            "only_b": self.only_b,
            "flipped": [{**f.key._asdict(), "before": f.before, "after": f.after} for f in self.flipped],
        }


def diff_runs(store: Store, run_a: str, run_b: str) -> RunDiff:
    """Verdicts that changed between two runs, cell by cell (a failed review counts as none)."""

    a, b = store.cell_verdicts(run_a), store.cell_verdicts(run_b)
    both = a.keys() & b.keys()
    flipped = sorted((FlippedVerdict(k, a[k], b[k]) for k in both if a[k] != b[k]), key=lambda f: f.key)
    return RunDiff(
        run_a,
        run_b,
        len(both) - len(flipped),
        flipped,
        len(a.keys() - b.keys()),
        len(b.keys() - a.keys()),
    )
