"""A run as it was recorded: its tools and personas then, and its comparison record."""

from __future__ import annotations

from ..catalog import Tool
from ..errors import UserError
from ..personas import Persona
from ..store import RunRow, Store
from .aggregate import build_record, recusals_of
from .confidence import cached_confidence
from .record import ComparisonRecord

__all__ = ["load_record", "run_inputs"]


def run_inputs(store: Store, run_id: str) -> tuple[RunRow, list[Tool], list[Persona]]:
    """A recorded run with its tools and personas as they were when it ran."""
    run = store.get_run(run_id)
    if run is None:
        raise UserError(f"no run '{run_id}' in {store.path}")
    tools = [Tool.model_validate(t) for t in store.run_tools(run_id)]
    personas = [Persona.model_validate(p) for p in store.run_personas(run_id)]
    return run, tools, personas


def load_record(
    store: Store, run_id: str, status: str | None = None, *, edits: bool = True, tool_id: str | None = None
) -> ComparisonRecord:
    """Rebuild a run's record from the store, with the tools and personas as they were then.

    The record carries the run's status from the store and counts missing reviews against
    the recorded plan; `status` overrides the stored one, for a writer that builds the
    record before it marks the run. An editor's edits show in it, marked, unless `edits`
    is False (the models' own text). With `tool_id`, the record of that one tool of the run
    (what `tools/<id>.json` holds); KeyError if the run has no such tool. Each tool's
    confidence is the run's (`run_confidence`, fitted on every tool of the run).
    """
    run, tools, personas = run_inputs(store, run_id)
    names = {t.id: t.name for t in tools}
    if tool_id is not None:
        tools = [t for t in tools if t.id == tool_id]
        if not tools:
            raise KeyError(tool_id)
    return build_record(
        run_id,
        run.created_at,
        tools,
        personas,
        run.config.get("members", []),
        store.reviews(run_id, tool_id),
        status=status or run.status,
        repeats=int(run.config.get("repeats", 1)),
        edits=store.edits(run_id) if edits else (),
        rebuttals=store.rebuttals(run_id, tool_id),
        confidence=cached_confidence(store, run_id),
        recusals=recusals_of(run.config),
        head_to_heads=store.head_to_heads(run_id),
        names=names,
    )
