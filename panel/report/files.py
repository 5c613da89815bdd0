"""Catalog re-reviews: the cost estimate before a run, its files after, and run-to-run diffs."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..run.plan import Plan, run_inputs, write_atomic
from ..store import CellKey, Store
from .aggregate import build_record

__all__ = [
    "Estimate",
    "FlippedVerdict",
    "RunDiff",
    "diff_runs",
    "estimate_cost",
    "write_review_outputs",
]


@dataclass(frozen=True)
class Estimate:
    requests: int
    expected_usd: float
    worst_usd: float
    priced: bool


def estimate_cost(plan: Plan, sample: int = 24) -> Estimate:
    """Cost of a plan before it runs, from a sample of rendered prompts.

    Expected: outputs of half the token limit; worst: every reply at the limit (the budget
    guard reserves the worst case per request, so a run never goes over).
    """
    expected = worst = 0.0
    priced = False
    per_member = plan.total // max(1, len(plan.members))
    for member in plan.members:
        if member.price is None:
            continue
        priced = priced or member.price.input > 0 or member.price.output > 0
        cells = list(itertools.islice(plan.cells_for(member.backend), sample))
        if not cells:
            continue
        chars = sum(
            sum(len(m["content"]) for m in plan.prompts.review_messages(c.persona, c.tool))
            + len(json.dumps(c.persona.review_schema))
            for c in cells
        )
        tokens_in = chars / len(cells) / 4
        max_out = plan.sampling.max_tokens
        expected += per_member * member.price.worst_case(int(tokens_in), max_out // 2)
        worst += per_member * member.price.worst_case(int(tokens_in * 1.35), max_out)
    return Estimate(plan.total, expected, worst, priced)


def write_review_outputs(store: Store, run_id: str, status: str | None = None) -> Path:
    """`reviews.jsonl` (one line per review) and `tools/<id>.json` (one record per tool).

    `status` is the run's, for files written just before the run is marked with it.
    """
    folder = store.run_dir(run_id)
    run, tools, personas = run_inputs(store, run_id)
    members = run.config.get("members", [])

    lines = (
        json.dumps(_review_line(run_id, r), ensure_ascii=False) + "\n" for r in store.iter_reviews(run_id)
    )
    write_atomic(folder / "reviews.jsonl", lines)
    for tool in tools:
        record = build_record(
            run_id,
            run.created_at,
            [tool],
            personas,
            members,
            store.reviews(run_id, tool.id),
            status=status or run.status,
            repeats=int(run.config.get("repeats", 1)),
        )
        write_atomic(folder / "tools" / f"{tool.id}.json", record.model_dump_json(indent=2) + "\n")
    return folder


def _review_line(run_id: str, r: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "tool_id": r.tool_id,
        "persona_id": r.persona_id,
        "member": r.member,
        "backend": r.backend,
        "model": r.model,
        "repeat": r.repeat,
        "valid": r.valid,
        "verdict": r.verdict,
        "verdict_note": r.verdict_note,
        "answers": (r.data or {}).get("answers"),
        "review": (r.data or {}).get("review"),
        "error": r.error,
        "asks": r.asks,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "cost_usd": round(r.cost_usd, 8),
        "latency_s": round(r.latency_s, 4),
        "fingerprint": r.fingerprint,
        "copied_from": r.copied_from,
    }


@dataclass(frozen=True)
class FlippedVerdict:
    key: CellKey
    before: str | None
    after: str | None


@dataclass(frozen=True)
class RunDiff:
    run_a: str
    run_b: str
    same: int
    flipped: list[FlippedVerdict]
    only_a: int
    only_b: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_a": self.run_a,
            "run_b": self.run_b,
            "same": self.same,
            "only_a": self.only_a,
            "only_b": self.only_b,
            "flipped": [{**f.key._asdict(), "before": f.before, "after": f.after} for f in self.flipped],
        }


def diff_runs(store: Store, run_a: str, run_b: str) -> RunDiff:
    """Verdicts that changed between two runs, cell by cell (a failed review counts as none)."""

    def verdicts(run_id: str) -> dict[CellKey, str | None]:
        rows = store.db.execute(
            "SELECT tool_id, persona_id, member, repeat, verdict FROM reviews WHERE run_id = ?",
            (run_id,),
        )
        return {CellKey(r[0], r[1], r[2], r[3]): r[4] for r in rows}

    a, b = verdicts(run_a), verdicts(run_b)
    both = a.keys() & b.keys()
    flipped = sorted((FlippedVerdict(k, a[k], b[k]) for k in both if a[k] != b[k]), key=lambda f: f.key)
    return RunDiff(
        run_a,
        run_b,
        len(both) - len(flipped),
        flipped,
        len(a.keys() - b.keys()),
        len(b.keys() - a.keys()),
    )
