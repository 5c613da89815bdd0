"""The new-tool form of `panel view`: what the editor typed, read into a raw catalog entry and
checked with the catalog's own rules (its `Tool` model), each field's problem said as an editor
would want it: what to type there, what was typed, and for an id the catalog has already, the
catalog file and line that hold it.

A blank field is a field not given (a blank name is "Required: type the tool's name."). Links
are one `label url` per line, facts one per line; the community votes are given as typed and
the catalog's model turns them into numbers (or says why it cannot).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from starlette.datastructures import FormData

from ..catalog import Catalog, PricingModel, Tool
from ..errors import shown

__all__ = ["FIELDS", "LABELS", "PRICING_MODELS", "ToolForm", "check", "read_form"]

#: the form's tool fields, by their `name` attribute, in the order the page shows them
FIELDS = (
    "id", "name", "category", "tagline", "description", "pricing_model", "pricing_note",
    "links", "facts", "community_ship", "community_skip",
)  # fmt: skip
#: the form's other fields: the tool to compare against and the personas (checkboxes)
COMPARE, PERSONA = "compare", "persona"
PRICING_MODELS: tuple[str, ...] = get_args(PricingModel)
#: each field's label on the page, by its `name` attribute
LABELS = {
    "id": "Id", "name": "Name", "category": "Category", "tagline": "Tagline", "description": "Description",
    "pricing_model": "Pricing model", "pricing_note": "Pricing note", "links": "Links", "facts": "Facts",
    "community_ship": "Ship votes", "community_skip": "Skip votes", COMPARE: "Compare against",
    PERSONA: "Personas",
}  # fmt: skip
#: what an id is made of, as the form's hint and its problem say it
SLUG_WORDS = "lower-case letters, digits, dots, dashes and underscores, starting with a letter or digit"
#: what a required field asks for when left blank
_WANTED = {
    "id": f"an id ({SLUG_WORDS}; e.g. my-tool)",
    "name": "the tool's name",
    "category": "a category (e.g. Developer Tools)",
    "tagline": "a one-line tagline",
    "description": "a description",
}


@dataclass
class ToolForm:
    """The form as the editor filled it in, and its problems by field name."""

    values: dict[str, str] = field(default_factory=lambda: dict.fromkeys(FIELDS, ""))
    compare: str = ""
    personas: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def raw(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The catalog entry the form describes, and the problems of its own syntax (a link line
        without a URL, a label given twice) by field name."""
        v = {name: value.replace("\r\n", "\n") for name, value in self.values.items()}
        raw: dict[str, Any] = {}
        for name in ("id", "name", "category", "tagline", "description"):
            if v[name].strip():
                raw[name] = v[name].strip()
        pricing = {"model": v["pricing_model"].strip(), "note": v["pricing_note"].strip()}
        raw["pricing"] = {key: value for key, value in pricing.items() if value}
        links, problems = _links(v["links"])
        if links:
            raw["links"] = links
        facts = [line.strip() for line in v["facts"].split("\n") if line.strip()]
        if facts:
            raw["facts"] = facts
        votes = {key: v[f"community_{key}"].strip() for key in ("ship", "skip")}
        if any(votes.values()):
            raw["community"] = {key: value for key, value in votes.items() if value}
        return raw, problems


def read_form(form: FormData) -> ToolForm:
    """The fields of a posted form (anything else in it is ignored)."""
    values = {}
    for name in FIELDS:
        value = form.get(name)
        values[name] = value if isinstance(value, str) else ""
    compare = form.get(COMPARE)
    personas = list(dict.fromkeys(p for p in form.getlist(PERSONA) if isinstance(p, str)))
    return ToolForm(values, compare if isinstance(compare, str) else "", personas)


def _links(text: str) -> tuple[dict[str, str], dict[str, str]]:
    links: dict[str, str] = {}
    first: dict[str, int] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        *words, url = line.split()
        label = " ".join(words)
        if not label:
            problem = f"Line {number}: write a label, a space, then the address (you typed {shown(line)})."
            return links, {"links": problem}
        if label in first:
            problem = (
                f"Line {number}: the label {shown(label)} is already on line {first[label]}; "
                "give each link its own label."
            )
            return links, {"links": problem}
        first[label] = number
        links[label] = url
    return links, {}


def _form_field(path: str) -> str | None:
    """The form field a catalog field path ("pricing.model", "facts.2" ...) is typed in."""
    head, _, rest = path.partition(".")
    if head in ("pricing", "community"):
        key = rest.partition(".")[0] or ("model" if head == "pricing" else "ship")
        name = f"{head}_{key}"
        return name if name in FIELDS else None
    return head if head in FIELDS else None


def _problem(name: str, error: ErrorDetails, typed: str) -> str:
    """One validation error of form field `name`, in an editor's words; `typed` is what the
    field held."""
    kind, got = error["type"], f" (you typed {shown(typed)})"
    if kind == "missing":
        return f"Required: type {_WANTED.get(name, 'it')}."
    if kind == "string_pattern_mismatch" and name == "id":
        return f"An id is {SLUG_WORDS}; e.g. my-tool{got}."
    if kind in ("int_parsing", "int_from_float", "int_type") and name.startswith("community_"):
        return f"Type a whole number of votes, e.g. 12{got}."
    if kind == "greater_than_equal" and name.startswith("community_"):
        return f"Votes cannot be negative: type 0 or more{got}."
    if kind == "literal_error":
        return f"Choose one of: {', '.join(PRICING_MODELS)}."
    said = str(error["msg"]).removeprefix("Value error, ").rstrip(".")
    return f"{said[:1].upper()}{said[1:]}."


def _tool_problems(form: ToolForm, raw: dict[str, Any]) -> dict[str, str]:
    """Each field's first problem by the catalog's `Tool` model, by form field ("" for none)."""
    try:
        Tool.model_validate(raw)
    except ValidationError as exc:
        problems: dict[str, str] = {}
        for error in exc.errors(include_url=False):
            name = _form_field(".".join(str(part) for part in error["loc"])) or ""
            problems.setdefault(name, _problem(name, error, form.values.get(name, "")))
        return problems
    return {}


def check(form: ToolForm, catalog: Catalog, persona_ids: Sequence[str]) -> Tool | None:
    """The tool the form describes, or None with `form.errors` holding every field's problem
    (beside the field); problems no field owns are under "" (shown at the top)."""
    raw, errors = form.raw()
    for name, problem in _tool_problems(form, raw).items():
        errors.setdefault(name, problem)
    tool_id = raw.get("id")
    if isinstance(tool_id, str) and tool_id in catalog.tools and "id" not in errors:
        line = catalog.line(tool_id)
        where = f"{catalog.path}, line {line}" if line else str(catalog.path)
        taken = f"The catalog already has a tool with id {shown(tool_id)} ({where})"
        errors["id"] = f"{taken}: choose another id."
    errors.update(_choices(form, catalog, persona_ids))
    order = {name: i for i, name in enumerate((*FIELDS, COMPARE, PERSONA))}
    form.errors = dict(sorted(errors.items(), key=lambda item: order.get(item[0], len(order))))
    return None if errors else Tool.model_validate(raw)


def _choices(form: ToolForm, catalog: Catalog, persona_ids: Sequence[str]) -> Mapping[str, str]:
    errors = {}
    if not form.compare:
        errors[COMPARE] = "Choose the tool to draft against."
    elif form.compare not in catalog.tools:
        errors[COMPARE] = f"The catalog has no tool with id {shown(form.compare)}: choose one from the list."
    unknown = [p for p in form.personas if p not in persona_ids]
    if unknown:
        errors[PERSONA] = f"There is no persona {shown(unknown[0])}: tick the ones listed."
    elif not form.personas:
        errors[PERSONA] = "Tick at least one persona."
    return errors
