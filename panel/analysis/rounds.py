"""Does debate help or herd? A run's rebuttal round set beside its first round.

Round 1 is every reviewer's first verdict (repeat 0). Round 2 is the verdict after the
rebuttal round: the round-2 verdict where the answer is valid, else the round-1 one (the
verdict the record shows). Both rounds get the same inter-rater statistics (and, with a
reference, the same accuracy and kappa) on the same resamples, and the flips are counted
per persona, per member and overall: how many moved to the verdict most other reviewers
of the tool gave in round 1 (herding), and with a reference how many moved to it or away.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..store import RebuttalRow, Store
from .accuracy import with_reference
from .intervals import Agreement, agreement, json_ready
from .judges import MISSING, judgments
from .long import LONG_COLUMNS, Row, iter_long

__all__ = ["ROUNDS_COLUMNS", "FlipRate", "RoundsReport", "has_rebuttals", "iter_rounds_long", "rounds"]

#: the long table of a run with a rebuttal round: each review once per round
ROUNDS_COLUMNS = (*LONG_COLUMNS, "round")

Cell = tuple[str, str, str]  # tool, persona, member
MatrixOf = Callable[[list[Row]], tuple[list[str], list[list[str | None]]]]
"""Long-table rows -> (raters, items x raters of verdicts), as the report's ``--by`` reads them."""


@dataclass(frozen=True)
class FlipRate:
    """How often one group's reviewers changed their verdict in the rebuttal round."""

    kind: Literal["persona", "member", "all"]
    name: str
    answered: int  # valid round-2 answers
    changed: int
    rate: float | None  # changed / answered
    to_majority: int  # flips to the verdict most other reviewers of the tool gave in round 1
    to_reference: int | None = None  # with a reference: flips to the reference verdict
    from_reference: int | None = None  # ... and flips away from it


@dataclass(frozen=True)
class RoundsReport:
    run: str
    answers: int
    valid: int
    failed: int
    round1: Agreement
    round2: Agreement
    flips: list[FlipRate]
    #: with a reference: per group (panel, persona, member) accuracy and kappa in each round
    accuracy: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["round1"] = self.round1.to_dict()
        data["round2"] = self.round2.to_dict()
        result: dict[str, Any] = json_ready(data)
        return result


def has_rebuttals(store: Store, run_id: str) -> bool:
    return any(r.repeat == 0 for r in store.rebuttals(run_id))


def _after(answers: Sequence[RebuttalRow]) -> dict[Cell, str]:
    return {
        (r.tool_id, r.persona_id, r.member): r.verdict_after
        for r in answers
        if r.valid and r.verdict_after is not None
    }


def _second(first: Sequence[Row], after: Mapping[Cell, str]) -> list[Row]:
    return [
        {**row, "verdict": after.get((row["tool"], row["persona"], row["member"]), row["verdict"])}
        for row in first
    ]


def _majority(verdicts: Sequence[str]) -> str | None:
    ranked = Counter(verdicts).most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


def _flips(
    answers: Sequence[RebuttalRow],
    first: Sequence[Row],
    order: Mapping[str, Sequence[Any]],
    truth: Mapping[str, str] | None,
) -> list[FlipRate]:
    by_tool: dict[str, list[Row]] = {}
    for row in first:
        if row["verdict"] is not None:
            by_tool.setdefault(row["tool"], []).append(row)
    valid = [r for r in answers if r.valid]

    def rate(kind: Literal["persona", "member", "all"], name: str, rows: list[RebuttalRow]) -> FlipRate:
        changed = [r for r in rows if r.changed]
        herd = 0
        for r in changed:
            others = [
                o["verdict"]
                for o in by_tool.get(r.tool_id, [])
                if (o["persona"], o["member"]) != (r.persona_id, r.member)
            ]
            herd += _majority(others) == r.verdict_after
        to_ref = from_ref = None
        if truth is not None:
            to_ref = sum(1 for r in changed if truth.get(r.tool_id) == r.verdict_after)
            from_ref = sum(1 for r in changed if truth.get(r.tool_id) == r.verdict_before)
        return FlipRate(
            kind,
            name,
            len(rows),
            len(changed),
            len(changed) / len(rows) if rows else None,
            herd,
            to_ref,
            from_ref,
        )

    out = [
        rate("persona", p, [r for r in valid if r.persona_id == p])
        for p in _ranked({r.persona_id for r in answers}, order.get("persona", ()))
    ]
    out += [
        rate("member", m, [r for r in valid if r.member == m])
        for m in _ranked({r.member for r in answers}, order.get("member", ()))
    ]
    out.append(rate("all", "all reviewers", valid))
    return out


def _ranked(values: set[str], known: Sequence[Any]) -> list[str]:
    position = {v: k for k, v in reversed(list(enumerate(known)))}
    return sorted(values, key=lambda v: (position.get(v, len(known)), v))


def rounds(
    store: Store,
    run: str,
    first: Sequence[Row],
    matrix_of: MatrixOf,
    round1: Agreement,
    *,
    order: Mapping[str, Sequence[Any]],
    categories: Sequence[str],
    reference: Any = None,
    n_resamples: int = 2000,
    seed: int = 0,
    positive: str = "ship",
) -> RoundsReport | None:
    """Round 1 (``first``: repeat 0 of ``run``, whose statistics ``round1`` already holds)
    beside round 2; None for a run without a rebuttal round. ``reference`` is a loaded
    :class:`panel.analysis.reference.Reference` over the run's tools, or None."""
    answers = [r for r in store.rebuttals(run) if r.repeat == 0]
    if not answers:
        return None
    second = _second(first, _after(answers))
    raters, ratings = matrix_of(second)
    round2 = agreement(ratings, raters, n_resamples, seed, positive=positive)
    truth: dict[str, str] | None = None
    accuracy: list[dict[str, Any]] = []
    if reference is not None:
        j1 = judgments(first, categories=categories, order=order)
        j2 = judgments(second, categories=categories, order=order)
        truth = {t: j1.categories[k] for t, k in zip(j1.tools, reference.labels, strict=True) if k != MISSING}
        one = with_reference(j1, reference.labels, n_resamples, seed)
        two = with_reference(j2, reference.labels, n_resamples, seed)
        accuracy = [
            {"kind": a.kind, "name": a.name, "n_tools": a.n_tools, "round1": asdict(a), "round2": asdict(b)}
            for a, b in zip(one, two, strict=True)
            if a.kind != "judge"
        ]
    valid = sum(r.valid for r in answers)
    notes = [
        "Round 2 is each reviewer's verdict after the rebuttal round: its round-2 verdict where the "
        "answer is valid, else its round-1 verdict (as the record shows).",
        "A flip to the majority moved to the verdict most other reviewers of the tool gave in round 1 "
        "(no majority on a tie).",
    ]
    return RoundsReport(
        run,
        len(answers),
        valid,
        len(answers) - valid,
        round1,
        round2,
        _flips(answers, first, order, truth),
        accuracy,
        notes,
    )


def iter_rounds_long(store: Store, run_ids: Sequence[str]) -> Iterator[Row]:
    """The long table with a `round` column: every review in round 1, and each repeat-0
    review of a run with a rebuttal round again in round 2, with its verdict after it."""
    for row in iter_long(store, run_ids):
        yield {**row, "round": 1}
    for run_id in run_ids:
        after = _after([r for r in store.rebuttals(run_id) if r.repeat == 0])
        if not after:
            continue
        for row in iter_long(store, [run_id]):
            if row["repeat"] == 0:
                cell = (row["tool"], row["persona"], row["member"])
                yield {**row, "verdict": after.get(cell, row["verdict"]), "round": 2}
