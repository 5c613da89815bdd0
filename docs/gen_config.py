"""The configuration reference, written from the pydantic models that check panel.toml.

Run by MkDocs as a hook (see mkdocs.yml): in `configuration.md` the line
`<!-- panel:options -->` becomes the tables, so the page cannot drift from the models.
Run alone, it prints the tables: `python docs/gen_config.py`.

It reads the models through pydantic's `model_fields` only: the fields every member takes
(`panel.config.MemberConfig`, and any field that every backend's options model shares), then
for each backend in `panel.backends.registry.BACKENDS` the fields of `options_model(name)`
beyond those, then `[retry]` (`RetryConfig`), then the top-level keys of `PanelConfig`.
A field's text is its `description`, else the
`#:` comment above it in the class that defines it.

The hook also publishes two files of the repository in the site, so pages can link them
and they are written once: the record's JSON Schema (`schema/comparison.schema.json`) and
the benchmarks' own notes (`bench/README.md`, as the page `bench-readme.md`).
"""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
import types
import typing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pydantic import BaseModel  # noqa: E402
from pydantic.fields import FieldInfo  # noqa: E402
from pydantic_core import PydanticUndefined  # noqa: E402

MARKER = "<!-- panel:options -->"
#: repository file -> where it appears in the site
PUBLISHED = {
    "schema/comparison.schema.json": "schema/comparison.schema.json",
    "schema/triage.schema.json": "schema/triage.schema.json",
    "schema/leaderboard.schema.json": "schema/leaderboard.schema.json",
    "bench/README.md": "bench-readme.md",
}


def _type(annotation: Any) -> str:
    """A field's type as a reader would write it: `int`, `"live" | "batch"`, `dict[str, ...]`."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is typing.Literal:
        return " | ".join(f'"{a}"' if isinstance(a, str) else str(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type(a) for a in args)
    if origin is typing.Annotated:
        return _type(args[0])
    if origin is not None:
        inner = ", ".join(_type(a) for a in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return "table"
        return annotation.__name__
    return str(annotation).replace("typing.", "")


_BOUNDS = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤", "min_length": "length ≥", "max_length": "length ≤"}


def _bounds(field: FieldInfo) -> str:
    parts = []
    for item in field.metadata:
        for attr, sign in _BOUNDS.items():
            value = getattr(item, attr, None)
            if value is not None:
                parts.append(f"{sign} {value}")
        pattern = getattr(item, "pattern", None)
        if pattern:
            parts.append(f"matches `{pattern}`")
    return ", ".join(parts)


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value: Any = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if value == {} or value == []:
        return "empty"
    return f"`{value}`"


def _comments(model: type[BaseModel]) -> dict[str, str]:
    """`#:` comments written above fields, from the model and the classes it extends."""
    found: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            source = textwrap.dedent(inspect.getsource(cls))
        except (OSError, TypeError):
            continue
        rows = source.splitlines()
        for node in ast.parse(source).body[0].body:  # type: ignore[attr-defined]
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                above: list[str] = []
                row = node.lineno - 2
                while row >= 0 and rows[row].strip().startswith("#:"):
                    above.insert(0, rows[row].strip()[2:].strip())
                    row -= 1
                if above:
                    found[node.target.id] = " ".join(above)
    return found


def _text(name: str, field: FieldInfo, comments: dict[str, str]) -> str:
    text = field.description or comments.get(name, "")
    return text.strip() or "—"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(fields: dict[str, FieldInfo], model: type[BaseModel] | None = None, prefix: str = "") -> str:
    comments = _comments(model) if model is not None else {}
    rows = ["| option | type | default | what it does |", "|---|---|---|---|"]
    for name, field in fields.items():
        kind = _type(field.annotation)
        bounds = _bounds(field)
        if bounds:
            kind = f"{kind} ({bounds})"
        rows.append(
            f"| `{prefix}{name}` | {_cell(kind)} | {_cell(_default(field))} "
            f"| {_cell(_text(name, field, comments))} |"
        )
    return "\n".join(rows)


def reference() -> str:
    """The whole reference: common member options, each backend's own, `[retry]`, then the
    keys that apply to the whole panel."""
    from panel.backends.registry import BACKENDS, options_model
    from panel.config import MemberConfig, PanelConfig, RetryConfig

    models = {name: options_model(name) for name in BACKENDS}
    shared = set.intersection(*(set(m.model_fields) for m in models.values())) if models else set()
    common: dict[str, FieldInfo] = dict(MemberConfig.model_fields)
    origin: dict[str, type[BaseModel]] = dict.fromkeys(common, MemberConfig)
    for model in models.values():  # in the order the models declare them
        for name, field in model.model_fields.items():
            if name in shared and name not in common:
                common[name] = field
                origin[name] = model
    out = ["### Every member", "", "Each `[[members]]` table takes these, whatever its backend.", ""]
    # Each row reads its `#:` comment from the class that defines the field.
    out += table({}).splitlines()
    for name, field in common.items():
        out += table({name: field}, origin[name]).splitlines()[2:]
    for name in BACKENDS:
        model = models[name]
        own = {k: v for k, v in model.model_fields.items() if k not in common}
        out += ["", f"### `{name}`", ""]
        if own:
            out += [f"Options of `{name}` members beyond the ones every member takes.", "", table(own, model)]
        else:
            out.append(f"`{name}` takes no options beyond the ones every member takes.")
    out += [
        "",
        "### `[retry]`",
        "",
        "One policy for every backend; a table of its own, beside the members.",
        "",
        table(dict(RetryConfig.model_fields), RetryConfig),
    ]
    tables = {"members", "retry", "path"}  # the tables above; `path` is where the file was found
    whole = {k: v for k, v in PanelConfig.model_fields.items() if k not in tables}
    if whole:
        out += ["", "### The whole panel", "", "Keys at the top of the file, before any table.", ""]
        out.append(table(whole, PanelConfig))
    return "\n".join(out) + "\n"


# -- MkDocs hooks -----------------------------------------------------------------------------


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER in markdown:
        return markdown.replace(MARKER, reference())
    return markdown


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for source, target in PUBLISHED.items():
        files.append(File.generated(config, target, content=(ROOT / source).read_bytes()))
    return files


if __name__ == "__main__":
    sys.stdout.write(reference())
