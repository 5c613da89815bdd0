"""What the view's pages show, read from a store opened read-only.

The runs list reads the runs table for the ids that match, then only the page's runs whole
(`Store.get_run`, with their reviews counted and their spend summed), so its cost does not
grow with the reviews of the runs it does not show. These queries read tables the store
owns; they belong in `panel.store` once its schema settles (a paged `list_runs`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from ..report.load import load_record
from ..report.record import ComparisonRecord
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


def _matching(store: Store, status: str | None, tool: str | None) -> list[str]:
    """The ids of the runs that match, newest first: one query of the runs table alone.

    A run marked running whose process is gone counts as interrupted, as in `panel runs`.
    """
    where, args = [], []
    if status is not None:
        where.append("status IN (?, 'running')")
        args.append(status)
    if tool is not None:
        where.append("id IN (SELECT run_id FROM run_tools WHERE tool_id = ?)")
        args.append(tool)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = store.db.execute(
        f"SELECT id, status FROM runs {clause} ORDER BY created_at DESC, rowid DESC", args
    )
    found = [(str(run_id), str(state)) for run_id, state in rows]
    if status is None:
        return [run_id for run_id, _ in found]
    alive = store.writer_alive() if any(state == "running" for _, state in found) else False
    live = {"running": "running" if alive else "interrupted"}
    return [run_id for run_id, state in found if live.get(state, state) == status]


def _marks(ids: list[str]) -> str:
    return ", ".join("?" * len(ids))


def _run_tools(store: Store, run_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    rows = store.db.execute(
        "SELECT run_id, tool_id, COALESCE(json_extract(data, '$.name'), tool_id) "
        f"FROM run_tools WHERE run_id IN ({_marks(run_ids)}) ORDER BY run_id, position",
        run_ids,
    )
    tools: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for run_id, tool_id, name in rows:
        tools[run_id].append((str(tool_id), str(name)))
    return tools


def _counts(store: Store, run_ids: list[str]) -> dict[str, tuple[int, int, float]]:
    """Reviews, valid reviews and spend (USD) of each run."""
    reviews = store.db.execute(
        f"""SELECT run_id, COUNT(*), SUM(valid) FROM reviews
            WHERE run_id IN ({_marks(run_ids)}) GROUP BY run_id""",
        run_ids,
    )
    spend = store.db.execute(
        f"""SELECT rq.run_id, SUM(rp.cost_usd) FROM requests rq JOIN replies rp ON rp.request_id = rq.id
            WHERE rq.run_id IN ({_marks(run_ids)}) GROUP BY rq.run_id""",
        run_ids,
    )
    usd = {str(run_id): float(cost or 0.0) for run_id, cost in spend}
    return {str(r): (int(n), int(ok or 0), usd.get(str(r), 0.0)) for r, n, ok in reviews}


def _tool_choices(store: Store) -> list[tuple[str, str]]:
    rows = store.db.execute(
        "SELECT tool_id, COALESCE(json_extract(data, '$.name'), tool_id) FROM run_tools GROUP BY tool_id"
    )
    return sorted(((str(t), str(n)) for t, n in rows), key=lambda p: (p[1].lower(), p[0]))


def list_runs(store: Store, status: str | None, tool: str | None, page: int) -> RunsPage:
    """One page of runs, newest first, of one status and with one tool if asked.

    Only the runs on the page are read whole, so a page costs the same in a store of ten
    runs or ten thousand (but for one query over the runs table, and one over its tools).
    """
    matched = _matching(store, status, tool)
    pages = max(1, -(-len(matched) // PER_PAGE))
    page = min(max(1, page), pages)
    ids = matched[(page - 1) * PER_PAGE : page * PER_PAGE]
    runs = [run for run in map(store.get_run, ids) if run is not None]
    tools = _run_tools(store, ids) if ids else {}
    counts = _counts(store, ids) if ids else {}
    summaries = [
        RunSummary(run, run.kind, tools.get(run.id, []), *counts.get(run.id, (0, 0, 0.0)))
        for run in runs
    ]
    return RunsPage(summaries, len(matched), page, pages, _tool_choices(store))


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
    try:
        return load_record(store, run_id, tool_id=tool_id)
    except KeyError:
        return None


def run_record(store: Store, run_id: str) -> ComparisonRecord:
    return load_record(store, run_id)
