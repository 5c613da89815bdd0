"""Which verdicts flipped between two runs, cell by cell and tool by tool, and why
(`panel.report.why`: what changed among the inputs of each)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..errors import UserError
from ..store import CellKey, RunInputs, Store
from .pooled import pooled_cells
from .why import Between, Reason, flip_summary, pair_members

__all__ = ["FlippedVerdict", "RunDiff", "ToolFlip", "diff_inputs", "diff_runs", "paired_cells"]


@dataclass(frozen=True)
class FlippedVerdict:
    key: CellKey
    before: str | None
    after: str | None
    #: what changed among the cell's inputs, first the reason it counts under
    reasons: tuple[Reason, ...] = ()
    #: the member in run b when another replaced the key's member of run a
    member_after: str | None = None


@dataclass(frozen=True)
class ToolFlip:
    """A tool whose models' pooled verdict (`panel.report.pooled`: ship or not) flipped."""

    tool_id: str
    before: str | None
    after: str | None
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True)
class RunDiff:
    run_a: str
    run_b: str
    same: int
    flipped: list[FlippedVerdict]
    only_a: int
    only_b: int
    tools: list[ToolFlip] = field(default_factory=list)
    #: run a's member -> run b's member, where another member took its place
    replaced: dict[str, str] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        return flip_summary([f.reasons for f in self.flipped])

    @property
    def tool_summary(self) -> str:
        return flip_summary([t.reasons for t in self.tools], "pooled tool verdicts")

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_a": self.run_a,
            "run_b": self.run_b,
            "same": self.same,
            "only_a": self.only_a,
            "only_b": self.only_b,
            "flipped": [
                {
                    **f.key._asdict(),
                    "before": f.before,
                    "after": f.after,
                    "member_after": f.member_after or f.key.member,
                    "reason": f.reasons[0].code if f.reasons else None,
                    "reasons": [r.as_dict() for r in f.reasons],
                }
                for f in self.flipped
            ],
            "replaced_members": self.replaced,
            "summary": self.summary,
            "tools_flipped": [
                {
                    "tool_id": t.tool_id,
                    "before": t.before,
                    "after": t.after,
                    "reason": t.reasons[0].code if t.reasons else None,
                    "reasons": [r.as_dict() for r in t.reasons],
                }
                for t in self.tools
            ],
            "tools_summary": self.tool_summary,
        }


def _inputs(store: Store, run_id: str) -> RunInputs:
    found = store.run_inputs_of(run_id)
    if found is None:
        raise UserError(f"no run '{run_id}' in this store")
    return found


def diff_runs(store: Store, run_a: str, run_b: str) -> RunDiff:
    """Verdicts that changed between two runs, cell by cell (a failed review counts as none),
    each with what changed among its inputs. A member that only one run has is compared with
    the member that took its place (`why.pair_members`)."""
    a, b = _inputs(store, run_a), _inputs(store, run_b)
    return diff_inputs(a, b)


def paired_cells(a: RunInputs, b: RunInputs, members: dict[str, str]) -> list[tuple[CellKey, CellKey]]:
    """Each cell of run a with its counterpart in run b (`members`: a's member -> b's)."""
    pairs: list[tuple[CellKey, CellKey]] = []
    for key in a.cells:
        other = key._replace(member=members.get(key.member, key.member))
        if other in b.cells:
            pairs.append((key, other))
    return pairs


def diff_inputs(a: RunInputs, b: RunInputs) -> RunDiff:
    members = pair_members(a, b)
    between = Between(a, b)
    pairs = paired_cells(a, b, members)
    paired_b = {kb for _, kb in pairs}
    flipped = sorted(
        (
            FlippedVerdict(
                ka,
                a.cells[ka].verdict,
                b.cells[kb].verdict,
                between.cell(ka, kb),
                kb.member if kb.member != ka.member else None,
            )
            for ka, kb in pairs
            if a.cells[ka].verdict != b.cells[kb].verdict
        ),
        key=lambda f: f.key,
    )
    only_a, only_b = len(a.cells) - len(pairs), len(b.cells) - len(paired_b)
    return RunDiff(
        a.run_id,
        b.run_id,
        len(pairs) - len(flipped),
        flipped,
        only_a,
        only_b,
        _tool_flips(between, pairs),
        {m: n for m, n in members.items() if m != n},
    )


def _tool_flips(between: Between, pairs: list[tuple[CellKey, CellKey]]) -> list[ToolFlip]:
    a, b = between.a, between.b
    by_tool: dict[str, list[tuple[CellKey, CellKey]]] = defaultdict(list)
    for ka, kb in pairs:
        by_tool[ka.tool_id].append((ka, kb))
    cells_a, cells_b = _by_tool(a), _by_tool(b)
    found = []
    for tool_id in sorted(by_tool):
        before = pooled_cells(a.cells, cells_a[tool_id])
        after = pooled_cells(b.cells, cells_b[tool_id])
        if before != after:
            alone = len(cells_a[tool_id]) + len(cells_b[tool_id]) - 2 * len(by_tool[tool_id])
            found.append(ToolFlip(tool_id, before, after, between.pool(by_tool[tool_id], alone)))
    return found


def _by_tool(run: RunInputs) -> dict[str, list[CellKey]]:
    found: dict[str, list[CellKey]] = defaultdict(list)
    for key in run.cells:
        found[key.tool_id].append(key)
    return found
