"""Small builders for records and review rows, so arithmetic tests state their data plainly."""

from __future__ import annotations

import json
from pathlib import Path

from panel.catalog import Community, Pricing, Tool
from panel.personas import Persona, load_personas
from panel.resources import data_dir
from panel.store import CellKey, ReviewRow, Store

#: one tool of a YAML catalog list, to fill with `.format(id=..., name=...)`
TOOL_YAML = """\
  - id: {id}
    name: {name}
    category: Developer Tools
    tagline: t
    description: d
    pricing: {{model: free}}
"""


def tool(tid: str, *, ship: int | None = None, skip: int | None = None, pricing: str = "free") -> Tool:
    votes = Community(ship=ship or 0, skip=skip or 0) if ship is not None or skip is not None else None
    return Tool(
        id=tid,
        name=tid.title(),
        category="Developer Tools",
        tagline=f"{tid} tagline",
        description=f"{tid} description",
        pricing=Pricing(model=pricing),
        community=votes,  # type: ignore[arg-type]
    )


def personas() -> list[Persona]:
    return list(load_personas(data_dir("personas")).values())


def review(tool_id: str, persona_id: str, verdict: str | None, member: str = "fake:schema") -> ReviewRow:
    """A valid review with `verdict`, or a failed one when verdict is None."""
    valid = verdict is not None
    data = (
        {
            "answers": {},
            "review": f"{persona_id} on {tool_id}",
            "verdict_note": "note",
            "verdict": verdict,
        }
        if valid
        else None
    )
    backend, _, model = member.partition(":")
    return ReviewRow(
        tool_id=tool_id,
        persona_id=persona_id,
        member=member,
        backend=backend,
        model=model,
        valid=valid,
        verdict=verdict,
        verdict_note="note" if valid else None,
        data=data,
        error=None if valid else "invalid after re-ask: the reply is not valid JSON",
        raw_reply="{" if not valid else None,
        asks=1 if valid else 2,
        input_tokens=10,
        output_tokens=5,
        latency_s=0.1,
    )


def store_verdicts(
    store: Store, run_id: str, verdicts: dict[str, list[str | None]], status: str | None = None
) -> None:
    """A run on one member (`a:x`) with each persona's verdicts on tools t0, t1, ...; a None
    verdict is a failed review. With `status` the run is finished with it."""
    tools = [f"t{i}" for i in range(len(next(iter(verdicts.values()))))]
    store.create_run(
        run_id, "test", None, {"members": ["a:x"]},
        tools=[(t, "fp", {"id": t}) for t in tools],
        personas=[(p, "v", {"id": p}) for p in verdicts],
    )  # fmt: skip
    for persona, column in verdicts.items():
        for tool, verdict in zip(tools, column, strict=True):
            store.save_review(
                run_id, CellKey(tool, persona, "a:x"), "a", "x",
                data={"verdict": verdict} if verdict else None, error=None if verdict else "failed",
                raw_reply=None, request_id=None, asks=1,
            )  # fmt: skip
    if status is not None:
        store.finish_run(run_id, status)


def catalog_file(path: Path, n: int) -> Path:
    """A JSONL catalog of ``n`` generated tools ``tool-0000``... (valid entries, free)."""
    lines = [
        {
            "id": f"tool-{i:04d}",
            "name": f"Tool {i}",
            "category": "Developer Tools",
            "tagline": f"Generated tool {i}",
            "description": f"Tool {i} is a generated entry of a test catalog.",
            "pricing": {"model": "free", "note": ""},
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path
