"""Damage valid values so that they fail their schema, for a provider that ignores it.

Filling a schema is the `fake` backend's job and lives beside it
(`panel.backends.schema_fill`); it is re-exported here for the tests.
"""

from __future__ import annotations

import random
from typing import Any

from panel.backends.schema_fill import Filler, fill, json_types, seed_int

__all__ = ["fill", "violate"]

_BAD_VERDICTS = ["undecided", "maybe", "n/a", "unknown-verdict"]


def violate(schema: dict[str, Any], value: Any, seed: str | int) -> Any:
    """Return a copy of a valid `value` that fails `schema`.

    Prefers the failures a model really makes: an out-of-enum `verdict` or a dropped
    required field; falls back to a wrong-typed property or a wrong-typed root. A
    schema that accepts anything is returned unchanged (there is nothing to break).
    """
    rng = random.Random(seed_int(f"violate:{seed}"))
    filler = Filler(schema, seed)
    root = filler.resolve(schema)
    if isinstance(value, dict):
        props: dict[str, Any] = root.get("properties", {})
        options: list[str] = []
        verdict = filler.resolve(props.get("verdict", {}))
        if "verdict" in value and isinstance(verdict.get("enum"), list):
            options.append("verdict")
        if [k for k in root.get("required", []) if k in value]:
            options.append("required")
        broken = dict(value)
        if options:
            how = rng.choice(options)
            if how == "verdict":
                broken["verdict"] = next(v for v in _BAD_VERDICTS if v not in verdict["enum"])
            else:
                present = [k for k in root.get("required", []) if k in value]
                del broken[rng.choice(present)]
            return broken
        for key in value:
            wrong = _wrong_type(filler.resolve(props.get(key, {})))
            if wrong is not _NOTHING:
                broken[key] = wrong
                return broken
    wrong = _wrong_type(root)
    return value if wrong is _NOTHING else wrong


_NOTHING = object()


def _wrong_type(schema: dict[str, Any]) -> Any:
    types = json_types(schema)
    if not types:
        return _NOTHING
    candidates: list[Any] = [12345, "not valid here", [], {}]
    for candidate in candidates:
        if _json_type(candidate) not in types and not (isinstance(candidate, int) and "number" in types):
            return candidate
    return _NOTHING


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "null"
