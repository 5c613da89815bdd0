"""Self-preference: does a member favour the tools its own maker made?

For a member with a maker, on each tool both it and the rest of the panel reviewed, the
*gap* is its ship rate on the tool (ship among its valid verdicts, every persona, repeat 0)
minus the rest of the panel's, where the rest leaves out every member of the tool's own maker
(so one member's self-preference does not show as another's). The member's self-preference
is the mean gap on its maker's tools minus the mean gap on the other tools: a difference in
differences, so a tool that is simply good (which every member ships) adds nothing, and nor
does a member that ships more of everything. The interval is a percentile bootstrap over
tools (`panel.analysis.bootstrap`). A member with fewer than :data:`MIN_TOOLS` tools of its
maker, or of others, is not measured: its estimate is `nan` and it says how few.
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

__all__ = [
    "MIN_TOOLS",
    "SelfPreference",
    "SelfPreferences",
    "run_self_preference",
    "self_preference",
    "to_dicts",
]

#: the fewest tools of its maker, and of others, a member's self-preference is measured on
MIN_TOOLS = 10


@dataclass(frozen=True)
class SelfPreference:
    """One member's self-preference, in the share of ship verdicts (0.15: 15 more ship verdicts in 100)."""

    member: str
    maker: str
    estimate: Estimate
    #: tools with a gap: of its maker's, and of others'
    own_tools: int
    other_tools: int

    @property
    def tools(self) -> int:
        """How many tools the estimate rests on."""
        return self.own_tools + self.other_tools

    @property
    def too_few(self) -> str | None:
        """`too few: 1 own tool (5 needed)` when a side has fewer than MIN_TOOLS, else None."""
        short = [
            f"{n} {kind} tool{'' if n == 1 else 's'}"
            for n, kind in ((self.own_tools, "own"), (self.other_tools, "other"))
            if n < MIN_TOOLS
        ]
        if not short:
            return None
        return f"too few: {' and '.join(short)} ({MIN_TOOLS}{' each' if len(short) == 2 else ''} needed)"


class SelfPreferences(list[SelfPreference]):
    """The members' self-preference, with `notes`: one line for each thing the runs did not
    settle (a tool, or a member, two runs give different makers)."""

    def __init__(self, found: Iterable[SelfPreference] = (), notes: Iterable[str] = ()) -> None:
        super().__init__(found)
        self.notes = list(notes)


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
    (`tool`, `member`, `repeat`, `verdict`, `valid`). A member with fewer than MIN_TOOLS
    tools of its maker, or of another, has a `nan` estimate (`too_few` says how few)."""
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
        n_own = int(is_own.sum())
        if min(n_own, len(gap) - n_own) < MIN_TOOLS:  # an interval from a handful reads as a finding
            none = Estimate(math.nan, math.nan, math.nan, 0)
            found.append(SelfPreference(member, maker, none, n_own, len(gap) - n_own))
            continue
        point = float(_did(np.ones((1, len(gap))), gap, is_own)[0])
        (estimate,) = bootstrap(
            {"did": (point, partial(_did, gap=gap, own=is_own))},
            len(gap),
            n_resamples=n_resamples,
            seed=seed,
            level=level,
        ).values()
        found.append(SelfPreference(member, maker, estimate, n_own, len(gap) - n_own))
    return found


def _did(weights: FloatArray, gap: FloatArray, own: FloatArray) -> FloatArray:
    """Mean gap on own tools minus mean gap on the others, per row of tool multiplicities."""
    with np.errstate(invalid="ignore", divide="ignore"):
        on_own = (weights * own) @ gap / (weights @ own)
        on_other = (weights * (1.0 - own)) @ gap / (weights @ (1.0 - own))
    result: FloatArray = on_own - on_other
    return result


def run_self_preference(
    store: Store,
    run_ids: Sequence[str],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    long_rows: Iterable[Mapping[str, Any]] | None = None,
) -> SelfPreferences:
    """Self-preference over the reviews of `run_ids`, with the makers their runs recorded
    (members' from the run, tools' from the catalog as it was); empty when no member of them
    has a maker, or no tool has one. A maker counts where a run knows it, whatever the runs'
    order; a tool two runs give different makers is left out, a member so is not measured,
    each said in one of the result's `notes`. `long_rows` are the runs' long table when the
    caller has read it (`iter_long`)."""
    members: dict[str, dict[str, str]] = {}  # member -> maker -> the first run saying so
    tools: dict[str, dict[str, str]] = {}
    for run_id in run_ids:
        run = store.get_run(run_id)
        recorded = run.config.get("makers") if run is not None else None
        if isinstance(recorded, dict):
            for member, maker in recorded.items():
                _known(members, str(member), maker, run_id)
        for tool in store.run_tools(run_id):
            _known(tools, str(tool["id"]), tool.get("maker"), run_id)
    notes = [_differ("tool", t, said, "left out") for t, said in tools.items() if len(said) > 1]
    notes += [_differ("member", m, said, "not measured") for m, said in members.items() if len(said) > 1]
    member_makers = {m: _only(said) for m, said in members.items()}
    tool_makers = {t: _only(said) for t, said in tools.items()}
    if not any(member_makers.values()) or not any(tool_makers.values()):
        return SelfPreferences(notes=notes)
    differ = {t for t, said in tools.items() if len(said) > 1}
    long = iter_long(store, run_ids) if long_rows is None else long_rows
    rows = (r for r in long if str(r["tool"]) not in differ)
    found = self_preference(rows, tool_makers, member_makers, n_resamples=n_resamples, seed=seed)
    return SelfPreferences(found, notes)


def _known(makers: dict[str, dict[str, str]], key: str, maker: object, run_id: str) -> None:
    """Note `maker` for `key` when a run knows it (one entry per maker, as first written)."""
    said = makers.setdefault(key, {})
    if isinstance(maker, str) and maker.strip() and not any(same_maker(maker, m) for m in said):
        said[maker] = run_id


def _only(said: Mapping[str, str]) -> str | None:
    """The one maker the runs agree on, else None (unknown, or they differ)."""
    return next(iter(said)) if len(said) == 1 else None


def _differ(kind: str, key: str, said: Mapping[str, str], outcome: str) -> str:
    which = ", ".join(f"{maker!r} in run {run_id}" for maker, run_id in said.items())
    return f"self-preference: {kind} {key!r} has different makers ({which}): {outcome}"


def to_dicts(found: Sequence[SelfPreference]) -> list[dict[str, Any]]:
    """JSON-ready, `nan` as None (also the estimate of a member with too few tools)."""

    def number(x: float) -> float | None:
        return None if math.isnan(x) else x

    return [
        {
            "member": f.member, "maker": f.maker, "estimate": number(f.estimate.point),
            "low": number(f.estimate.low), "high": number(f.estimate.high),
            "resamples_used": f.estimate.resamples_used,
            "own_tools": f.own_tools, "other_tools": f.other_tools, "tools": f.tools,
            "too_few": f.too_few, "min_tools": MIN_TOOLS,
            "method": "difference in differences of ship rates against the disinterested rest, "
            "percentile bootstrap over tools",
        }
        for f in found
    ]  # fmt: skip
