"""`panel agreement` on a run with a rebuttal round: round 1 beside round 2, and the flip rates,
as tables for people (from the report's JSON dict)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

from ..text import for_console
from .apps import out_console
from .research_tables import num

__all__ = ["print_rounds"]

Data = Mapping[str, Any]
_STATS = {
    "percent_agreement": "percent agreement",
    "fleiss_kappa": "Fleiss' kappa",
    "krippendorff_alpha": "Krippendorff's alpha (nominal)",
}


def _ci(e: Data | None) -> str:
    if not e or e.get("point") is None:
        return "—"
    if e.get("low") is None:
        return num(e["point"])
    return f"{num(e['point'])} [{num(e['low'])}, {num(e['high'])}]"


def print_rounds(data: Data) -> None:
    """Inter-rater agreement (and accuracy with a reference) in each round, and the flips."""
    out_console.print(
        f"[bold]Rebuttal round[/]: {data['answers']} answers, {data['valid']} valid, {data['failed']} failed",
        highlight=False,
    )
    table = Table("statistic", "round 1", "after rebuttal", title="Inter-rater agreement, round 1 vs round 2")
    for key, name in _STATS.items():
        table.add_row(name, _ci(data["round1"][key]), _ci(data["round2"][key]))
    out_console.print(table)
    if data["accuracy"]:
        acc = Table(
            "group", "accuracy round 1", "accuracy round 2", "kappa round 1", "kappa round 2",
            title="Against the reference, round 1 vs round 2",
        )  # fmt: skip
        for row in data["accuracy"]:
            one, two = row["round1"], row["round2"]
            acc.add_row(
                for_console(f"{row['kind']}: {row['name']}"), _ci(one["accuracy"]), _ci(two["accuracy"]),
                _ci(one["kappa"]), _ci(two["kappa"]),
            )  # fmt: skip
        out_console.print(acc)
    with_ref = any(f["to_reference"] is not None for f in data["flips"])
    columns = ["group", "answers", "changed", "flip rate", "to the majority"]
    if with_ref:
        columns += ["to the reference", "away from it"]
    flips = Table(*columns, title="Flip rate in the rebuttal round")
    for f in data["flips"]:
        cells = [
            for_console(f"{f['kind']}: {f['name']}" if f["kind"] != "all" else f["name"]),
            str(f["answered"]),
            str(f["changed"]),
            num(f["rate"], percent=True),
            str(f["to_majority"]),
        ]
        if with_ref:
            cells += [str(f["to_reference"]), str(f["from_reference"])]
        flips.add_row(*cells)
    out_console.print(flips)
    for note in data["notes"]:
        out_console.print(f"[dim]note: {for_console(note)}[/]", highlight=False)
