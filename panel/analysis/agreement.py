"""Agreement analytics over stored runs: who agrees with whom, and how well each agrees with itself.

A **rater** is a (persona, member) pair, an **item** is a tool and a **rating** is the
verdict, missing (``None``) when the review failed. Verdicts are nominal labels: whatever
categories the personas define. ``--by`` picks the raters of the headline statistics:

* ``rater``: raters are (persona, member) pairs, items are tools;
* ``persona``: raters are personas, items are (tool, member) pairs, pooled over members;
* ``backend``: raters are members, items are (tool, persona) pairs, pooled over personas.

Inter-rater statistics read repeat 0 of the first run given, so every rater contributes
one verdict per item. Later runs and repeats feed only self-consistency (test-retest
Cohen's kappa of one rater with itself). All arithmetic is :mod:`panel.analysis.stats`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from itertools import combinations
from typing import Any, Literal, TypeVar

from ..errors import UserError
from ..store import Store
from .cost import Spend, spend
from .editors import EDITORS, editors_reference
from .intervals import Agreement, agreement, json_ready
from .judges import judgments
from .long import LONG_COLUMNS, PhaseProgress, Row, iter_long, long_table, reading
from .pairwise import KappaMatrix, kappa_matrices
from .reference import Reference
from .research import Research, categories_of, research
from .research import _load_reference as load_reference
from .rounds import RoundsReport, has_rebuttals, rounds
from .sample import Sample, flag_collapsed, sample
from .stats import cohen_matrix, percent_agreement

__all__ = [
    "LONG_COLUMNS", "AgreementReport", "By", "KappaMatrix", "Matrix", "PhaseProgress", "SelfConsistency",
    "SelfPair",
    "analyze", "check_runs", "iter_long", "long_table", "ratings_matrix",
]  # fmt: skip

By = Literal["persona", "backend", "rater"]
# by -> (fields naming an item, fields naming a rater)
_AXES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "rater": (("tool",), ("persona", "member")),
    "persona": (("tool", "member"), ("persona",)),
    "backend": (("tool", "persona"), ("member",)),
}
_BY_NOTES = {
    "rater": "Raters are (persona, member) pairs; items are tools.",
    "persona": "Raters are personas; items are (tool, member) pairs, pooled over members.",
    "backend": "Raters are members; items are (tool, persona) pairs, pooled over personas.",
}
SEP = " / "
CEILING_NOTE = (
    "Self-consistency is the ceiling for agreement between raters: two raters cannot be "
    "expected to agree with each other more than each agrees with itself."
)

# What panel.analysis.stats returns for a rater with one verdict throughout (pinned by a test).
CONSTANT_RATER_NOTE = (
    "A rater who gives one verdict throughout has Cohen's kappa 0 with every other rater "
    "(its agreement is all chance), null only with itself or with a rater who gives that same "
    "verdict throughout. Fleiss' kappa and Krippendorff's alpha stay defined: they are null only "
    "when the ratings they use (Fleiss: items every rater rated; alpha: items with two ratings) "
    "are all one verdict, or there are none."
)

T = TypeVar("T")


@dataclass(frozen=True)
class Matrix:
    """Items x raters of verdicts (``None`` = missing), with their labels."""

    items: list[str]
    raters: list[str]
    ratings: list[list[str | None]]


def _pivot(
    rows: Iterable[Row],
    item_fields: Sequence[str],
    rater_fields: Sequence[str],
    order: Mapping[str, Sequence[Any]] | None = None,
) -> Matrix:
    order = order or {}
    # Positions looked up in a dict: a catalog's order has thousands of tools.
    position = {f: _positions(order.get(f, ())) for f in (*item_fields, *rater_fields)}
    unknown = {f: len(order.get(f, ())) for f in position}

    def sort_key(key: tuple[Any, ...], fields: Sequence[str]) -> tuple[tuple[int, str], ...]:
        return tuple((position[f].get(v, unknown[f]), str(v)) for v, f in zip(key, fields, strict=True))

    cells: dict[tuple[tuple[Any, ...], tuple[Any, ...]], str | None] = {}
    for row in rows:
        cell = (tuple(row[f] for f in item_fields), tuple(row[f] for f in rater_fields))
        cells.setdefault(cell, row["verdict"])
    items = sorted({i for i, _ in cells}, key=lambda k: sort_key(k, item_fields))
    raters = sorted({r for _, r in cells}, key=lambda k: sort_key(k, rater_fields))
    return Matrix(
        items=[SEP.join(map(str, i)) for i in items],
        raters=[SEP.join(map(str, r)) for r in raters],
        ratings=[[cells.get((i, r)) for r in raters] for i in items],
    )


def ratings_matrix(
    rows: Iterable[Row],
    by: By,
    *,
    run: str | None = None,
    repeat: int = 0,
    order: Mapping[str, Sequence[Any]] | None = None,
) -> Matrix:
    """Items x raters for ``by`` (see the module docstring), from one run and one repeat.

    ``run`` defaults to the run of the first row: inter-rater statistics read repeat 0 of
    the first run given. A cell with no review at all is missing, like a failed one.
    """
    if by not in _AXES:
        raise ValueError(f"unknown by {by!r}: use persona, backend or rater")
    rows = list(rows)
    if run is None and rows:
        run = rows[0]["run"]
    chosen = [r for r in rows if r["run"] == run and r["repeat"] == repeat]
    return _pivot(chosen, *_AXES[by], order)


@dataclass(frozen=True)
class SelfPair:
    """One test-retest comparison: the same rater in two repeats (``run#k``) or two runs."""

    a: str
    b: str
    kappa: float
    agreement: float
    n_items: int


@dataclass(frozen=True)
class SelfConsistency:
    """A rater's kappa with itself: mean over repeat pairs within runs, and over run pairs."""

    rater: str
    persona: str
    member: str
    within_run: float | None
    within_run_agreement: float | None
    across_runs: float | None
    across_runs_agreement: float | None
    pairs: list[SelfPair]


@dataclass(frozen=True)
class AgreementReport:
    runs: list[str]
    by: str
    basis: dict[str, Any]  # the run and repeat the inter-rater statistics read
    items: list[str]
    missing: int  # missing ratings in the basis matrix (failed or absent reviews)
    stats: Agreement
    cohen: list[KappaMatrix]
    self_consistency: list[SelfConsistency]
    notes: list[str] = field(default_factory=list)
    research: Research | None = None  # the reference, pooling, latent model and variance split
    rounds: RoundsReport | None = None  # a run with a rebuttal round: round 1 beside round 2
    cost: Spend | None = None  # what the reviews analysed cost, and which runs paid
    sample: Sample | None = None  # set when the first run has too few tools to read

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, ``nan`` as ``None`` so strict JSON parsers accept it; an interval
        whose ends are equal carries a ``note`` saying it is not meaningful."""
        data = asdict(self)
        data["stats"] = self.stats.to_dict()
        data["research"] = self.research.to_dict() if self.research is not None else None
        data["rounds"] = self.rounds.to_dict() if self.rounds is not None else None
        for matrix, out in zip(self.cohen, data["cohen"], strict=True):
            out["title"] = matrix.title
        result: dict[str, Any] = flag_collapsed(json_ready(data))
        return result


def _rank(value: Any, known: Sequence[Any]) -> tuple[int, str]:
    # Known values keep the run's own order (catalog, persona `order`, members as
    # configured); anything else goes after them, alphabetically.
    return (list(known).index(value) if value in known else len(known), str(value))


def _positions(known: Sequence[Any]) -> dict[Any, int]:
    """Each known value's first position, as :func:`_rank` counts it."""
    found: dict[Any, int] = {}
    for k, value in enumerate(known):
        found.setdefault(value, k)
    return found


def _mean(values: Iterable[float]) -> float | None:
    defined = [v for v in values if not math.isnan(v)]
    return sum(defined) / len(defined) if defined else None


def _pairs(matrix: Matrix) -> list[SelfPair]:
    """Every pair of columns, each column being the same rater on another occasion."""
    _, kappa = cohen_matrix(matrix.ratings, matrix.raters)
    out = []
    for i, j in combinations(range(len(matrix.raters)), 2):
        two = [[row[i], row[j]] for row in matrix.ratings]
        both = sum(1 for a, b in two if a is not None and b is not None)
        out.append(
            SelfPair(matrix.raters[i], matrix.raters[j], float(kappa[i, j]), percent_agreement(two), both)
        )
    return out


def _self_consistency(
    rows: list[Row], run_ids: Sequence[str], order: Mapping[str, Sequence[Any]]
) -> list[SelfConsistency]:
    by_rater: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        by_rater.setdefault((row["persona"], row["member"]), []).append(row)
    out = []
    ranked = sorted(by_rater, key=lambda k: (_rank(k[0], order["persona"]), _rank(k[1], order["member"])))
    for persona, member in ranked:
        mine = by_rater[(persona, member)]
        within: list[SelfPair] = []
        # A rater seen on one occasion only has no pair to compare: skip the pivot (most runs).
        for run_id in run_ids:
            if len({r["repeat"] for r in mine if r["run"] == run_id}) < 2:
                continue
            repeats = [{**r, "occasion": f"{run_id}#{r['repeat']}"} for r in mine if r["run"] == run_id]
            numbered = [f"{run_id}#{k}" for k in sorted({r["repeat"] for r in mine})]
            within += _pairs(_pivot(repeats, ("tool",), ("occasion",), {"occasion": numbered}))
        across: list[SelfPair] = []
        if len({r["run"] for r in mine if r["repeat"] == 0}) >= 2:
            firsts = [{**r, "occasion": r["run"]} for r in mine if r["repeat"] == 0]
            across = _pairs(_pivot(firsts, ("tool",), ("occasion",), {"occasion": run_ids}))
        out.append(
            SelfConsistency(
                rater=f"{persona}{SEP}{member}",
                persona=persona,
                member=member,
                within_run=_mean(p.kappa for p in within),
                within_run_agreement=_mean(p.agreement for p in within),
                across_runs=_mean(p.kappa for p in across),
                across_runs_agreement=_mean(p.agreement for p in across),
                pairs=within + across,
            )
        )
    return out


def _order(store: Store, run_ids: Sequence[str]) -> dict[str, list[Any]]:
    """The runs' own order of tools, personas and members, first run first."""
    order: dict[str, list[Any]] = {"tool": [], "persona": [], "member": [], "run": list(run_ids)}
    for run_id in run_ids:
        run = store.get_run(run_id)
        found = {
            "tool": [t.get("id") for t in store.run_tools(run_id)],
            "persona": [p.get("id") for p in store.run_personas(run_id)],
            "member": list(run.config.get("members", [])) if run else [],
        }
        for key, values in found.items():
            order[key] += [v for v in values if v not in order[key]]
    return order


def _drop_silent(m: Matrix) -> tuple[Matrix, list[str]]:
    """Leave out raters whose every review failed: they would leave Fleiss no complete item."""
    keep = [j for j in range(len(m.raters)) if any(row[j] is not None for row in m.ratings)]
    silent = [name for j, name in enumerate(m.raters) if j not in keep]
    kept = Matrix(m.items, [m.raters[j] for j in keep], [[row[j] for j in keep] for row in m.ratings])
    return kept, silent


def _silent(phase: str, done: int, total: int) -> None:
    pass


def _phase(tell: PhaseProgress, phase: str, work: Callable[[], T]) -> T:
    tell(phase, 0, 1)
    result = work()
    tell(phase, 1, 1)
    return result


def check_runs(store: Store, run_ids: Sequence[str]) -> None:
    """Raise a UserError naming the first run id that is not in the store, or a repeated one."""
    if not run_ids:
        raise UserError("give at least one run id")
    for run_id in run_ids:
        if store.get_run(run_id) is None:
            raise UserError(f"no run '{run_id}' in {store.path}")
    if len(set(run_ids)) != len(run_ids):
        raise UserError("a run id is given twice: give each run once")


def analyze(
    store: Store,
    run_ids: Sequence[str],
    by: By = "rater",
    n_resamples: int = 2000,
    seed: int = 0,
    *,
    positive: str = "ship",
    progress: PhaseProgress | None = None,
    reference: str | None = None,
    min_votes: int = 5,
    threshold: float = 0.5,
) -> AgreementReport:
    """Agreement of the first run's raters (repeat 0) and every rater's self-consistency.

    Intervals are 95% percentile bootstraps over items, ``n_resamples`` draws seeded with
    ``seed``. ``positive`` is the verdict that counts as a yes for ship rates and
    effective votes. ``progress`` is told ``(phase, done, total)`` as the work goes.
    ``reference`` (a labels CSV, ``"community"`` or ``"editors"``), ``min_votes`` and ``threshold`` go to
    :func:`panel.analysis.research.research`, whose figures the report carries too.
    """
    check_runs(store, run_ids)
    tell = progress or _silent
    rows = list(reading(store, run_ids, tell))
    basis = run_ids[0]
    if not any(r["run"] == basis and r["repeat"] == 0 for r in rows):
        raise UserError(f"run '{basis}' has no reviews")
    order = _order(store, run_ids)
    matrix, silent = _drop_silent(ratings_matrix(rows, by, run=basis, order=order))
    first = [r for r in rows if r["run"] == basis and r["repeat"] == 0]
    personas = store.run_personas(basis)
    # One judges matrix serves the researcher's sections and the pairwise kappas.
    judged = judgments(first, categories=categories_of(personas), order=order)
    read: str | Reference | None = reference
    if reference == EDITORS:  # the labels are in the store: read them once, here
        read = editors_reference(
            store, basis, judged.tools, judged.categories, n_resamples=n_resamples, seed=seed
        )
    found = research(
        first, run=basis, personas=personas, tool_data=store.run_tools(basis), judged=judged,
        order=order, reference=read, min_votes=min_votes, positive=positive,
        threshold=threshold, n_resamples=n_resamples, seed=seed, progress=tell,
    )  # fmt: skip
    notes = [
        f"Inter-rater statistics read repeat 0 of run {basis}, the first run given.",
        _BY_NOTES[by],
        f"Intervals: 95% percentile bootstrap over items, {n_resamples} resamples, seed {seed}; "
        "each interval uses only the resamples on which its statistic is defined (resamples_used).",
        "A failed review is a missing rating: Fleiss' kappa keeps only items every rater rated; "
        "Krippendorff's alpha and Cohen's kappa use every pairable rating.",
        CONSTANT_RATER_NOTE,
        CEILING_NOTE,
    ]
    if silent:
        notes.append(f"Left out of the headline statistics, every review failed: {', '.join(silent)}.")
    cost = spend(rows, run_ids)
    notes.append(f"Cost: {cost.sentence}")
    small = sample(len({r["tool"] for r in first}), "the agreement between raters")
    if small is not None:
        notes.append(f"Too small a sample: {small.reason}; the figures describe these tools only.")
    stats = agreement(
        matrix.ratings,
        matrix.raters,
        n_resamples,
        seed,
        positive=positive,
        progress=partial(tell, "bootstrap intervals"),
    )

    def matrix_of(chosen: list[Row]) -> tuple[list[str], list[list[str | None]]]:
        found = ratings_matrix(chosen, by, run=basis, order=order)
        keep = [found.raters.index(r) for r in matrix.raters if r in found.raters]
        return [found.raters[j] for j in keep], [[row[j] for j in keep] for row in found.ratings]

    def reference_of() -> Any:
        return (
            None
            if read is None
            else load_reference(read, judged, store.run_tools(basis), min_votes, n_resamples, seed)
        )

    both = None if not has_rebuttals(store, basis) else _phase(
        tell,
        "rebuttal round",
        lambda: rounds(
            store, basis, first, matrix_of, stats, order=order, categories=judged.categories,
            reference=reference_of(), n_resamples=n_resamples, seed=seed, positive=positive,
        ),
    )  # fmt: skip
    return AgreementReport(
        runs=list(run_ids),
        by=by,
        basis={"run": basis, "repeat": 0},
        items=matrix.items,
        missing=sum(v is None for row in matrix.ratings for v in row),
        stats=stats,
        cohen=_phase(tell, "pairwise kappas", lambda: kappa_matrices(first, order, judged)),
        self_consistency=_phase(tell, "self-consistency", lambda: _self_consistency(rows, run_ids, order)),
        notes=notes,
        research=found,
        rounds=both,
        cost=cost,
        sample=small,
    )
