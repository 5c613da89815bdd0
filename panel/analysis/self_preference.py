"""Self-preference: does a member favour the tools its own maker made?

For a member with a maker, on each tool both it and the rest of the panel reviewed, the
*gap* is its ship rate on the tool (ship among its valid verdicts, every persona, repeat 0)
minus the rest of the panel's, where the rest leaves out every member of the tool's own maker
(so one member's self-preference does not show as another's). The member's self-preference
is the mean gap on its maker's tools minus the mean gap on the other tools: a difference in
differences, so a tool that is simply good (which every member ships) adds nothing, and nor
does a member that ships more of everything. The interval is a percentile bootstrap over
tools (`panel.analysis.bootstrap`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from ..catalog import same_maker
from ..store import Store
from .bootstrap import Estimate, FloatArray, bootstrap
from .long import iter_long

__all__ = ["SelfPreference", "run_self_preference", "self_preference", "to_dicts"]


@dataclass(frozen=True)
class SelfPreference:
    """One member's self-preference, in ship-rate points (0.15: 15 points more ship)."""

    member: str
    maker: str
    estimate: Estimate
    #: tools with a gap: of its maker's, and of others'
    own_tools: int
    other_tools: int


def self_preference(
    rows: Iterable[Mapping[str, Any]],
    tool_makers: Mapping[str, str | None],
    member_makers: Mapping[str, str | None],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> list[SelfPreference]:
    """Each member with a maker, in the order of `member_makers`; `rows` are long-table rows
    (`tool`, `member`, `repeat`, `verdict`, `valid`). A member with no tool of its maker, or
    none of another, has a `nan` estimate."""
    ships: dict[str, dict[str, list[int]]] = {}  # tool -> member -> [ship, valid]
    for row in rows:
        if row.get("repeat", 0) != 0 or not row.get("valid"):
            continue
        count = ships.setdefault(str(row["tool"]), {}).setdefault(str(row["member"]), [0, 0])
        count[0] += row.get("verdict") == "ship"
        count[1] += 1
    tools = sorted(ships)
    found = []
    for member, maker in member_makers.items():
        if maker is None:
            continue
        gaps, own = [], []
        for tool in tools:
            mine = ships[tool].get(member)
            made_by = tool_makers.get(tool)
            rest = [
                c
                for m, c in ships[tool].items()
                if m != member and not same_maker(member_makers.get(m), made_by)
            ]
            rest_valid = sum(c[1] for c in rest)
            if mine is None or not mine[1] or not rest_valid:
                continue
            gaps.append(mine[0] / mine[1] - sum(c[0] for c in rest) / rest_valid)
            own.append(same_maker(maker, made_by))
        gap = np.asarray(gaps, dtype=np.float64)
        is_own = np.asarray(own, dtype=np.float64)
        point = float(_did(np.ones((1, len(gap))), gap, is_own)[0]) if len(gap) else math.nan
        (estimate,) = bootstrap(
            {"did": (point, partial(_did, gap=gap, own=is_own))},
            len(gap),
            n_resamples=n_resamples,
            seed=seed,
            level=level,
        ).values()
        found.append(SelfPreference(member, maker, estimate, int(is_own.sum()), int(len(gap) - is_own.sum())))
    return found


def _did(weights: FloatArray, gap: FloatArray, own: FloatArray) -> FloatArray:
    """Mean gap on own tools minus mean gap on the others, per row of tool multiplicities."""
    with np.errstate(invalid="ignore", divide="ignore"):
        on_own = (weights * own) @ gap / (weights @ own)
        on_other = (weights * (1.0 - own)) @ gap / (weights @ (1.0 - own))
    result: FloatArray = on_own - on_other
    return result


def run_self_preference(
    store: Store, run_ids: Sequence[str], *, n_resamples: int = 2000, seed: int = 0
) -> list[SelfPreference]:
    """Self-preference over the reviews of `run_ids`, with the makers their runs recorded
    (members' from the run, tools' from the catalog as it was); empty when no member of them
    has a maker, or no tool has one."""
    member_makers: dict[str, str | None] = {}
    tool_makers: dict[str, str | None] = {}
    for run_id in run_ids:
        run = store.get_run(run_id)
        recorded = run.config.get("makers") if run is not None else None
        if isinstance(recorded, dict):
            member_makers.update({str(m): (str(v) if v else None) for m, v in recorded.items()})
        for tool in store.run_tools(run_id):
            tool_makers[str(tool["id"])] = tool.get("maker")
    if not any(member_makers.values()) or not any(tool_makers.values()):
        return []
    rows = iter_long(store, run_ids)
    return self_preference(rows, tool_makers, member_makers, n_resamples=n_resamples, seed=seed)


def to_dicts(found: Sequence[SelfPreference]) -> list[dict[str, Any]]:
    """JSON-ready, `nan` as None."""

    def number(x: float) -> float | None:
        return None if math.isnan(x) else x

    return [
        {
            "member": f.member, "maker": f.maker, "estimate": number(f.estimate.point),
            "low": number(f.estimate.low), "high": number(f.estimate.high),
            "resamples_used": f.estimate.resamples_used,
            "own_tools": f.own_tools, "other_tools": f.other_tools,
            "method": "difference in differences of ship rates against the disinterested rest, "
            "percentile bootstrap over tools",
        }
        for f in found
    ]  # fmt: skip
