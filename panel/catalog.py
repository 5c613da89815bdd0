"""The catalog: the tools the panel reviews, loaded from YAML, JSON or JSONL.

Every error names the file and, where the format lets us know it, the line of the
offending tool or field, because catalogs are edited by hand and grow to thousands of
entries.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, ValidationError, field_validator

from .errors import CatalogError, UnknownToolError, shown
from .loaders import load_json, load_yaml, node_lines, read_text

__all__ = [
    "Catalog", "Community", "Pricing", "PricingModel", "Tool",
    "duplicate_id", "load_catalog", "tool_problems",
]  # fmt: skip

PricingModel = Literal["free", "freemium", "paid", "enterprise", "unknown"]
SLUG = r"^[a-z0-9][a-z0-9._-]*$"


class Pricing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: PricingModel = "unknown"
    note: str = ""


class Community(BaseModel):
    """Community votes on the tool: how many said ship and how many said skip."""

    model_config = ConfigDict(extra="forbid")

    ship: NonNegativeInt = 0
    skip: NonNegativeInt = 0

    @property
    def total(self) -> int:
        return self.ship + self.skip


class Tool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=SLUG, description="A slug: lower-case letters, digits, '.', '_', '-'.")
    name: str = Field(min_length=1)
    category: str = Field(min_length=1)
    tagline: str = Field(min_length=1)
    description: str = Field(min_length=1)
    pricing: Pricing
    links: dict[str, str] = Field(default_factory=dict)
    facts: list[str] = Field(default_factory=list)
    community: Community | None = None

    @field_validator("id", "name", "category", "tagline")
    @classmethod
    def _one_line(cls, value: str) -> str:
        # These appear outside the fenced data block of a prompt: a line break there could
        # pose as an instruction.
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
            raise ValueError("must be one line, with no control characters")
        return value

    @field_validator("links")
    @classmethod
    def _http_links(cls, links: dict[str, str]) -> dict[str, str]:
        for name, url in links.items():
            if not re.match(r"^https?://[^\s/]+", url.strip()):
                raise ValueError(f"link {shown(name)} must be an http(s) URL, got {shown(url)}")
        return links

    def facts_for_review(self) -> dict[str, Any]:
        """What a reviewer is shown: the catalog's facts, not the community vote."""
        data = self.model_dump(exclude={"community"})
        if not data["links"]:
            del data["links"]
        if not data["facts"]:
            del data["facts"]
        return data

    def fingerprint(self) -> str:
        """Hash of what a review depends on, so a changed tool can be told from an unchanged one."""
        canonical = json.dumps(self.facts_for_review(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class Catalog:
    """Tools by id, with the file and line each came from."""

    def __init__(self, path: Path, tools: list[Tool], lines: dict[str, int]) -> None:
        self.path = path
        self.tools = {tool.id: tool for tool in tools}
        self.lines = lines

    def __len__(self) -> int:
        return len(self.tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self.tools.values())

    def get(self, tool_id: str) -> Tool:
        if tool_id in self.tools:
            return self.tools[tool_id]
        by_name = {tool.name.lower(): tool for tool in self.tools.values()}
        if tool_id.lower() in by_name:
            return by_name[tool_id.lower()]
        close = difflib.get_close_matches(tool_id, list(self.tools), n=3, cutoff=0.5)
        close += [
            by_name[name].id
            for name in difflib.get_close_matches(tool_id.lower(), list(by_name), n=3, cutoff=0.5)
            if by_name[name].id not in close
        ]
        hint = f"; did you mean {', '.join(repr(c) for c in close[:3])}?" if close else ""
        raise UnknownToolError(
            f"{self.path}: no tool with id {shown(tool_id)} ({len(self.tools)} tools in the catalog){hint}"
        )


def load_catalog(path: str | Path) -> Catalog:
    """Load and validate a catalog file; raise CatalogError naming the file and line."""
    path = Path(path)
    suffix = path.suffix.lower()
    readers = {".yaml": _read_yaml, ".yml": _read_yaml, ".json": _read_json, ".jsonl": _read_jsonl}
    if suffix not in readers:
        raise CatalogError(f"{path}: unknown catalog format {shown(suffix)} (use .yaml, .json or .jsonl)")
    entries = readers[suffix](path, read_text(path, CatalogError, "catalog file"))

    tools: list[Tool] = []
    lines: dict[str, int] = {}
    for index, (raw, line, field_lines) in enumerate(entries):
        where = f"{path}:{line}" if line else str(path)
        if not isinstance(raw, dict):
            raise CatalogError(f"{where}: tools[{index}] must be a mapping, got {_kind(raw)}")
        label = f"tool {shown(raw['id'])}" if isinstance(raw.get("id"), str) else f"tools[{index}]"
        try:
            tool = Tool.model_validate(raw)
        except ValidationError as exc:
            raise CatalogError(_describe(exc, path, line, field_lines, label)) from None
        if tool.id in lines:
            raise CatalogError(f"{where}: {duplicate_id(tool.id, lines[tool.id])}")
        lines[tool.id] = line
        tools.append(tool)
    if not tools:
        raise CatalogError(f"{path}: the catalog has no tools")
    return Catalog(path, tools, lines)


# One entry of a catalog file: the raw mapping, the line it starts on, and the line of
# each of its fields (dotted path -> line) where the format tells us.
_Entry = tuple[Any, int, dict[str, int]]


def _read_yaml(path: Path, text: str) -> list[_Entry]:
    data, node = load_yaml(path, text, CatalogError)
    items, items_node = _tool_list(path, data, node)
    return [
        (raw, item_node.start_mark.line + 1, node_lines(item_node))
        for raw, item_node in zip(items, items_node, strict=True)
    ]


def _tool_list(path: Path, data: Any, node: yaml.Node | None) -> tuple[list[Any], list[yaml.Node]]:
    if isinstance(data, dict) and "tools" in data and isinstance(node, yaml.MappingNode):
        data = data["tools"]
        node = next(v for k, v in node.value if k.value == "tools")
    if not isinstance(data, list) or not isinstance(node, yaml.SequenceNode):
        raise CatalogError(
            f"{path}: a catalog is a list of tools (or a mapping with a 'tools' list), got {_kind(data)}"
        )
    return data, list(node.value)


def _read_json(path: Path, text: str) -> list[_Entry]:
    data = load_json(path, text, CatalogError)
    if isinstance(data, dict) and "tools" in data:
        data = data["tools"]
    if not isinstance(data, list):
        raise CatalogError(
            f"{path}: a catalog is a list of tools (or an object with a 'tools' list), got {_kind(data)}"
        )
    starts = _json_item_lines(text)
    return [(raw, starts[i] if i < len(starts) else 0, {}) for i, raw in enumerate(data)]


def _json_item_lines(text: str) -> list[int]:
    """Line on which each element of the (first) top-level array starts."""
    decoder = json.JSONDecoder()
    bracket = text.find("[")
    if bracket < 0:
        return []
    pos, lines = bracket + 1, list[int]()
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            return lines
        lines.append(text.count("\n", 0, pos) + 1)
        try:
            _, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return lines


def _read_jsonl(path: Path, text: str) -> list[_Entry]:
    entries: list[_Entry] = []
    # Split on line feeds only: str.splitlines would also break at U+2028, which JSON allows in a string.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        entries.append((load_json(path, line, CatalogError, first_line=number), number, {}))
    return entries


def tool_problems(raw: Mapping[str, Any]) -> dict[str, str]:
    """What is wrong with one raw tool entry, by field path ("id", "pricing.model" ...), in
    the words `load_catalog` uses; the first problem of each field; empty when it is valid."""
    try:
        Tool.model_validate(raw)
    except ValidationError as exc:
        problems: dict[str, str] = {}
        for field, problem in _problems(exc):
            problems.setdefault(field, problem)
        return problems
    return {}


def duplicate_id(tool_id: str, first_line: int = 0) -> str:
    """The problem of a tool id the catalog already has (first at `first_line`, 0: unknown)."""
    where = f" (first defined at line {first_line})" if first_line else ""
    return f"duplicate tool id {shown(tool_id)}{where}"


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    """Each validation error as (field path, problem), in pydantic's order."""
    found = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "(tool)"
        if error["type"] == "missing":
            problem = f"missing required field {shown(field)}"
        elif error["type"] == "extra_forbidden":
            problem = f"unknown field {shown(field)}"
        else:
            given = error.get("input")
            got = f" (got {shown(given)})" if not isinstance(given, dict | list) else ""
            problem = f"field {shown(field)}: {error['msg']}{got}"
        found.append((field, problem))
    return found


def _describe(exc: ValidationError, path: Path, line: int, field_lines: dict[str, int], label: str) -> str:
    errors = _problems(exc)
    field, problem = errors[0]
    field_line = field_lines.get(field, line)
    where = f"{path}:{field_line}" if field_line else str(path)
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{where}: {label}: {problem}{more}"


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )
