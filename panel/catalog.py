"""The catalog: the tools the panel reviews, loaded from YAML, JSON or JSONL.

Every error names the file and, where the format lets us know it, the line of the
offending tool or field, because catalogs are edited by hand and grow to thousands of
entries.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, ValidationError, field_validator

from .catalog_files import CatalogFile, open_catalog_file
from .errors import CatalogError, UnknownToolError, shown
from .loaders import FileStamp, kind_of

__all__ = [
    "Catalog", "Community", "Pricing", "PricingModel", "Tool",
    "duplicate_id", "load_catalog", "maker_problem", "same_maker", "tool_problems",
]  # fmt: skip

PricingModel = Literal["free", "freemium", "paid", "enterprise", "unknown"]
SLUG = r"^[a-z0-9][a-z0-9._-]*$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A maker is a name on one line: no C0 or C1 control (U+0085 is a line break), no line or
# paragraph separator, no bidi embedding, override or isolate (they reorder what is read).
_NOT_IN_A_MAKER = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: words that end an organisation's name without naming it ("Mistral AI", "Acme, Inc.")
_MAKER_SUFFIXES = frozenset(
    {
        "ai",
        "inc",
        "incorporated",
        "llc",
        "ltd",
        "limited",
        "corp",
        "corporation",
        "co",
        "company",
        "gmbh",
        "plc",
    }
)


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


def maker_problem(value: str) -> str | None:
    """Why `value` cannot be a maker's name (blank, or not one line), else None: one check
    for the catalog's `maker` and a member's."""
    if not value.strip():
        return "must name the organisation, not be blank"
    if _NOT_IN_A_MAKER.search(value):
        return f"must be a name on one line, with no control or bidi characters, not {shown(value)}"
    return None


@functools.lru_cache(maxsize=1024)  # a run names a few makers, compared for every tool and member
def _maker_key(name: str) -> str:
    """A maker's name as compared: case, punctuation and spaces aside, without a trailing
    "AI", "Inc" and the like ("Mistral AI", "mistralai" and "Mistral" are one)."""
    words = re.findall(r"[^\W_]+", unicodedata.normalize("NFKC", name).casefold())
    while len(words) > 1 and words[-1] in _MAKER_SUFFIXES:
        words.pop()
    key = "".join(words)
    return key[:-2] if key.endswith("ai") and len(key) > 2 else key


def same_maker(a: str | None, b: str | None) -> bool:
    """Whether two makers are one organisation (compared by `_maker_key`); an unknown maker
    is nobody's."""
    return a is not None and b is not None and _maker_key(a) == _maker_key(b)


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
    maker: str | None = Field(
        default=None,
        min_length=1,
        description='The organisation that makes the tool ("OpenAI", "Meta"): a member whose '
        "maker it is may recuse itself from reviewing it. Never shown to the reviewers.",
    )

    @field_validator("id", "name", "category", "tagline", "maker")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        # These appear outside the fenced data block of a prompt: a line break there could
        # pose as an instruction.
        if value is not None and _CONTROL.search(value):
            raise ValueError("must be one line, with no control characters")
        return value

    @field_validator("maker")
    @classmethod
    def _a_maker(cls, value: str | None) -> str | None:
        problem = None if value is None else maker_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("links")
    @classmethod
    def _http_links(cls, links: dict[str, str]) -> dict[str, str]:
        for name, url in links.items():
            if not re.match(r"^https?://[^\s/]+", url.strip()):
                raise ValueError(f"link {shown(name)} must be an http(s) URL, got {shown(url)}")
        return links

    def facts_for_review(self) -> dict[str, Any]:
        """What a reviewer is shown: the catalog's facts, not the community vote, nor the
        maker (kept for recusal and the self-preference measure: shown, it would tell a judge
        which tool is its maker's, and tagging a catalog would make every cached review stale)."""
        data = self.model_dump(exclude={"community", "maker"})
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
    """Tools by id, with the file each came from and where in it."""

    def __init__(
        self, path: Path, tools: dict[str, Tool], places: dict[str, int], file: CatalogFile | None = None
    ) -> None:
        self.path = path
        self.tools = tools
        self._places = places
        self._file = file
        #: the file as it was read (None: not known)
        self.stamp: FileStamp | None = file.stamp if file is not None else None

    def __len__(self) -> int:
        return len(self.tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self.tools.values())

    def line(self, tool_id: str) -> int:
        """The line the tool starts on in the file (0: not known); found when asked for."""
        place = self._places.get(tool_id)
        if place is None or self._file is None:
            return 0
        return self._file.line(place)

    def changed(self) -> bool:
        """Whether the file is not the one read (edited, replaced or gone) since."""
        return self.stamp is None or FileStamp.now(self.path) != self.stamp

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
    """Load and validate a catalog file; raise CatalogError naming the file and line.

    The file is read an entry at a time and each tool checked as it comes, so time and memory
    grow with the catalog, and the first problem in the file is the one reported.
    """
    path = Path(path)
    file = open_catalog_file(path)
    tools: dict[str, Tool] = {}
    places: dict[str, int] = {}
    for index, (raw, place) in enumerate(file.entries()):
        if not isinstance(raw, dict):
            raise CatalogError(
                f"{_at(path, file.line(place))}: tools[{index}] must be a mapping, got {kind_of(raw)}"
            )
        try:
            tool = Tool.model_validate(raw)
        except ValidationError as exc:
            label = f"tool {shown(raw['id'])}" if isinstance(raw.get("id"), str) else f"tools[{index}]"
            raise CatalogError(_describe(exc, path, file.line(place), file.field_lines(), label)) from None
        if tool.id in tools:
            first = file.line(places[tool.id])
            raise CatalogError(f"{_at(path, file.line(place))}: {duplicate_id(tool.id, first)}")
        tools[tool.id] = tool
        places[tool.id] = place
    if not tools:
        raise CatalogError(f"{path}: the catalog has no tools")
    return Catalog(path, tools, places, file)


def _at(path: Path, line: int) -> str:
    return f"{path}:{line}" if line else str(path)


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
    where = _at(path, field_lines.get(field, line))
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{where}: {label}: {problem}{more}"
