"""The agreement page's section on a rebuttal round: round 1 beside round 2, and the flips.

Built from ``data["rounds"]`` alone; see :mod:`panel.analysis.page` for the formatting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .page import Block, Cell, Section, Table, Text, _dict, _list, value

__all__ = ["rounds_section"]

_STATS = {
    "percent_agreement": "Percent agreement",
    "fleiss_kappa": "Fleiss' kappa",
    "krippendorff_alpha": "Krippendorff's alpha (nominal)",
}


def _share(v: Any) -> Cell:
    return "—" if v is None else f"{100 * float(v):.0f}%"


def rounds_section(rounds: Mapping[str, Any]) -> Section | None:
    if not rounds:
        return None
    one, two = _dict(rounds.get("round1")), _dict(rounds.get("round2"))
    blocks: list[Block] = [
        Table(
            "Inter-rater agreement, round 1 vs after the rebuttal round",
            ["Statistic", "Round 1", "After rebuttal"],
            [[name, value(key, one.get(key)), value(key, two.get(key))] for key, name in _STATS.items()],
        )
    ]
    accuracy = _list(rounds.get("accuracy"))
    if accuracy:
        rows: list[list[Cell]] = []
        for row in accuracy:
            a, b = _dict(row.get("round1")), _dict(row.get("round2"))
            name: Cell = f"{row.get('kind')}: {row.get('name')}"
            figures = [value(k, side.get(k)) for k in ("accuracy", "kappa") for side in (a, b)]
            rows.append([name, figures[0], figures[1], figures[2], figures[3]])
        blocks.append(
            Table(
                "Against the reference, round 1 vs round 2",
                ["Group", "Accuracy, round 1", "Accuracy, round 2", "Kappa, round 1", "Kappa, round 2"],
                rows,
                frozenset({0}),
            )
        )
    flips = [_dict(f) for f in _list(rounds.get("flips"))]
    with_ref = any(f.get("to_reference") is not None for f in flips)
    head = ["Group", "Answers", "Changed", "Flip rate", "To the majority"]
    head += ["To the reference", "Away from it"] if with_ref else []
    flip_rows: list[list[Cell]] = []
    for f in flips:
        name = str(f.get("name")) if f.get("kind") == "all" else f"{f.get('kind')}: {f.get('name')}"
        cells: list[Cell] = [name, str(f.get("answered")), str(f.get("changed")), _share(f.get("rate"))]
        cells.append(str(f.get("to_majority")))
        if with_ref:
            cells += [str(f.get("to_reference")), str(f.get("from_reference"))]
        flip_rows.append(cells)
    blocks.append(Table("Flip rate in the rebuttal round", head, flip_rows, frozenset({0})))
    blocks.append(Text([str(n) for n in _list(rounds.get("notes"))]))
    dek = (
        f"Each reviewer read the others' reviews of the tool and kept or changed its verdict: "
        f"{rounds.get('answers')} answers, {rounds.get('valid')} valid, {rounds.get('failed')} failed."
    )
    return Section("rebuttal", "Does debate help or herd? The rebuttal round", dek, blocks)
