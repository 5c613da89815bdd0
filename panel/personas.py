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

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from .errors import PersonaError, shown
from .loaders import read_text
from .yaml_loader import load_yaml, node_lines

__all__ = ["Persona", "Question", "load_persona", "load_personas", "persona_files", "resolve_personas"]

DEFAULT_VERDICTS = ("ship", "skip")
PERSONA_SUFFIXES = (".yaml", ".yml")
#: The fields of every review; a question key is a field of the review's answers model.
REVIEW_FIELDS = ("answers", "review", "verdict_note", "verdict")
# A key that names a BaseModel attribute would shadow it (pydantic drops or breaks such a
# field) and `model_` is pydantic's own namespace.
_MODEL_NAMES = frozenset(dir(BaseModel))


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    question: str = Field(min_length=1)
    guidance: str = ""

    @property
    def described(self) -> str:
        """The question and its guidance: the answer's description in the review schema,
        which constrained decoders and tool-calling models read beside the prompt."""
        guidance = " ".join(self.guidance.split())
        return f"{self.question} {guidance}" if guidance else self.question

    @field_validator("key")
    @classmethod
    def _not_reserved(cls, key: str) -> str:
        if key in REVIEW_FIELDS:
            raise ValueError(f"question key {shown(key)} is reserved: it is a field of every review")
        if key in _MODEL_NAMES or key.startswith("model_"):
            raise ValueError(f"question key {shown(key)} is reserved: it names a pydantic model attribute")
        return key


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

    @field_validator("verdicts")
    @classmethod
    def _distinct_verdicts(cls, verdicts: tuple[str, ...]) -> tuple[str, ...]:
        for verdict in verdicts:
            if not verdict.strip() or verdict != verdict.strip():
                raise ValueError(f"a verdict must be a word without surrounding spaces, got {shown(verdict)}")
            if any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in verdict):
                raise ValueError(f"a verdict must not hold control characters, got {shown(verdict)}")
        repeated = sorted({v for v in verdicts if verdicts.count(v) > 1})
        if repeated:
            raise ValueError(f"verdicts must be distinct, repeated: {', '.join(shown(v) for v in repeated)}")
        return verdicts

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
            q.key: (str, Field(min_length=1, description=q.described)) for q in self.questions
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
    """One persona file, checked; a problem raises PersonaError naming the file and line."""
    path = Path(path)
    text = read_text(path, PersonaError, "persona file")
    data, node = load_yaml(path, text, PersonaError)
    if not isinstance(data, dict):
        raise PersonaError(f"{path}: a persona file is a mapping of fields")
    data["version"] = hashlib.sha256(text.encode()).hexdigest()[:12]
    try:
        persona = Persona.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or "(persona)"
        where = _where(path, node_lines(node), field)
        problem = first["msg"].removeprefix("Value error, ")
        raise PersonaError(f"{where}: field {shown(field)}: {problem}") from None
    if persona.id != path.stem:
        raise PersonaError(
            f"{path}: persona id {shown(persona.id)} must match the file name {shown(path.stem)}"
        )
    return persona


def _where(path: Path, lines: dict[str, int], field: str) -> str:
    """`path:line` of the field, or of the nearest enclosing field the file shows."""
    while field:
        if field in lines:
            return f"{path}:{lines[field]}"
        field = field.rpartition(".")[0]
    return str(path)


def persona_files(path: str | Path) -> list[Path]:
    """The persona files a path stands for: the file itself, or a folder's *.yaml and *.yml.

    Every command finds persona files here, so `personas validate` checks what a run loads.
    `x.yaml` beside `x.yml` would be two definitions of one persona: refused, naming both.
    """
    path = Path(path)
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.iterdir() if p.suffix in PERSONA_SUFFIXES)
    by_stem: dict[str, Path] = {}
    for file in files:
        if file.stem in by_stem:
            raise PersonaError(
                f"{by_stem[file.stem]} and {file}: two files for persona {shown(file.stem)}; keep one"
            )
        by_stem[file.stem] = file
    return files


def load_personas(directory: str | Path) -> dict[str, Persona]:
    """Every persona in a folder, by id, in panel order (then by id)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PersonaError(f"{directory}: not a folder of persona files")
    files = persona_files(directory)
    if not files:
        raise PersonaError(f"{directory}: no persona files (*.yaml, *.yml) found")
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
            raise PersonaError(f"unknown persona {shown(pid)} (known: {', '.join(available)}){hint}")
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
