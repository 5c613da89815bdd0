"""Runs in summary, for the pages that list and show them: which runs match a filter, each
run's tools by name, its counts of reviews and its spend, the ship tallies of a review run's
tools, and what a run's figures depend on (for a page that keeps figures it drew).

Each query reads only what it is asked for (a page of run ids, one run), so a list of the
newest hundred runs costs the same in a store of ten runs or ten thousand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from .connection import Connection

__all__ = ["RunState", "RunTotals", "Summaries", "ToolName", "ToolTally"]


class ToolName(NamedTuple):
    """A tool as a list shows it: its id and its catalog name (the id when it has none)."""

    id: str
    name: str


@dataclass(frozen=True)
class RunTotals:
    """A run's reviews, its valid ones, and what its replies cost (USD)."""

    reviews: int = 0
    valid: int = 0
    spend_usd: float = 0.0


@dataclass(frozen=True)
class ToolTally:
    """One tool's reviews in repeat 0, the panel's own reading: valid, ship and failed."""

    valid: int = 0
    ship: int = 0
    failed: int = 0


#: what a run's figures depend on, table by table: (rows, newest rowid), None without the table
RunState = tuple[tuple[int, int] | None, ...]
_STATE_TABLES = ("reviews", "review_edits", "rebuttals")


def _marks(ids: Sequence[str]) -> str:
    return ", ".join("?" * len(ids))


class Summaries(Connection):
    def matching_runs(self, status: str | None = None, tool: str | None = None) -> list[str]:
        """The ids of the runs of this status and with this tool, newest first: one query of
        the runs table alone. A run marked running whose process is gone counts as
        interrupted, as in `panel runs`."""
        where, args = [], []
        if status is not None:
            where.append("status IN (?, 'running')")
            args.append(status)
        if tool is not None:
            where.append("id IN (SELECT run_id FROM run_tools WHERE tool_id = ?)")
            args.append(tool)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self.db.execute(
            f"SELECT id, status FROM runs {clause} ORDER BY created_at DESC, rowid DESC", args
        )
        found = [(str(run_id), str(state)) for run_id, state in rows]
        if status is None:
            return [run_id for run_id, _ in found]
        alive = self.writer_alive() if any(state == "running" for _, state in found) else False
        live = {"running": "running" if alive else "interrupted"}
        return [run_id for run_id, state in found if live.get(state, state) == status]

    def previous_runs(self, run_id: str) -> dict[str, str]:
        """For each tool of a run, the newest done run started before it that reviewed the
        tool (the tool in its plan and a review of repeat 0 stored), by tool id; tools no
        earlier run reviewed are left out.

        The earlier done runs are visited newest first, each through its plan (`run_tools`)
        with one indexed look-up of a review per shared tool, and the walk stops once every
        tool has its run: in the usual store (the newest earlier run reviewed the whole
        catalog) one run's plan is read, not every earlier run's reviews."""
        wanted = {
            str(t) for (t,) in self.db.execute("SELECT tool_id FROM run_tools WHERE run_id = ?", (run_id,))
        }
        earlier = self.db.execute(
            """SELECT id FROM runs WHERE status = 'done' AND id != ?
                 AND created_at < (SELECT created_at FROM runs WHERE id = ?)
               ORDER BY created_at DESC, rowid DESC""",
            (run_id, run_id),
        ).fetchall()
        found: dict[str, str] = {}
        for (other,) in earlier:
            if len(found) == len(wanted):
                break
            rows = self.db.execute(
                """SELECT rt.tool_id FROM run_tools rt
                   WHERE rt.run_id = ? AND rt.tool_id IN (SELECT tool_id FROM run_tools WHERE run_id = ?)
                     AND EXISTS (SELECT 1 FROM reviews rv WHERE rv.run_id = rt.run_id
                                 AND rv.tool_id = rt.tool_id AND rv.repeat = 0)""",
                (other, run_id),
            )
            for (tool_id,) in rows:
                found.setdefault(str(tool_id), str(other))
        return found

    def runs_tools(self, run_ids: Sequence[str]) -> dict[str, list[ToolName]]:
        """The tools of each of these runs, in the run's order."""
        tools: dict[str, list[ToolName]] = {}
        if not run_ids:
            return tools
        rows = self.db.execute(
            "SELECT run_id, tool_id, COALESCE(json_extract(data, '$.name'), tool_id) "
            f"FROM run_tools WHERE run_id IN ({_marks(run_ids)}) ORDER BY run_id, position",
            list(run_ids),
        )
        for run_id, tool_id, name in rows:
            tools.setdefault(str(run_id), []).append(ToolName(str(tool_id), str(name)))
        return tools

    def run_totals(self, run_ids: Sequence[str]) -> dict[str, RunTotals]:
        """Each of these runs' reviews, valid reviews and spend; a run with no review is left out."""
        if not run_ids:
            return {}
        reviews = self.db.execute(
            f"""SELECT run_id, COUNT(*), SUM(valid) FROM reviews
                WHERE run_id IN ({_marks(run_ids)}) GROUP BY run_id""",
            list(run_ids),
        )
        spend = self.db.execute(
            f"""SELECT rq.run_id, SUM(rp.cost_usd) FROM requests rq JOIN replies rp ON rp.request_id = rq.id
                WHERE rq.run_id IN ({_marks(run_ids)}) GROUP BY rq.run_id""",
            list(run_ids),
        )
        usd = {str(run_id): float(cost or 0.0) for run_id, cost in spend}
        return {str(r): RunTotals(int(n), int(ok or 0), usd.get(str(r), 0.0)) for r, n, ok in reviews}

    def planned_reviews(self, run_ids: Sequence[str]) -> dict[str, int]:
        """Each of these runs' reviews as planned: tools x members, less the (member, tool)
        pairs recused (`recused` in the run's config), x personas x repeats."""
        if not run_ids:
            return {}
        rows = self.db.execute(
            f"""SELECT r.id,
                   ((SELECT COUNT(*) FROM run_tools t WHERE t.run_id = r.id)
                    * COALESCE(json_array_length(r.config, '$.members'), 0)
                    - (SELECT COALESCE(SUM(json_array_length(j.value)), 0)
                       FROM json_each(r.config, '$.recused') j))
                   * (SELECT COUNT(*) FROM run_personas p WHERE p.run_id = r.id)
                   * COALESCE(json_extract(r.config, '$.repeats'), 1)
                FROM runs r WHERE r.id IN ({_marks(run_ids)})""",
            list(run_ids),
        )
        return {str(run_id): int(n or 0) for run_id, n in rows}

    def tool_names(self) -> list[ToolName]:
        """Every tool of every run, once, by name (then id)."""
        rows = self.db.execute(
            "SELECT tool_id, COALESCE(json_extract(data, '$.name'), tool_id) FROM run_tools GROUP BY tool_id"
        )
        return sorted((ToolName(str(t), str(n)) for t, n in rows), key=lambda p: (p.name.lower(), p.id))

    def tool_tallies(self, run_id: str) -> dict[str, ToolTally]:
        """Each tool's valid, ship and failed reviews in repeat 0; a tool with none is left out."""
        rows = self.db.execute(
            """SELECT tool_id, SUM(valid), SUM(valid AND verdict = 'ship'), SUM(NOT valid)
               FROM reviews WHERE run_id = ? AND repeat = 0 GROUP BY tool_id""",
            (run_id,),
        )
        return {str(t): ToolTally(int(valid), int(ship), int(failed)) for t, valid, ship, failed in rows}

    def failure_reasons(self, run_id: str, most: int = 3) -> list[tuple[str, int]]:
        """The commonest reasons the run's reviews in repeat 0 failed, with how many each."""
        rows = self.db.execute(
            """SELECT COALESCE(error, ''), COUNT(*) FROM reviews
               WHERE run_id = ? AND repeat = 0 AND NOT valid
               GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?""",
            (run_id, most),
        )
        return [(str(error), int(n)) for error, n in rows]

    def run_state(self, run_id: str) -> RunState:
        """What the run's figures depend on, cheaply: its reviews, edits and round-2 answers,
        each counted with its newest row (a regenerated or edited review moves one of them)."""
        found: list[tuple[int, int] | None] = []
        for table in _STATE_TABLES:
            row = None
            if self.has_table(table):  # a store from before that table has none
                sql = f"SELECT COUNT(*), COALESCE(MAX(rowid), 0) FROM {table} WHERE run_id = ?"
                count, newest = self.db.execute(sql, (run_id,)).fetchone()
                row = (int(count), int(newest))
            found.append(row)
        return tuple(found)
