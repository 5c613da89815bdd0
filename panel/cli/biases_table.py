"""`panel agreement`'s Biases section as tables for people (from the report's `biases` dict)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

from ..text import for_console
from .apps import out_console

__all__ = ["estimate_text", "print_biases"]

Data = Mapping[str, Any]


def estimate_text(e: Data | None, sample: Data | None = None) -> str:
    """ "+0.120 [+0.050, +0.190]", or "too small" when the sample is under its minimum, or "—"."""
    if sample:
        return "too small"
    if not e or e.get("point") is None:
        return "—"
    if e.get("low") is None:
        return f"{e['point']:+.3f}"
    return f"{e['point']:+.3f} [{e['low']:+.3f}, {e['high']:+.3f}]"


def _measures(measures: list[Data]) -> None:
    table = Table("bias", "estimate [95% CI]", "rests on", "minimum", title="Biases")
    for m in measures:
        rests = "—" if m.get("absent") else f"{m['n_items']} {m['noun']}" + (
            f", {m['n_tools']} tools" if m.get("n_tools") else ""
        )  # fmt: skip
        shown = "absent" if m.get("absent") else estimate_text(m.get("estimate"), m.get("sample"))
        table.add_row(
            for_console(m["key"].replace("_", " ")), shown, for_console(rests), for_console(m["minimum"])
        )
    out_console.print(table)
    for m in measures:
        out_console.print(
            f"[bold]{for_console(m['title'])}[/] ({for_console(m['method'])}; {for_console(m['unit'])}; "
            f"items: {for_console(m['items'])}): "
            f"{for_console(m['reading'])}",
            highlight=False,
        )


def _self_preference(part: Data) -> None:
    if part.get("absent"):
        out_console.print(f"Self-preference: {for_console(part['absent'])}", highlight=False)
        return
    table = Table(
        "member", "maker", "self-preference [95% CI]", "own tools", "other tools",
        title=(
            "Self-preference (share of ship verdicts on its maker's tools, against the rest, "
            "minus the same on others')"
        ),
    )  # fmt: skip
    for row in part["members"]:
        e = {"point": row["estimate"], "low": row["low"], "high": row["high"]}
        table.add_row(
            for_console(row["member"]), for_console(row["maker"]),
            row.get("too_few") or estimate_text(e, row.get("sample")),
            str(row["own_tools"]), str(row["other_tools"]),
        )  # fmt: skip
    table.caption = f"{part['method']}; minimum {part['minimum']}"
    out_console.print(table)
    for row in part["members"]:
        out_console.print(f"{for_console(row['member'])}: {for_console(row['reading'])}", highlight=False)


def _position(part: Data) -> None:
    if part.get("absent"):
        out_console.print(
            f"Position bias of head-to-head judges: {for_console(part['absent'])}", highlight=False
        )
        return
    table = Table(
        "judge", "pairs", "consistent under swap", "first-shown share of inconsistent pairs",
        "first-shown picks of all answers", "failed",
        title="Position bias of head-to-head judges",
    )  # fmt: skip
    for j in part["judges"]:
        table.add_row(
            for_console(f"{j['persona']} / {j['member']}"), str(j["pairs"]),
            for_console(j["consistency"]["text"]), for_console(j["position_bias"]["text"]),
            for_console(j["first_picks"]["text"]), str(j["failed"]),
        )  # fmt: skip
    table.caption = f"{part['method']}; minimum {part['minimum']}"
    out_console.print(table)


def print_biases(data: Data) -> None:
    """Every measure with its interval and what it rests on, then self-preference and position bias."""
    _measures(list(data.get("measures", [])))
    _self_preference(data["self_preference"])
    _position(data["position"])
    for note in data.get("notes", []):
        out_console.print(f"[dim]note: {for_console(note)}[/]", highlight=False)
