"""Personas are data: one YAML file each, and the review schema is built from the file.

Adding a persona is adding a file; no Python changes. The schema of a persona's review is
a pydantic model made at load time: one answer per question, the review prose, a one
sentence verdict note and exactly one machine-readable verdict.
"""

from __future__ import annotations

import difflib
import hashlib
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from .errors import PersonaError

__all__ = ["Persona", "Question", "load_persona", "load_personas", "resolve_personas"]

DEFAULT_VERDICTS = ("ship", "skip")


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    question: str = Field(min_length=1)
    guidance: str = ""


class Persona(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1)
    lens: str = Field(min_length=1)
    voice: str = Field(min_length=1)
    questions: tuple[Question, ...] = Field(min_length=1)
    decision: str = Field(min_length=1, description="How this persona decides ship or skip.")
    verdicts: tuple[str, ...] = Field(default=DEFAULT_VERDICTS, min_length=2)
    #: where the persona sits on the panel (lower first); ties go by id
    order: int = 100
    # Set by the loader: a hash of the file, so a changed persona invalidates its reviews.
    version: str = ""

    @model_validator(mode="after")
    def _unique_keys(self) -> Persona:
        keys = [q.key for q in self.questions]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"question keys must be unique, repeated: {', '.join(dupes)}")
        return self

    @cached_property
    def review_model(self) -> type[BaseModel]:
        """The pydantic model a review by this persona must satisfy."""
        camel = "".join(part.title() for part in self.id.split("_"))
        answers: dict[str, Any] = {
            q.key: (str, Field(min_length=1, description=q.question)) for q in self.questions
        }
        answers_model = create_model(f"{camel}Answers", __config__=ConfigDict(extra="forbid"), **answers)
        verdict_type: Any = Literal[self.verdicts]
        model: type[BaseModel] = create_model(
            f"{camel}Review",
            __config__=ConfigDict(extra="forbid"),
            answers=(answers_model, Field(description="One answer per question, by key.")),
            review=(
                str,
                Field(min_length=1, description="The review as prose, in the persona's voice."),
            ),
            verdict_note=(
                str,
                Field(min_length=1, description="One sentence on the verdict; it may carry nuance."),
            ),
            verdict=(verdict_type, Field(description="Exactly one machine-readable verdict.")),
        )
        return model

    @cached_property
    def review_schema(self) -> dict[str, Any]:
        """JSON Schema of a review, with references inlined so every provider accepts it."""
        schema = self.review_model.model_json_schema()
        inlined: dict[str, Any] = _inline_refs(schema, schema.get("$defs", {}))
        return inlined


def load_persona(path: str | Path) -> Persona:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except OSError as exc:
        raise PersonaError(f"{path}: cannot read the persona file: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise PersonaError(f"{where}: YAML syntax error: {exc.problem}") from None
    if not isinstance(data, dict):
        raise PersonaError(f"{path}: a persona file is a mapping of fields")
    data["version"] = hashlib.sha256(text.encode()).hexdigest()[:12]
    try:
        persona = Persona.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or "(persona)"
        raise PersonaError(f"{path}: field '{field}': {first['msg']}") from None
    if persona.id != path.stem:
        raise PersonaError(f"{path}: persona id '{persona.id}' must match the file name '{path.stem}'")
    return persona


def load_personas(directory: str | Path) -> dict[str, Persona]:
    """Every persona in a folder, by id, in file-name order."""
    directory = Path(directory)
    files = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
    if not files:
        raise PersonaError(f"{directory}: no persona files (*.yaml) found")
    personas = sorted((load_persona(f) for f in files), key=lambda p: (p.order, p.id))
    return {p.id: p for p in personas}


def resolve_personas(available: dict[str, Persona], wanted: list[str] | None) -> list[Persona]:
    """The personas asked for, in the order asked, or all of them."""
    if not wanted:
        return list(available.values())
    chosen = []
    for pid in wanted:
        if pid not in available:
            close = difflib.get_close_matches(pid, list(available), n=2, cutoff=0.5)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise PersonaError(f"unknown persona '{pid}' (known: {', '.join(available)}){hint}")
        chosen.append(available[pid])
    return chosen


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            return _inline_refs(defs[name], defs)
        return {k: _inline_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node
