"""The compare pipeline: check every input, run the panel, write the record.

`plan_compare` does all the checking and touches no file, so bad input stops the command
before anything is written under runs/.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .aggregate import build_record
from .backends.base import Backend, Sampling
from .backends.registry import create_backend
from .catalog import Tool, load_catalog
from .config import PanelConfig, resolve_members
from .engine import Cell, CellResult, Engine
from .errors import BackendSpecError, UserError
from .personas import Persona, load_personas, resolve_personas
from .prompts import PromptSet
from .record import ComparisonRecord
from .render import render_markdown
from .resources import data_dir
from .store import Store, new_run_id

__all__ = [
    "Plan",
    "load_record",
    "plan_compare",
    "record_schema",
    "record_schema_text",
    "run_plan",
    "write_atomic",
    "write_outputs",
]


@dataclass
class Plan:
    """Everything a run needs, checked."""

    tools: list[Tool]
    personas: list[Persona]
    members: list[Backend]
    catalog_path: Path
    prompts: PromptSet = field(default_factory=PromptSet)
    sampling: Sampling = field(default_factory=Sampling)
    #: requests in flight per member label, where configured
    concurrency: dict[str, int] = field(default_factory=dict)

    @property
    def cells(self) -> list[Cell]:
        # Member-major order keeps one backend's requests together, which suits a local
        # model that holds its prompt cache between consecutive calls.
        return [
            Cell(tool, persona, member)
            for member in self.members
            for tool in self.tools
            for persona in self.personas
        ]


def default_catalog() -> Path:
    local = Path("examples/catalog.yaml")
    return local if local.is_file() else data_dir("examples") / "catalog.yaml"


def plan_compare(
    tool_ids: Sequence[str],
    *,
    catalog: str | Path | None = None,
    backends: Sequence[str] = (),
    persona_ids: Sequence[str] = (),
    personas_dir: str | Path | None = None,
    sampling: Sampling | None = None,
    config: PanelConfig | None = None,
) -> Plan:
    """Check every input and build the backends; raise a UserError before any file is written."""
    if len(tool_ids) < 2:
        raise UserError("compare needs at least two tool ids")
    if len(set(tool_ids)) != len(tool_ids):
        raise UserError("compare needs two different tools")
    catalog_path = Path(catalog) if catalog else default_catalog()
    cat = load_catalog(catalog_path)
    tools = [cat.get(tid) for tid in tool_ids]
    personas = resolve_personas(
        load_personas(personas_dir or data_dir("personas")), list(persona_ids)
    )
    specs = resolve_members(list(backends), config or PanelConfig())
    members = [create_backend(spec) for spec in specs]
    labels = [m.label for m in members]
    if len(set(labels)) != len(labels):
        raise BackendSpecError(f"the same panel member is listed twice: {', '.join(labels)}")
    concurrency = {
        m.label: int(spec.options["concurrency"])
        for m, spec in zip(members, specs, strict=True)
        if spec.options.get("concurrency")
    }
    return Plan(
        tools, personas, members, catalog_path, sampling=sampling or Sampling(), concurrency=concurrency
    )


async def run_plan(
    plan: Plan,
    store: Store,
    command: str,
    on_result: Callable[[CellResult], None] | None = None,
) -> tuple[str, ComparisonRecord]:
    run_id = new_run_id()
    store.create_run(
        run_id,
        command,
        str(plan.catalog_path),
        {
            "members": [m.label for m in plan.members],
            "sampling": plan.sampling.as_dict(),
            "prompts": plan.prompts.fingerprint(),
        },
        tools=[(t.id, t.fingerprint(), t.model_dump(mode="json")) for t in plan.tools],
        personas=[(p.id, p.version, p.model_dump(mode="json")) for p in plan.personas],
    )
    engine = Engine(
        store, run_id, plan.prompts, plan.sampling, concurrency=plan.concurrency, on_result=on_result
    )
    status = "failed"
    try:
        await engine.run(plan.cells)
        status = "done"
    finally:
        store.finish_run(run_id, status)
        for member in plan.members:
            await member.aclose()
    return run_id, load_record(store, run_id)


def load_record(store: Store, run_id: str) -> ComparisonRecord:
    """Rebuild a run's record from the store, with the tools and personas as they were then."""
    run = store.get_run(run_id)
    if run is None:
        raise UserError(f"no run '{run_id}' in {store.path}")
    tools = [Tool.model_validate(t) for t in store.run_tools(run_id)]
    personas = [Persona.model_validate(p) for p in store.run_personas(run_id)]
    return build_record(
        run_id, run.created_at, tools, personas, run.config.get("members", []), store.reviews(run_id)
    )


def write_outputs(store: Store, record: ComparisonRecord) -> Path:
    out = store.run_dir(record.run_id)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "comparison.json", record.model_dump_json(indent=2) + "\n")
    write_atomic(out / "comparison.md", render_markdown(record))
    return out


def write_atomic(path: Path, text: str) -> None:
    """Write a file so that readers see the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def record_schema() -> dict[str, object]:
    schema = ComparisonRecord.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "urn:panel:comparison-record:1.0"
    return schema


def record_schema_text() -> str:
    return json.dumps(record_schema(), indent=2, sort_keys=False) + "\n"
