"""A tool's verdict across the runs that reviewed it, and why it changed from one run to the
next (`panel.report.why`). Read in a fixed number of queries however many runs the store
holds (`Store.tool_inputs`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..store import RunInputs, Store
from .diff import diff_inputs
from .why import Reason, pooled_verdict

__all__ = ["HistoryEntry", "verdict_history"]


@dataclass(frozen=True)
class HistoryEntry:
    run_id: str
    created_at: float
    status: str
    #: what most of the tool's valid reviews said ("split" on a tie, None with none valid)
    verdict: str | None
    ship: int
    valid: int
    reviews: int
    #: the run before this one that reviewed the tool (None for the first)
    previous: str | None
    #: why the pooled verdict differs from the run before; empty when it does not
    reasons: tuple[Reason, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.reasons)


_NOTHING_IN_COMMON = Reason(
    "panel",
    "the panel changed: no review in common with the run before",
    "because the panel's members changed",
)


def _entry(run: RunInputs, previous: RunInputs | None) -> HistoryEntry:
    cells = list(run.cells.values())
    reasons: tuple[Reason, ...] = ()
    if previous is not None:
        flips = diff_inputs(previous, run).tools
        reasons = flips[0].reasons if flips else ()
        if not reasons and pooled_verdict(previous.cells.values()) != pooled_verdict(cells):
            reasons = (_NOTHING_IN_COMMON,)  # no review of one run has a counterpart in the other
    return HistoryEntry(
        run.run_id,
        run.created_at,
        run.status,
        pooled_verdict(cells),
        sum(1 for c in cells if c.verdict == "ship"),
        sum(1 for c in cells if c.verdict is not None),
        len(cells),
        None if previous is None else previous.run_id,
        reasons,
    )


def verdict_history(store: Store, tool_id: str) -> list[HistoryEntry]:
    """Every run that reviewed `tool_id`, newest first, each with its pooled verdict and,
    where that differs from the run before, the reasons."""
    runs = store.tool_inputs(tool_id)
    entries = [_entry(run, runs[i - 1] if i else None) for i, run in enumerate(runs)]
    return entries[::-1]
