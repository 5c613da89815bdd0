"""What a run's verdicts were made from, read for telling why a verdict changed between runs:
each cell's verdict with the member's backend, model and structured form, the catalog entry
of each tool and the persona files the run saw, and the run's settings.

Each cell also carries its valid rebuttal-round verdict, which the models' pooled verdict
(`panel.report.pooled`) reads in place of round 1's.

`run_inputs_of` reads one whole run (for `panel diff`); `tool_inputs` reads one tool in every
run that reviewed it (a tool's verdict history) in at most five queries whatever the number of
runs: each walks the runs table and looks the tool up by the primary keys, never scanning
reviews; persona files are read only for runs whose persona versions differ from the run
before (elsewhere their text is left empty: the same version is the same file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, NamedTuple

from .connection import Connection
from .rows import CellKey

__all__ = ["CellFacts", "Inputs", "RunInputs"]


class CellFacts(NamedTuple):
    """One review as the diff reads it: its verdict (None when it failed) and who made it how,
    and the valid rebuttal-round verdict that took the place of `verdict` (None without one)."""

    verdict: str | None
    backend: str
    model: str
    enforced: str | None
    rebuttal: str | None = None


@dataclass
class RunInputs:
    """A run's settings, the tool entries and persona files it saw, and its cells."""

    run_id: str
    created_at: float
    status: str
    config: dict[str, Any]
    #: tool id -> (fingerprint, the catalog entry as the run saw it, as JSON text: parsed
    #: only where two runs differ)
    tools: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: persona id -> (version, the persona file as the run saw it, as JSON text)
    personas: dict[str, tuple[str, str]] = field(default_factory=dict)
    cells: dict[CellKey, CellFacts] = field(default_factory=dict)


_CELL_COLUMNS = (
    "rv.tool_id, rv.persona_id, rv.member, rv.repeat, rv.verdict, rv.backend, rv.model, rv.enforced"
)


def _cell(row: tuple[Any, ...]) -> tuple[CellKey, CellFacts]:
    return CellKey(row[0], row[1], row[2], row[3]), CellFacts(row[4], row[5], row[6], row[7])


class Inputs(Connection):
    def run_inputs_of(self, run_id: str) -> RunInputs | None:
        """One run's inputs and all its cells, or None when there is no such run."""
        row = self.db.execute(
            "SELECT id, created_at, status, config FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        if row is None:
            return None
        found = RunInputs(row[0], row[1], row[2], json.loads(row[3]))
        for tool_id, fingerprint, data in self.db.execute(
            "SELECT tool_id, fingerprint, data FROM run_tools WHERE run_id = ?", (run_id,)
        ):
            found.tools[tool_id] = (fingerprint, data)
        for persona_id, version, data in self.db.execute(
            "SELECT persona_id, version, data FROM run_personas WHERE run_id = ?", (run_id,)
        ):
            found.personas[persona_id] = (version, data)
        for cell in self.db.execute(f"SELECT {_CELL_COLUMNS} FROM reviews rv WHERE rv.run_id = ?", (run_id,)):
            key, facts = _cell(cell)
            found.cells[key] = facts
        self._rebuttal_verdicts("rebuttals r WHERE r.run_id = ?", (run_id,), {run_id: found})
        return found

    def _rebuttal_verdicts(self, source: str, args: tuple[str, ...], runs: dict[str, RunInputs]) -> None:
        """Each cell's valid rebuttal-round verdict into its `CellFacts.rebuttal` (a store made
        before the rebuttal round has none)."""
        if not self.has_table("rebuttals"):
            return
        for row in self.db.execute(
            f"""SELECT r.run_id, r.tool_id, r.persona_id, r.member, r.repeat, r.verdict_after
                FROM {source} AND r.valid AND r.verdict_after IS NOT NULL""",
            args,
        ):
            run = runs.get(row[0])
            key = CellKey(row[1], row[2], row[3], row[4])
            if run is not None and key in run.cells:
                run.cells[key] = run.cells[key]._replace(rebuttal=row[5])

    def tool_inputs(self, tool_id: str) -> list[RunInputs]:
        """Every run that reviewed `tool_id`, oldest first, with that tool's entry and cells
        alone (and the run's personas and settings)."""
        runs: dict[str, RunInputs] = {}
        # CROSS JOIN keeps the runs table outside: one primary-key probe per run.
        for row in self.db.execute(
            """SELECT r.id, r.created_at, r.status, r.config, rt.fingerprint, rt.data
               FROM runs r CROSS JOIN run_tools rt ON rt.run_id = r.id AND rt.tool_id = ?
               ORDER BY r.created_at, r.rowid""",
            (tool_id,),
        ):
            run = RunInputs(row[0], row[1], row[2], json.loads(row[3]))
            run.tools[tool_id] = (row[4], row[5])
            runs[run.run_id] = run
        for row in self.db.execute(
            f"""SELECT rv.run_id, {_CELL_COLUMNS}
                FROM runs r CROSS JOIN reviews rv ON rv.run_id = r.id AND rv.tool_id = ?""",
            (tool_id,),
        ):
            if row[0] in runs:
                key, facts = _cell(row[1:])
                runs[row[0]].cells[key] = facts
        self._rebuttal_verdicts(
            "runs ru CROSS JOIN rebuttals r ON r.run_id = ru.id AND r.tool_id = ?", (tool_id,), runs
        )
        # Persona files are long and rarely change: their versions for every run, then the
        # files themselves only for the runs whose versions differ from the run before.
        versions: dict[str, dict[str, str]] = {}
        for run_id, persona_id, version in self.db.execute(
            """SELECT p.run_id, p.persona_id, p.version
               FROM runs r CROSS JOIN run_personas p ON p.run_id = r.id"""
        ):
            versions.setdefault(run_id, {})[persona_id] = version
        reviewed = [run_id for run_id, run in runs.items() if run.cells]
        changed: set[str] = set()
        for before, after in pairwise(reviewed):
            if versions.get(before) != versions.get(after):
                changed |= {before, after}
        data: dict[tuple[str, str], str] = {}
        if changed:
            marks = ", ".join("?" * len(changed))
            for run_id, persona_id, text in self.db.execute(
                f"SELECT run_id, persona_id, data FROM run_personas WHERE run_id IN ({marks})",
                sorted(changed),
            ):
                data[run_id, persona_id] = text
        for run_id in reviewed:
            for persona_id, version in versions.get(run_id, {}).items():
                runs[run_id].personas[persona_id] = (version, data.get((run_id, persona_id), ""))
        return [run for run in runs.values() if run.cells]
