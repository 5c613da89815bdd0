"""The shapes :mod:`panel.report.confidence` and its fitted methods
(:mod:`panel.report.confidence_fit`) share: a judge, its confusion counts against labels, a
tool's verdicts by judge, and a method's fit with its estimate per tool."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .pooled import SHIP
from .record_confidence import ConfidenceMethod

#: bootstrap refits behind a Dawid-Skene interval, draws behind an editors' one
RESAMPLES = 200
#: the level of every interval of a confidence
LEVEL = 0.95

__all__ = ["LEVEL", "RESAMPLES", "Confusion", "Estimate", "Fitted", "Judge", "ToolVotes", "collapse"]

#: a judge: (persona id, member)
Judge = tuple[str, str]
#: a judge's binary confusion counts against labels: ((ship said ship, ship said not),
#: (not said ship, not said not)); rows are the label, columns the judge's verdict
Confusion = Sequence[Sequence[float]]


def collapse(confusion: Confusion, categories: Sequence[str] | None = None) -> list[list[float]]:
    """A judge's K x K confusion counts (rows: the label, columns: its verdict, in the order
    of ``categories``; ship first when None) as 2 x 2, ship against not ship."""
    rows = [[float(x) for x in row] for row in confusion]
    k = len(rows)
    if k < 2 or any(len(row) != k for row in rows):
        raise ValueError(f"a judge's confusion must be square, got {k} rows of {[len(r) for r in rows]}")
    if categories is not None and (len(categories) != k or SHIP not in categories):
        raise ValueError(f"a {k} x {k} confusion needs {k} categories with {SHIP!r}, got {list(categories)}")
    at = 0 if categories is None else list(categories).index(SHIP)

    def side(i: int) -> int:
        return 0 if i == at else 1

    out = [[0.0, 0.0], [0.0, 0.0]]
    for i, row in enumerate(rows):
        for j, count in enumerate(row):
            out[side(i)][side(j)] += count
    return out


@dataclass
class ToolVotes:
    """One tool's verdicts by judge (None: the review failed) and its rebuttal-round flips."""

    votes: dict[Judge, str | None] = field(default_factory=dict)
    flips: int = 0

    @property
    def valid(self) -> dict[Judge, str]:
        return {j: v for j, v in self.votes.items() if v is not None}

    @property
    def ship(self) -> int:
        return sum(1 for v in self.votes.values() if v == SHIP)


@dataclass(frozen=True)
class Estimate:
    """A tool's estimate of ship: the point and its interval."""

    ship: float
    low: float
    high: float


@dataclass
class Fitted:
    """One method fitted on the run: its estimate per tool, and what it rests on."""

    method: ConfidenceMethod
    basis: str
    tools: int
    estimates: dict[str, Estimate]
    accuracy: dict[Judge, float] = field(default_factory=dict)
    labels: int = 0
    #: the method of the tools this one left without an estimate (editors: no judge with labels)
    fallback: Fitted | None = None

    def source(self, tool_id: str) -> Fitted | None:
        """The fit that estimated this tool, or None."""
        if tool_id in self.estimates:
            return self
        return self.fallback.source(tool_id) if self.fallback is not None else None
