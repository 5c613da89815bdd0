"""Runs built by hand for the flip-attribution tests: two runs whose inputs differ in exactly
the way a test says, and whose verdicts the test sets cell by cell."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from panel.store import CellKey, Store

from .factories import personas, tool

TOOLS = ("t0", "t1")
PERSONAS = ("builder", "skeptic")


@dataclass
class Inputs:
    """What a run is made from; a test copies one and changes one thing."""

    tools: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {t: tool(t).model_dump(mode="json") for t in TOOLS}
    )
    personas: dict[str, tuple[str, dict[str, Any]]] = field(
        default_factory=lambda: {
            p.id: ("1", p.model_dump(mode="json")) for p in personas() if p.id in PERSONAS
        }
    )
    #: member spec (the label) -> written options
    members: dict[str, dict[str, Any]] = field(default_factory=lambda: {"openai:gpt-y": {"depth": "brief"}})
    prompts: str = "p1"
    sampling: dict[str, Any] = field(
        default_factory=lambda: {"temperature": 0.3, "top_p": 0.95, "max_tokens": 700, "seed": 1234}
    )
    enforced: str = "json_schema"
    repeats: int = 1
    rebuttal: bool = False

    def copy(self) -> Inputs:
        return copy.deepcopy(self)


def _fingerprint(data: dict[str, Any]) -> str:
    from panel.catalog import Tool

    return Tool.model_validate(data).fingerprint()


def _label(written: str) -> str:
    """A member's label: its name when written `name=backend:model`, else the spec."""
    return written.partition("=")[0] if "=" in written else written


def make_run(
    store: Store, run_id: str, inputs: Inputs, verdicts: dict[tuple[str, ...], str] | None = None
) -> None:
    """A finished run of `inputs` on every tool x persona x member; each cell says ship unless
    `verdicts` names it by (tool, persona) or (tool, persona, member). A member written
    `name=backend:model` is labelled by its name."""
    verdicts = verdicts or {}
    store.create_run(
        run_id,
        "review",
        None,
        {
            "members": [_label(m) for m in inputs.members],
            "member_specs": [
                {"spec": m.rpartition("=")[2], "name": _label(m) if "=" in m else None, "options": o}
                for m, o in inputs.members.items()
            ],
            "sampling": inputs.sampling,
            "prompts": inputs.prompts,
            "repeats": inputs.repeats,
            "kind": "review",
            "rebuttal": inputs.rebuttal,
        },
        tools=[(t, _fingerprint(d), d) for t, d in inputs.tools.items()],
        personas=[(p, v, d) for p, (v, d) in inputs.personas.items()],
    )
    for written in inputs.members:
        member = _label(written)
        backend, _, model = written.rpartition("=")[2].partition(":")
        for t in inputs.tools:
            for p in inputs.personas:
                verdict = verdicts.get((t, p, member), verdicts.get((t, p), "ship"))
                store.save_review(
                    run_id, CellKey(t, p, member), backend, model,
                    data={"verdict": verdict}, error=None, raw_reply=None, request_id=None, asks=1,
                    enforced=inputs.enforced,
                )  # fmt: skip
    store.finish_run(run_id, "done")
