"""Build values that validate against a JSON Schema, deterministically from a seed.

`fill(schema, seed)` covers the subset of JSON Schema that structured-output APIs
accept (objects, arrays, enums, consts, bounded strings and numbers, unions, `$ref`
into `$defs`/`definitions`, nullable type lists). Strings are short English-ish
sentences so that fake replies read like something a reviewer could have written.

The `fake` backend answers with it; the loopback provider in `panel.testing` also
damages its values on purpose (`panel.testing.schema_fill.violate`).
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any

__all__ = ["Filler", "fill", "json_types", "seed_int", "sentence"]

# Deeper than any real review schema; only recursive `$ref`s get this far.
_MAX_DEPTH = 12

_ADJECTIVES = [
    "clear",
    "careful",
    "brief",
    "solid",
    "uneven",
    "thoughtful",
    "narrow",
    "bold",
    "modest",
    "steady",
    "fragile",
    "concise",
    "vague",
    "sound",
]
_NOUNS = [
    "argument",
    "design",
    "draft",
    "proposal",
    "summary",
    "method",
    "result",
    "section",
    "claim",
    "example",
    "outline",
    "analysis",
    "plan",
    "test",
]
_VERBS = [
    "supports",
    "explains",
    "misses",
    "covers",
    "weakens",
    "clarifies",
    "repeats",
    "improves",
    "questions",
    "frames",
    "extends",
    "limits",
]
_ADVERBS = ["mostly", "rarely", "often", "partly", "quietly", "plainly", "fully"]

# Keywords the Anthropic SDK strips from a schema and appends to its description as
# `{maxLength: 40, minimum: 1}`, hoping the model follows them; so do we.
_HINTED = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
)
_HINT_BLOCK = re.compile(r"\{([^{}]*)\}\s*$")

# Returned by `violate` for an out-of-enum verdict; checked against the enum first.


def seed_int(seed: str | int) -> int:
    """Map any seed to a large int; strings and ints with the same text agree."""
    return int.from_bytes(hashlib.sha256(str(seed).encode()).digest(), "big")


def sentence(rng: random.Random) -> str:
    """One short readable sentence, e.g. 'The careful draft mostly supports the claim.'"""
    words = [
        "The",
        rng.choice(_ADJECTIVES),
        rng.choice(_NOUNS),
        rng.choice(_ADVERBS),
        rng.choice(_VERBS),
        "the",
        rng.choice(_ADJECTIVES),
        rng.choice(_NOUNS),
    ]
    return " ".join(words) + "."


def fill(schema: dict[str, Any], seed: str | int) -> Any:
    """Return a value valid against `schema`; same seed, same value."""
    return Filler(schema, seed).value(schema, "", 0)


def json_types(schema: dict[str, Any]) -> list[str]:
    t = schema.get("type")
    if isinstance(t, str):
        return [t]
    if isinstance(t, list):
        return [x for x in t if isinstance(x, str)]
    return []


class Filler:
    """Values for one root schema (which `$ref`s resolve against), from one seeded RNG."""

    def __init__(self, root: dict[str, Any], seed: str | int) -> None:
        self.root = root
        self.seed = seed
        self.rng = random.Random(seed_int(seed))

    def resolve(self, schema: Any) -> dict[str, Any]:
        """Follow `$ref`s and merge `allOf` so callers see one plain schema."""
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < _MAX_DEPTH:
            target = self._lookup(schema["$ref"])
            # Siblings of $ref (description, default...) are allowed since 2019-09.
            extra = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **extra}
            seen += 1
        if not isinstance(schema, dict):
            return {}
        if "allOf" in schema:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part = self.resolve(part)
                props = {**merged.get("properties", {}), **part.get("properties", {})}
                required = list(dict.fromkeys(merged.get("required", []) + part.get("required", [])))
                merged = {**part, **merged}
                if props:
                    merged["properties"] = props
                if required:
                    merged["required"] = required
            schema = merged
        resolved: dict[str, Any] = _with_description_hints(schema)
        return resolved

    def _lookup(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref is supported, got {ref!r}")
        node: Any = self.root
        for part in ref.lstrip("#").strip("/").split("/"):
            if part:
                node = node[part.replace("~1", "/").replace("~0", "~")]
        if not isinstance(node, dict):
            raise ValueError(f"$ref {ref!r} does not point at a schema object")
        return node

    def value(self, schema: Any, name: str, depth: int) -> Any:
        if schema is True or schema is None:
            schema = {}
        if schema is False:
            raise ValueError("schema `false` accepts no value")
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self._enum(schema["enum"], name)
        branches = schema.get("anyOf") or schema.get("oneOf")
        if branches:
            non_null = [b for b in branches if json_types(self.resolve(b)) != ["null"]]
            # Null is valid but makes dull reviews; take it only when forced to.
            pick = self.rng.choice(non_null or branches)
            base = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
            return self.value({**base, **self.resolve(pick)}, name, depth + 1)
        kind = self._pick_type(schema, depth)
        if kind == "null":
            return None
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "integer":
            return self._integer(schema)
        if kind == "number":
            return self._number(schema)
        if kind == "array":
            return self._array(schema, name, depth)
        if kind == "object":
            return self._object(schema, depth)
        return self._string(schema)

    def _pick_type(self, schema: dict[str, Any], depth: int) -> str:
        types = json_types(schema)
        if not types:
            if "properties" in schema or "additionalProperties" in schema:
                return "object"
            if "items" in schema or "prefixItems" in schema:
                return "array"
            return "string"
        non_null = [t for t in types if t != "null"]
        if not non_null or (depth >= _MAX_DEPTH and "null" in types):
            return "null"
        return self.rng.choice(non_null)

    def _enum(self, members: list[Any], name: str) -> Any:
        if name == "verdict":
            # Its own hash so the split is about even across seeds, whatever else
            # the schema contains and in whatever order it is filled.
            return members[seed_int(f"{self.seed}:verdict") % len(members)]
        return self.rng.choice(members)

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties", {})
        required = [k for k in schema.get("required", [])]
        out: dict[str, Any] = {}
        for key, sub in props.items():
            if key in required or (depth < _MAX_DEPTH and self.rng.random() < 0.7):
                out[key] = self.value(sub, key, depth + 1)
        for key in required:
            # A required key without a property schema accepts anything.
            if key not in out:
                out[key] = self.value(schema.get("additionalProperties", {}), key, depth + 1)
        want = int(schema.get("minProperties", 0))
        for key, sub in props.items():
            if len(out) >= want:
                break
            if key not in out:
                out[key] = self.value(sub, key, depth + 1)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and not props:
            count = max(want - len(out), 1 if depth < _MAX_DEPTH else 0)
            for i in range(count):
                key = f"{self.rng.choice(_NOUNS)}_{i}"
                out[key] = self.value(extra, key, depth + 1)
        return out

    def _array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        lo = int(schema.get("minItems", 0))
        hi = schema.get("maxItems")
        hi = lo + 3 if hi is None else int(hi)
        hi = min(hi, lo + 3)
        count = self.rng.randint(min(max(lo, 1), hi), hi)
        if depth >= _MAX_DEPTH:
            count = lo
        prefix: list[Any] = schema.get("prefixItems", [])
        items = schema.get("items", {})
        out: list[Any] = []
        for i in range(count):
            sub = prefix[i] if i < len(prefix) else items
            if schema.get("uniqueItems"):
                for _ in range(20):
                    candidate = self.value(sub, name, depth + 1)
                    if candidate not in out:
                        break
                else:
                    if len(out) >= lo:
                        break
                out.append(candidate)
            else:
                out.append(self.value(sub, name, depth + 1))
        return out

    def _integer(self, schema: dict[str, Any]) -> int:
        lo, hi = _bounds(schema, integer=True)
        step = schema.get("multipleOf")
        if isinstance(step, int) and step > 0:
            first = -(-int(lo) // step) * step
            if first <= hi:
                return first + step * self.rng.randint(0, (int(hi) - first) // step)
        return self.rng.randint(int(lo), int(hi))

    def _number(self, schema: dict[str, Any]) -> float:
        lo, hi = _bounds(schema, integer=False)
        value = round(self.rng.uniform(lo, hi), 2)
        return min(max(value, lo), hi)

    def _string(self, schema: dict[str, Any]) -> str:
        fmt = schema.get("format")
        if fmt == "date-time":
            return f"2024-0{self.rng.randint(1, 9)}-1{self.rng.randint(0, 9)}T12:00:00Z"
        if fmt == "date":
            return f"2024-0{self.rng.randint(1, 9)}-1{self.rng.randint(0, 9)}"
        if fmt == "email":
            return f"{self.rng.choice(_NOUNS)}@example.com"
        if fmt in ("uri", "url"):
            return f"https://example.com/{self.rng.choice(_NOUNS)}"
        if fmt == "uuid":
            return f"{self.rng.getrandbits(32):08x}-0000-4000-8000-{self.rng.getrandbits(48):012x}"
        lo = int(schema.get("minLength", 0))
        hi = schema.get("maxLength")
        return _sized_text(self.rng, lo, None if hi is None else int(hi))


def _with_description_hints(schema: dict[str, Any]) -> dict[str, Any]:
    description = schema.get("description")
    match = _HINT_BLOCK.search(description) if isinstance(description, str) else None
    if match is None:
        return schema
    hints: dict[str, Any] = {}
    for pair in match.group(1).split(","):
        key, _, raw = pair.partition(":")
        key = key.strip()
        if key in _HINTED and key not in schema:
            try:
                number = float(raw)
            except ValueError:
                continue
            hints[key] = int(number) if number.is_integer() else number
    return {**schema, **hints} if hints else schema


def _bounds(schema: dict[str, Any], integer: bool) -> tuple[float, float]:
    lo = schema.get("minimum")
    hi = schema.get("maximum")
    # Draft 6+ spells exclusive bounds as numbers, draft 4 as booleans on min/max.
    ex_lo, ex_hi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    nudge = 1 if integer else 0.01
    if isinstance(ex_lo, (int, float)) and not isinstance(ex_lo, bool):
        lo = ex_lo + nudge if lo is None else max(lo, ex_lo + nudge)
    elif ex_lo is True and lo is not None:
        lo = lo + nudge
    if isinstance(ex_hi, (int, float)) and not isinstance(ex_hi, bool):
        hi = ex_hi - nudge if hi is None else min(hi, ex_hi - nudge)
    elif ex_hi is True and hi is not None:
        hi = hi - nudge
    if lo is None:
        lo = 0 if hi is None or hi >= 0 else hi - 10
    if hi is None:
        hi = lo + 10
    if integer:
        return int(-(-lo // 1)), int(hi // 1)
    return float(lo), float(hi)


def _sized_text(rng: random.Random, lo: int, hi: int | None) -> str:
    text = sentence(rng)
    while len(text) < lo:
        text += " " + sentence(rng)
    if hi is not None and len(text) > hi:
        cut = text[:hi]
        space = cut.rfind(" ")
        # Cut at a word boundary when that still leaves enough characters.
        if space >= max(lo, 1):
            cut = cut[:space]
        text = cut.rstrip() if len(cut.rstrip()) >= lo else cut
    return text
