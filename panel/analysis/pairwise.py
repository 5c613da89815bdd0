"""Pairwise Cohen's kappa matrices: persona x persona and member x member, within and pooled.

Built from the tools x judges code matrix (:mod:`.judges`), so no Python table of labels is
pivoted per matrix: on 10,000 tools x 12 judges that pivoting took seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .judges import MISSING, IntArray, Judgments, judgments
from .long import Row
from .stats import cohen_matrix_codes

__all__ = ["Axis", "KappaMatrix", "kappa_matrices"]

Axis = Literal["persona", "member"]


@dataclass(frozen=True)
class KappaMatrix:
    """Pairwise Cohen's kappa of the raters on one axis, within one member or persona or pooled."""

    axis: Axis
    within: str | None  # the member (axis persona) or persona (axis member); None = pooled
    raters: list[str]
    n_items: int
    kappa: list[list[float]]

    @property
    def title(self) -> str:
        where = self.within if self.within is not None else "pooled"
        return f"{self.axis} x {self.axis} — {where}"


def _by_axis(j: Judgments, axis: Axis) -> tuple[list[str], IntArray, list[str], IntArray]:
    """The axis's names and each judge's index on it, then the other axis's."""
    if axis == "persona":
        return j.personas, j.persona_of, j.members, j.member_of
    return j.members, j.member_of, j.personas, j.persona_of


def _stacked(j: Judgments, axis: Axis) -> IntArray:
    """Items (tool, other-axis value) x raters on ``axis``: one block of tools per other value."""
    names, at, others, other_at = _by_axis(j, axis)
    blocks = np.full((len(others), j.n_tools, len(names)), MISSING, dtype=np.int64)
    for c in range(j.n_judges):
        blocks[other_at[c], :, at[c]] = j.codes[:, c]
    stacked: IntArray = blocks.reshape(len(others) * j.n_tools, len(names))
    return stacked


def kappa_matrices(
    rows: Sequence[Row], order: Mapping[str, Sequence[Any]], judged: Judgments | None = None
) -> list[KappaMatrix]:
    """Persona x persona per member and pooled; member x member per persona and pooled.

    An item is a tool (within one member or persona) or a (tool, member-or-persona) pair
    (pooled) that has a review, valid or failed. Kappa is pairwise complete, as in
    :func:`panel.analysis.stats.cohen_matrix`. ``judged`` is ``rows`` as a judges matrix
    when the caller has built it already.
    """
    j = judged if judged is not None else judgments(rows, order=order)
    k = len(j.categories)
    present: dict[str, set[tuple[str, str]]] = {"persona": set(), "member": set()}
    for r in rows:
        present["member"].add((r["tool"], r["member"]))
        present["persona"].add((r["tool"], r["persona"]))
    out: list[KappaMatrix] = []
    axes: tuple[tuple[Axis, Axis], ...] = (("persona", "member"), ("member", "persona"))
    for axis, other in axes:
        names, at, others, other_at = _by_axis(j, axis)
        if len(names) < 2:
            continue
        # With one member (or persona) its own matrix is the pooled one: no need for both.
        for o, value in enumerate(others) if len(others) > 1 else []:
            cols = sorted((c for c in range(j.n_judges) if other_at[c] == o), key=lambda c: int(at[c]))
            if len(cols) >= 2:
                items = sum(1 for _, v in present[other] if v == value)
                kappa = cohen_matrix_codes(j.codes[:, cols], k)
                raters = [names[at[c]] for c in cols]
                out.append(KappaMatrix(axis, value, raters, items, kappa.tolist()))
        pooled = cohen_matrix_codes(_stacked(j, axis), k)
        out.append(KappaMatrix(axis, None, list(names), len(present[other]), pooled.tolist()))
    return out
