"""The panel as numbers: tools x judges of integer verdict codes, with each judge's persona and member.

A **judge** is one (persona, member) pair. :class:`Judgments` is what every analysis of the
reference, the pooled verdicts, the latent-truth model and the variance split reads: one
integer matrix built once, so nothing re-encodes Python labels per resample.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["MISSING", "Judgments", "judgments"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
MISSING = -1
SEP = " / "


@dataclass(frozen=True, eq=False)
class Judgments:
    """Verdicts of one run and repeat as codes.

    ``codes[i, j]`` is the index in ``categories`` of judge ``j``'s verdict on tool ``i``,
    or :data:`MISSING` when that review failed or is absent. ``cost[i, j]`` is that
    review's stored spend in USD (0 when absent). Judge ``j`` is persona
    ``personas[persona_of[j]]`` on member ``members[member_of[j]]``.
    """

    tools: list[str]
    personas: list[str]
    members: list[str]
    categories: list[str]
    persona_of: IntArray
    member_of: IntArray
    codes: IntArray
    cost: FloatArray

    @property
    def judges(self) -> list[str]:
        """Each judge as ``persona / member``."""
        return [
            f"{self.personas[p]}{SEP}{self.members[m]}"
            for p, m in zip(self.persona_of, self.member_of, strict=True)
        ]

    @property
    def n_tools(self) -> int:
        return int(self.codes.shape[0])

    @property
    def n_judges(self) -> int:
        return int(self.codes.shape[1])

    def code(self, verdict: str) -> int | None:
        """The code of ``verdict``, or None if no judge used it and it is not a category."""
        return self.categories.index(verdict) if verdict in self.categories else None

    def subset(self, columns: Sequence[int]) -> Judgments:
        """The same tools with only the judges at ``columns``."""
        cols = np.asarray(columns, dtype=np.int64)
        return Judgments(
            self.tools, self.personas, self.members, self.categories,
            self.persona_of[cols], self.member_of[cols], self.codes[:, cols], self.cost[:, cols],
        )  # fmt: skip


def _ranked(values: Iterable[str], order: Sequence[str]) -> list[str]:
    # Positions in a dict: a catalog's order has thousands of tools, and a list's index()
    # per tool would make this quadratic.
    position: dict[str, int] = {}
    for k, value in enumerate(order):
        position.setdefault(value, k)
    return sorted(set(values), key=lambda v: (position.get(v, len(order)), v))


def judgments(
    rows: Iterable[Mapping[str, Any]],
    *,
    categories: Sequence[str] = (),
    order: Mapping[str, Sequence[str]] | None = None,
) -> Judgments:
    """Tools x judges from long-table rows of one run and one repeat (see ``iter_long``).

    ``categories`` are the verdicts the personas allow, in their order; any other verdict
    a row holds is added after them. ``order`` gives the run's own order of tools,
    personas and members; unknown values go after, alphabetically. The first row of a
    cell wins, as in the rest of the analysis.
    """
    order = order or {}
    cells: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for row in rows:
        cells.setdefault((row["tool"], row["persona"], row["member"]), row)
    tools = _ranked((t for t, _, _ in cells), order.get("tool", ()))
    personas = _ranked((p for _, p, _ in cells), order.get("persona", ()))
    members = _ranked((m for _, _, m in cells), order.get("member", ()))
    cats = list(dict.fromkeys(categories))
    cats += sorted({str(r["verdict"]) for r in cells.values() if r["verdict"] is not None} - set(cats))
    pairs = sorted({(personas.index(p), members.index(m)) for _, p, m in cells})
    tool_at = {t: i for i, t in enumerate(tools)}
    judge_at = {pair: j for j, pair in enumerate(pairs)}
    cat_at = {c: k for k, c in enumerate(cats)}
    codes = np.full((len(tools), len(pairs)), MISSING, dtype=np.int64)
    cost = np.zeros((len(tools), len(pairs)), dtype=np.float64)
    for (t, p, m), row in cells.items():
        i, j = tool_at[t], judge_at[(personas.index(p), members.index(m))]
        if row["verdict"] is not None:
            codes[i, j] = cat_at[str(row["verdict"])]
        cost[i, j] = float(row.get("cost_usd") or 0.0)
    return Judgments(
        tools=tools,
        personas=personas,
        members=members,
        categories=cats,
        persona_of=np.array([p for p, _ in pairs], dtype=np.int64),
        member_of=np.array([m for _, m in pairs], dtype=np.int64),
        codes=codes,
        cost=cost,
    )
