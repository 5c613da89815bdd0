"""What the view's pages show, read from a store opened read-only.

The runs list reads the ids of the runs that match, then only the page's runs whole
(`Store.get_run`, with their reviews counted and their spend summed), so its cost does not
grow with the reviews of the runs it does not show. The queries are the store's
(`panel.store.summaries`); this module puts their answers together for the pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from ..report.load import load_record
from ..report.record import ComparisonRecord
from ..store import RunRow, RunTotals, Store, ToolName, ToolTally

__all__ = [
    "PER_PAGE",
    "RunSummary",
    "RunsPage",
    "ToolLine",
    "list_runs",
    "paged",
    "review_tools",
    "tool_record",
]

#: runs (or tools) on one page of a list
PER_PAGE = 100

T = TypeVar("T")


def paged(items: Sequence[T], page: int, per_page: int | None = None) -> tuple[Sequence[T], int, int]:
    """The items of page `page` (1 up; one past the end is the last), that page's number and
    how many pages there are (at least 1); `per_page` defaults to :data:`PER_PAGE`."""
    per_page = PER_PAGE if per_page is None else per_page
    pages = max(1, -(-len(items) // per_page))
    page = min(max(1, page), pages)
    return items[(page - 1) * per_page : page * per_page], page, pages


@dataclass(frozen=True)
class RunSummary:
    run: RunRow
    kind: str
    #: the run's tools, in its order
    tools: list[ToolName]
    reviews: int
    valid: int
    spend_usd: float

    @property
    def failed(self) -> int:
        return self.reviews - self.valid

    @property
    def members(self) -> list[str]:
        return [str(m) for m in self.run.config.get("members", [])]


@dataclass(frozen=True)
class RunsPage:
    runs: list[RunSummary]
    #: runs that match the filters, on every page
    matched: int
    page: int
    pages: int
    #: every tool of the store, for the tool filter
    tool_choices: list[ToolName]


def list_runs(store: Store, status: str | None, tool: str | None, page: int) -> RunsPage:
    """One page of runs, newest first, of one status and with one tool if asked.

    Only the runs on the page are read whole, so a page costs the same in a store of ten
    runs or ten thousand (but for one query over the runs table, and one over its tools).
    """
    matched = store.matching_runs(status, tool)
    ids, page, pages = paged(matched, page)
    runs = [run for run in map(store.get_run, ids) if run is not None]
    tools, totals = store.runs_tools(ids), store.run_totals(ids)
    summaries = [_summary(run, tools.get(run.id, []), totals.get(run.id, RunTotals())) for run in runs]
    return RunsPage(summaries, len(matched), page, pages, store.tool_names())


def _summary(run: RunRow, tools: list[ToolName], totals: RunTotals) -> RunSummary:
    return RunSummary(run, run.kind, tools, totals.reviews, totals.valid, totals.spend_usd)


@dataclass(frozen=True)
class ToolLine:
    """One tool of a review run: its panel's verdicts in repeat 0, the panel's own."""

    id: str
    name: str
    category: str
    valid: int
    ship: int
    failed: int

    @property
    def share(self) -> str:
        return f"{100 * self.ship / self.valid:.0f}%" if self.valid else "—"


def review_tools(store: Store, run_id: str) -> list[ToolLine]:
    """A review run's tools in order, with their counts of ship, valid and failed reviews."""
    tallies = store.tool_tallies(run_id)
    lines = []
    for t in store.run_tools(run_id):
        tally = tallies.get(t["id"], ToolTally())
        name, category = t.get("name", t["id"]), t.get("category", "")
        lines.append(ToolLine(t["id"], name, category, tally.valid, tally.ship, tally.failed))
    return lines


def tool_record(store: Store, run_id: str, tool_id: str) -> ComparisonRecord | None:
    """One tool's record of a run (what `tools/<id>.json` holds), or None if it has no such tool."""
    try:
        return load_record(store, run_id, tool_id=tool_id)
    except KeyError:
        return None


def run_record(store: Store, run_id: str) -> ComparisonRecord:
    return load_record(store, run_id)
