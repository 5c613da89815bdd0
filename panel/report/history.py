"""A tool's verdict across the runs that reviewed it, and why it changed from one run to the
next (`panel.report.why`). Read in a fixed number of queries however many runs the store
holds (`Store.tool_inputs`); the reasons are worked out only where the verdict moved."""

from __future__ import annotations

from dataclasses import dataclass

from ..store import RunInputs, Store
from .diff import paired_cells
from .pooled import SHIP, models_verdict, pooled_cells
from .why import Between, MemberOptions, Reason, member_options, pair_members

__all__ = ["HistoryEntry", "verdict_history"]

_NOTHING_IN_COMMON = Reason(
    "panel",
    "the panel changed: no review in common with the run before",
    "because the panel's members changed",
)


@dataclass(frozen=True)
class HistoryEntry:
    run_id: str
    created_at: float
    status: str
    #: the models' pooled verdict (`panel.report.pooled`): ship, not ship, a tie, or None
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


def _why(
    before: RunInputs, after: RunInputs, options: tuple[MemberOptions, MemberOptions]
) -> tuple[Reason, ...]:
    pairs = paired_cells(before, after, pair_members(before, after))
    if not pairs:
        return (_NOTHING_IN_COMMON,)
    alone = len(before.cells) + len(after.cells) - 2 * len(pairs)
    return Between(before, after, options).pool(pairs, alone)


def verdict_history(store: Store, tool_id: str) -> list[HistoryEntry]:
    """Every run that reviewed `tool_id`, newest first, each with its pooled verdict and,
    where that differs from the run before, the reasons."""
    runs = store.tool_inputs(tool_id)
    entries: list[HistoryEntry] = []
    previous: tuple[RunInputs, str | None, MemberOptions] | None = None
    for run in runs:
        verdict = pooled_cells(run.cells)
        said = [models_verdict(c.verdict, c.rebuttal) for k, c in run.cells.items() if k.repeat == 0]
        options = member_options(run)
        reasons: tuple[Reason, ...] = ()
        if previous is not None and previous[1] != verdict:
            reasons = _why(previous[0], run, (previous[2], options))
        entries.append(
            HistoryEntry(
                run.run_id,
                run.created_at,
                run.status,
                verdict,
                sum(1 for v in said if v == SHIP),
                sum(1 for v in said if v is not None),
                len(said),
                None if previous is None else previous[0].run_id,
                reasons,
            )
        )
        previous = (run, verdict, options)
    return entries[::-1]
