"""Runs: what each run was asked to review, its status, and the list of runs."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from .connection import Connection
from .rows import RunRow, run_row

__all__ = ["Runs"]


class Runs(Connection):
    def create_run(
        self,
        run_id: str,
        command: str,
        catalog: str | None,
        config: dict[str, Any],
        tools: Iterable[tuple[str, str, dict[str, Any]]],
        personas: Iterable[tuple[str, str, dict[str, Any]]],
    ) -> None:
        """Record a run with the tools (id, fingerprint, data) and personas it reviews; each
        is written as it comes, so a catalog's worth is never held twice."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO runs (id, created_at, command, catalog, config) VALUES (?, ?, ?, ?, ?)",
                (run_id, time.time(), command, catalog, json.dumps(config)),
            )
            db.executemany(
                "INSERT INTO run_tools VALUES (?, ?, ?, ?, ?)",
                ((run_id, i, tid, fp, json.dumps(d)) for i, (tid, fp, d) in enumerate(tools)),
            )
            db.executemany(
                "INSERT INTO run_personas VALUES (?, ?, ?, ?, ?)",
                ((run_id, i, pid, v, json.dumps(d)) for i, (pid, v, d) in enumerate(personas)),
            )

    def mark_run(self, run_id: str, status: str) -> None:
        self.db.execute("UPDATE runs SET status = ?, finished_at = NULL WHERE id = ?", (status, run_id))

    def finish_run(self, run_id: str, status: str) -> None:
        self.db.execute(
            "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
            (status, time.time(), run_id),
        )

    def get_run(self, run_id: str) -> RunRow | None:
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return self._live(run_row(row)) if row else None

    def _live(self, run: RunRow) -> RunRow:
        # A reader sees a run "running" whose process died (the next writer will mark it).
        if run.status == "running" and not self.writer_alive():
            return replace(run, status="interrupted")
        return run

    def list_runs(self, limit: int = 50, status: str | None = None) -> list[tuple[RunRow, int, int]]:
        """Newest runs first (of one status, or all), each with its count of reviews and valid ones."""
        rows = self.db.execute(
            """SELECT runs.*, COUNT(reviews.id) AS n, COALESCE(SUM(reviews.valid), 0) AS ok
               FROM runs LEFT JOIN reviews ON reviews.run_id = runs.id
               WHERE ? IS NULL OR runs.status IN (?, 'running')
               GROUP BY runs.id ORDER BY runs.created_at DESC, runs.rowid DESC""",
            (status, status),
        )
        found = ((self._live(run_row(r)), int(r["n"]), int(r["ok"])) for r in rows)
        return list(itertools.islice((f for f in found if status in (None, f[0].status)), limit))

    def latest_run(self, *statuses: str, ranking: bool | None = None) -> str | None:
        """The newest run with one of these statuses (default: done); `ranking`: only rankings
        (True), none of them (False), any run (None)."""
        wanted = statuses or ("done",)
        marks = ", ".join("?" * len(wanted))
        kind = {None: "", True: " AND k = 'rank'", False: " AND k IS NOT 'rank'"}[ranking]
        row = self.db.execute(
            f"SELECT id FROM (SELECT *, json_extract(config, '$.kind') AS k FROM runs) "
            f"WHERE status IN ({marks}){kind} ORDER BY created_at DESC, rowid DESC LIMIT 1",
            wanted,
        ).fetchone()
        return str(row[0]) if row else None

    def run_ids_from(self, prefix: str) -> list[str]:
        """The ids of the runs that start with `prefix`, newest first (the whole id among them)."""
        rows = self.db.execute(
            "SELECT id FROM runs WHERE substr(id, 1, ?) = ? ORDER BY created_at DESC, rowid DESC",
            (len(prefix), prefix),
        )
        return [str(r[0]) for r in rows]

    def run_tools(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT data FROM run_tools WHERE run_id = ? ORDER BY position", (run_id,))
        return [json.loads(r[0]) for r in rows]

    def run_personas(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT data FROM run_personas WHERE run_id = ? ORDER BY position", (run_id,))
        return [json.loads(r[0]) for r in rows]
