"""Planted head-to-head answers for the `fake` backend and the loopback provider
(`panel.testing.wire`), so that a ranking run on them has a true order to find.

Each tool has a strength drawn from its id alone (a normal of sd `SPREAD`, the same on every
run and machine). An ask shown Tool A then Tool B picks A with probability
sigmoid(strength(A) - strength(B) + `POSITION`): a Bradley-Terry judge with a lean to the
first-shown tool. The draw comes from the request's seed, so a reply is repeatable.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .schema_fill import seed_int, sentence

__all__ = ["POSITION", "SPREAD", "planted_head_to_head", "planted_strength", "shown_tools"]

#: the sd of the planted log-strengths
SPREAD = 1.5
#: the log-odds a judge adds to the first-shown tool
POSITION = 0.4

# The fenced entries of a head-to-head ask (prompts/head_to_head.j2).
_SHOWN = re.compile(r"TOOL ([AB]) START\n(`{3,})json\n(.*?)\n\2\nTOOL \1 END", re.S)


def planted_strength(tool_id: str) -> float:
    return random.Random(seed_int(f"planted-strength:{tool_id}")).gauss(0.0, SPREAD)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, Mapping))
    return ""


def shown_tools(messages: Iterable[Any]) -> tuple[str, str] | None:
    """The ids of Tool A and Tool B in a head-to-head ask's messages; None for another ask."""
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        found: dict[str, str] = {}
        for label, _, body in _SHOWN.findall(_text(message.get("content"))):
            try:
                entry = json.loads(body)
            except ValueError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                found[label] = entry["id"]
        if set(found) == {"A", "B"}:
            return found["A"], found["B"]
    return None


def planted_head_to_head(
    schema: Mapping[str, Any] | None, messages: Iterable[Any], seed: str
) -> dict[str, Any] | None:
    """The planted reply to a head-to-head ask (its schema asks `ship_with`); None otherwise."""
    if not schema or "ship_with" not in (schema.get("properties") or {}):
        return None
    shown = shown_tools(messages)
    if shown is None:
        return None
    first, second = shown
    gap = planted_strength(first) - planted_strength(second) + POSITION
    rng = random.Random(seed_int(f"planted-pick:{seed}"))
    pick = "A" if rng.random() < 1 / (1 + math.exp(-gap)) else "B"
    return {"ship_with": pick, "reason": sentence(rng)}
