"""The models' pooled verdict of a tool in a run: the one definition the confidence (and its
`flipped_since`), a tool's verdict history and `panel diff`'s pooled flips all read.

It is about what the models said, not what editors made of it: repeat 0 of each cell, with a
valid rebuttal-round verdict in place of round 1's; an editor's edit does not enter. Editors'
verdicts are what the labels measure the panel against (`panel agreement --reference
editors`), so counting them in the panel's own verdict would inflate its agreement with the
editors. Binary: ship against every other verdict a persona may give; the majority of the
valid verdicts, "a tie" when the sides are equal, None with no valid verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..store import CellFacts, CellKey

__all__ = ["NOT_SHIP", "SHIP", "TIE", "binary", "models_verdict", "pooled", "pooled_cells"]

SHIP = "ship"
NOT_SHIP = "not ship"
TIE = "a tie"


def models_verdict(first: str | None, rebuttal: str | None) -> str | None:
    """A cell's verdict as the models left it: the valid rebuttal-round verdict in place of
    round 1's; None where round 1 failed."""
    return first if first is None or rebuttal is None else rebuttal


def binary(verdict: str | None) -> str | None:
    """ship, not ship, or None for a failed review."""
    return None if verdict is None else SHIP if verdict == SHIP else NOT_SHIP


def pooled(verdicts: Iterable[str | None]) -> str | None:
    """The majority of the valid verdicts, ship against the rest: ship, not ship, a tie, or None."""
    valid = [v for v in verdicts if v is not None]
    if not valid:
        return None
    ship = sum(1 for v in valid if v == SHIP)
    return SHIP if 2 * ship > len(valid) else NOT_SHIP if 2 * ship < len(valid) else TIE


def pooled_cells(cells: Mapping[CellKey, CellFacts], keys: Iterable[CellKey] | None = None) -> str | None:
    """:func:`pooled` over the repeat-0 cells among ``keys`` (all of ``cells`` when None), each
    with its models' verdict."""
    chosen = cells if keys is None else keys
    return pooled(models_verdict(cells[k].verdict, cells[k].rebuttal) for k in chosen if k.repeat == 0)
