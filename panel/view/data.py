"""What the view's pages show, read from a store opened read-only.

The list of runs comes from `Store.list_runs` (the statuses as `panel runs` shows them);
the tools, spend and per-tool counts are read with a few aggregate queries of their own,
so the list of a thousand runs costs a handful of queries, not a few per run.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass

from ..report.aggregate import build_record
from ..report.load import load_record, run_inputs
from ..report.record import ComparisonRecord
from ..run.job import run_kind
from ..store import RunRow, Store

__all__ = ["PER_PAGE", "RunSummary", "RunsPage", "ToolLine", "list_runs", "review_tools", "tool_record"]

#: runs on one page of the list
PER_PAGE = 100


@dataclass(frozen=True)
class RunSummary:
    run: RunRow
    kind: str
    #: (tool id, tool name) in the run's order
    tools: list[tuple[str, str]]
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
    #: every tool of the store, (id, name), for the tool filter
    tool_choices: list[tuple[str, str]]


def _run_tools(store: Store) -> dict[str, list[tuple[str, str]]]:
    rows = store.db.execute(
        "SELECT run_id, tool_id, COALESCE(json_extract(data, '$.name'), tool_id) "
        "FROM run_tools ORDER BY run_id, position"
    )
    tools: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for run_id, tool_id, name in rows:
        tools[run_id].append((str(tool_id), str(name)))
    return tools


def _spend(store: Store, run_ids: list[str]) -> dict[str, float]:
    if not run_ids:
        return {}
    marks = ", ".join("?" * len(run_ids))
    rows = store.db.execute(
        f"""SELECT rq.run_id, SUM(rp.cost_usd) FROM requests rq JOIN replies rp ON rp.request_id = rq.id
            WHERE rq.run_id IN ({marks}) GROUP BY rq.run_id""",
        run_ids,
    )
    return {str(run_id): float(cost or 0.0) for run_id, cost in rows}


def list_runs(store: Store, status: str | None, tool: str | None, page: int) -> RunsPage:
    """One page of runs, newest first, of one status and with one tool if asked."""
    found = store.list_runs(sys.maxsize, status)
    tools = _run_tools(store)
    if tool:
        found = [f for f in found if any(tid == tool for tid, _ in tools.get(f[0].id, ()))]
    pages = max(1, -(-len(found) // PER_PAGE))
    page = min(max(1, page), pages)
    shown = found[(page - 1) * PER_PAGE : page * PER_PAGE]
    spend = _spend(store, [run.id for run, _, _ in shown])
    choices = sorted({pair for pairs in tools.values() for pair in pairs}, key=lambda p: (p[1].lower(), p[0]))
    unique = list({tid: (tid, name) for tid, name in choices}.values())
    summaries = [
        RunSummary(run, run_kind(run), tools.get(run.id, []), n, ok, spend.get(run.id, 0.0))
        for run, n, ok in shown
    ]
    return RunsPage(summaries, len(found), page, pages, unique)


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
    counts = {
        str(r[0]): (int(r[1]), int(r[2]), int(r[3]))
        for r in store.db.execute(
            """SELECT tool_id, SUM(valid), SUM(valid AND verdict = 'ship'), SUM(NOT valid)
               FROM reviews WHERE run_id = ? AND repeat = 0 GROUP BY tool_id""",
            (run_id,),
        )
    }
    lines = []
    for t in store.run_tools(run_id):
        valid, ship, failed = counts.get(t["id"], (0, 0, 0))
        lines.append(ToolLine(t["id"], t.get("name", t["id"]), t.get("category", ""), valid, ship, failed))
    return lines


def tool_record(store: Store, run_id: str, tool_id: str) -> ComparisonRecord | None:
    """One tool's record of a run (what `tools/<id>.json` holds), or None if it has no such tool."""
    run, tools, personas = run_inputs(store, run_id)
    chosen = [t for t in tools if t.id == tool_id]
    if not chosen:
        return None
    return build_record(
        run_id,
        run.created_at,
        chosen,
        personas,
        run.config.get("members", []),
        store.reviews(run_id, tool_id),
        status=run.status,
        repeats=int(run.config.get("repeats", 1)),
    )


def run_record(store: Store, run_id: str) -> ComparisonRecord:
    return load_record(store, run_id)
