"""Triage's order and the words around it: :func:`ranked` (the tools most doubtful first),
:func:`run_basis` and :func:`ranking_note` (the line above a triage), :func:`confidence_line`
(one tool's confidence for a reader) and :func:`as_row` (a flat row for JSON and CSV). They
read the :class:`~panel.report.record.Confidence` that :mod:`panel.report.confidence` gives
each tool; the doubt they rank by is its :func:`~panel.report.confidence.doubt`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from .record import Confidence

__all__ = ["as_row", "confidence_line", "ranked", "ranking_note", "run_basis"]


def confidence_line(c: Confidence) -> str:
    """One line for a reader: the probability with its interval and method, or why there is
    none, then whether the verdict is contested and why."""
    head = c.summary
    if not c.contested:
        return f"{head}. Not contested."
    return f"{head}. Contested: " + " ".join(r.text for r in c.reasons)


def ranked(confidence: Mapping[str, Confidence]) -> list[tuple[str, Confidence]]:
    """The tools most doubtful first: by doubt, then by how many reasons, then the probability
    nearest even odds (a tool without one first), then in the run's order.

    When a run's tools come from two methods (editors' reliabilities for some, the ship share
    for the tools none of whose judges has labels), both doubts read as distance from even
    odds, a model's at its interval's weak end and a ship share's at its rule-of-succession
    share (:func:`~panel.report.confidence.share_doubt`), and they are ranked together; at
    equal doubt a ship share comes first (less is known of it). :func:`ranking_note` says so
    beside the ranking."""
    order = {tool_id: i for i, tool_id in enumerate(confidence)}

    def key(item: tuple[str, Confidence]) -> tuple[float, int, int, float, int]:
        tool_id, c = item
        odds = 0.0 if c.ship is None else abs(c.ship - 0.5)
        modelled = 1 if c.method in ("dawid-skene", "editors") else 0
        return (-c.doubt, -len(c.reasons), modelled, odds, order[tool_id])

    return sorted(confidence.items(), key=key)


_METHOD_WORDS = {
    "dawid-skene": "Dawid–Skene probability",
    "editors": "probability from editors' reliabilities",
    "vote-share": "ship share",
}


#: a tool's basis is the run-wide sentence with that tool's own review count around it
_THIS_TOOL = re.compile(
    r"^(?:ship share of \d+ reviews \(not a probability\), )?(.*?)(?: \(\d+ reviews? of this tool\))?$"
)


def run_basis(confidence: Mapping[str, Confidence]) -> str:
    """What the commonest method of the run's estimates rests on, in one sentence, without any
    one tool's own count of reviews ("" when no tool has an estimate): the line above a
    triage."""
    methods = Counter(c.method for c in confidence.values() if c.method != "none").most_common(1)
    if not methods:
        return ""
    first = next(c for c in confidence.values() if c.method == methods[0][0])
    found = _THIS_TOOL.match(first.basis)
    said = found.group(1) if found else first.basis
    if first.method == "vote-share":
        why = said.removeprefix("Wilson interval: ")
        said = f"a ship share of their reviews with a Wilson interval, not a probability ({why})"
    return f"{methods[0][1]:,} of {len(confidence):,} tools: {said}."


def ranking_note(confidence: Mapping[str, Confidence]) -> str | None:
    """One sentence when the run's estimates come from more than one method (None otherwise):
    how many tools each rests on and how :func:`ranked` orders them together."""
    counts = Counter(c.method for c in confidence.values() if c.method in _METHOD_WORDS)
    if len(counts) < 2:
        return None
    parts = ", ".join(f"{n} by {_METHOD_WORDS[m]}" for m, n in sorted(counts.items()))
    return (
        f"Doubt rests on two scales ({parts}): ranked together by distance from even odds, a "
        "probability at its interval's weak end, a ship share at (ship + 1) / (reviews + 2)."
    )


def as_row(tool_id: str, name: str, c: Confidence) -> dict[str, Any]:
    """One tool's confidence as a flat row (triage's JSON and CSV), stable column names."""
    return {
        "tool_id": tool_id,
        "name": name,
        "doubt": c.doubt,
        "ship": c.ship,
        "low": c.low,
        "high": c.high,
        "method": c.method,
        "reviews": c.reviews,
        "contested": c.contested,
        "reasons": ";".join(r.code for r in c.reasons),
        "why": " ".join(r.text for r in c.reasons),
    }
