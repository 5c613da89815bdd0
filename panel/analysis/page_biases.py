"""The agreement page's Biases section: every measured bias with its interval, what it rests on,
its minimum and what the data can tell; then self-preference and head-to-head position bias.

Built from ``data["biases"]`` alone (:mod:`panel.analysis.biases`); see :mod:`panel.analysis.page`
for the blocks and the formatting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .page import Block, Cell, Section, Table, Text, _dict, _list

__all__ = ["biases_section"]

#: a self-preference row's figures as an estimate's
_POINT = {"point": "estimate", "low": "low", "high": "high"}


def _signed(v: Any) -> str:
    return "—" if v is None else f"{float(v):+.3f}"


def _estimate(e: Mapping[str, Any], sample: Any) -> Cell:
    if _dict(sample).get("reason"):
        return "too small"
    if e.get("point") is None:
        return "—"
    if e.get("low") is None:
        return _signed(e["point"])
    return _signed(e["point"]), f"[{_signed(e['low'])}, {_signed(e['high'])}]"


def _measures(measures: list[dict[str, Any]]) -> list[Block]:
    rows: list[list[Cell]] = []
    for m in measures:
        gone = bool(m.get("absent"))
        rests = "—" if gone else f"{m.get('n_items')} {m.get('noun')}" + (
            f", {m.get('n_tools')} tools" if m.get("n_tools") else ""
        )  # fmt: skip
        shown = "absent" if gone else _estimate(_dict(m.get("estimate")), m.get("sample"))
        rows.append(
            [str(m.get("key") or "").replace("_", " ").capitalize(), shown, rests, str(m.get("minimum"))]
        )
    table = Table(
        "Each bias, with its 95% interval and what it rests on",
        ["Bias", "Estimate", "Rests on", "Minimum"], rows, frozenset({0, 2}),
    )  # fmt: skip
    blocks: list[Block] = [table]
    for m in measures:
        facts: list[tuple[str, Cell]] = [
            ("Method", str(m.get("method"))), ("Unit", str(m.get("unit"))), ("Items", str(m.get("items"))),
        ]  # fmt: skip
        blocks.append(Text([str(m.get("reading"))], facts, heading=str(m.get("title"))))
    return blocks


def _self_preference(part: Mapping[str, Any]) -> list[Block]:
    title = str(part.get("title") or "Self-preference")
    if part.get("absent"):
        return [Text([str(part["absent"])], heading=title)]
    members = [_dict(r) for r in _list(part.get("members"))]
    rows: list[list[Cell]] = [
        [
            str(r.get("member")), str(r.get("maker")),
            _estimate({k: r.get(v) for k, v in _POINT.items()}, r.get("sample")),
            str(r.get("own_tools")), str(r.get("other_tools")),
        ]
        for r in members
    ]  # fmt: skip
    table = Table(
        f"{title} (minimum {part.get('minimum')})",
        ["Member", "Maker", "Self-preference (share of ship verdicts)", "Own tools", "Other tools"],
        rows, frozenset({0, 1}),
    )  # fmt: skip
    lines = [f"{r.get('member')}: {r.get('reading')}" for r in members]
    return [table, Text(lines, [("Method", str(part.get("method")))], heading=title)]


def _position(part: Mapping[str, Any]) -> list[Block]:
    title = str(part.get("title") or "Position bias")
    if part.get("absent"):
        return [Text([str(part["absent"])], heading=title)]
    judges = [_dict(j) for j in _list(part.get("judges"))]
    rows: list[list[Cell]] = [
        [
            f"{j.get('persona')} / {j.get('member')}", str(j.get("pairs")),
            str(_dict(j.get("consistency")).get("text")), str(_dict(j.get("position_bias")).get("text")),
            str(_dict(j.get("first_picks")).get("text")), str(j.get("failed")),
        ]
        for j in judges
    ]  # fmt: skip
    table = Table(
        f"{title} (minimum {part.get('minimum')})",
        [
            "Judge", "Pairs", "Consistent under swap", "First-shown share of inconsistent pairs",
            "First-shown picks of all answers", "Failed",
        ],
        rows, frozenset({0}),
    )  # fmt: skip
    return [table, Text([str(j.get("reading")) for j in judges], [("Method", str(part.get("method")))])]


def biases_section(biases: Mapping[str, Any]) -> Section | None:
    if not biases:
        return None
    blocks = _measures([_dict(m) for m in _list(biases.get("measures"))])
    blocks += _self_preference(_dict(biases.get("self_preference")))
    blocks += _position(_dict(biases.get("position")))
    notes = [str(n) for n in _list(biases.get("notes"))]
    if notes:
        blocks.append(Text(notes))
    dek = (
        "The judges' known biases, measured on these runs: each with its method, its interval, the "
        "items it rests on and what the data can tell at that size."
    )
    return Section("biases", "Biases", dek, blocks)
