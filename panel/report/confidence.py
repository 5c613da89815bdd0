"""How far to trust each verdict of a run: the panel's probability of ship, its interval, the
method it rests on, and the reasons a verdict is contested.

Binary throughout: the probability is of "ship" against every other verdict a persona may
give. The run's current verdicts are read (a valid rebuttal-round verdict in place of round
1's, an editor's verdict in place of both). Three methods, chosen per run:

* **dawid-skene**: with at least :data:`~panel.analysis.sample.MIN_TOOLS` tools with
  verdicts, :data:`MIN_JUDGES` judges and numpy installed, the judges' reliabilities are
  fitted once on the whole run (``panel.analysis.latent``) and each tool's probability is
  its posterior; the interval comes from refitting the model on tools drawn with
  replacement (:data:`RESAMPLES` refits, all at once).
* **editors**: with ``reliabilities`` (each judge's confusion counted against editor
  labels), each tool's posterior under those counts; the interval from drawing each judge's
  rates from their Beta posteriors.
* **vote-share**: otherwise the share of ship among valid reviews with a Wilson interval,
  the basis saying why no model was fitted. Pure Python: the core needs no numpy.

A tool with fewer than :data:`MIN_REVIEWS` valid reviews gets method "none": no number.

A verdict is contested for any of these reasons: ``split`` (the larger side has less than
:data:`MAJORITY` of the valid reviews), ``margin`` (the interval includes 0.5),
``rebuttal_flip``, ``flipped_since`` (the newest earlier done run that reviewed the tool gave
the other majority), ``weak_judge`` (the majority rests on judges whose fitted accuracy is
below :data:`WEAK_ACCURACY`: without their votes it would tie or turn) and ``failed`` (enough
reviews failed to turn the majority). :func:`doubt` orders triage.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._about import install_hint
from ..analysis.sample import MIN_TOOLS
from ..store import CellKey, Store
from .record import Confidence, ConfidenceMethod, Contested

__all__ = [
    "MAJORITY",
    "MIN_JUDGES",
    "MIN_REVIEWS",
    "RESAMPLES",
    "WEAK_ACCURACY",
    "Carried",
    "Judge",
    "as_row",
    "cached_confidence",
    "carried_forward",
    "confidence_line",
    "current_verdicts",
    "doubt",
    "ranked",
    "run_confidence",
    "wilson",
]

SHIP = "ship"
NOT_SHIP = "not ship"
#: the fewest valid reviews of a tool its confidence is estimated from
MIN_REVIEWS = 3
#: the fewest judges with verdicts a reliability model is fitted to (fewer are not identified)
MIN_JUDGES = 3
#: a panel whose largest side has less than this share of the valid reviews is split
MAJORITY = 0.75
#: a judge whose estimated accuracy is below this is of low reliability
WEAK_ACCURACY = 0.6
#: bootstrap refits behind a Dawid-Skene interval, draws behind an editors' one
RESAMPLES = 200
LEVEL = 0.95
_NAMED = 3  # weak judges named in a reason; the rest are counted
_Z = 1.959963984540054  # the normal quantile of a two-sided 95% interval

#: a judge: (persona id, member)
Judge = tuple[str, str]
#: a judge's binary confusion counts against labels: ((ship said ship, ship said not),
#: (not said ship, not said not)); rows are the label, columns the judge's verdict
Confusion = Sequence[Sequence[float]]


def wilson(ship: int, n: int, z: float = _Z) -> tuple[float, float]:
    """Wilson's score interval for ``ship`` successes in ``n`` (n > 0)."""
    p = ship / n
    scale = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / scale
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / scale
    return max(0.0, centre - half), min(1.0, centre + half)


def doubt(ship: float | None, low: float | None, high: float | None) -> float:
    """``1 - 2 * |e - 0.5|`` where ``e`` is the end of the interval nearest 0.5 (0.5 itself
    when the interval straddles it): 0 for a verdict certain even at its interval's weak end,
    1 for a coin toss. A tool without an estimate has doubt 1: nothing says it is safe."""
    if ship is None:
        return 1.0
    lo = ship if low is None else low
    hi = ship if high is None else high
    nearest = 0.5 if lo <= 0.5 <= hi else (lo if lo > 0.5 else hi)
    return round(1.0 - 2.0 * abs(nearest - 0.5), 6)


def current_verdicts(store: Store, run_id: str, *, edits: bool = True) -> dict[CellKey, str | None]:
    """Repeat 0 of every cell with the verdict in force: a valid rebuttal-round verdict in
    place of round 1's, then (with ``edits``) an editor's; None where the review failed."""
    cells = {k: v for k, v in store.cell_verdicts(run_id).items() if k.repeat == 0}
    for row in store.rebuttals(run_id):
        if row.valid and row.verdict_after is not None and cells.get(row.key) is not None:
            cells[row.key] = row.verdict_after
    for edit in store.edits(run_id) if edits else ():
        if edit.field == "verdict" and cells.get(edit.key) is not None:
            cells[edit.key] = edit.value
    return cells


@dataclass
class _Tool:
    votes: dict[Judge, str | None] = field(default_factory=dict)
    flips: int = 0

    @property
    def valid(self) -> dict[Judge, str]:
        return {j: v for j, v in self.votes.items() if v is not None}

    @property
    def ship(self) -> int:
        return sum(1 for v in self.votes.values() if v == SHIP)


def _pooled(verdicts: Sequence[str | None]) -> str | None:
    """The panel's verdict by majority of valid reviews: ship, not ship, a tie, or None."""
    valid = [v for v in verdicts if v is not None]
    if not valid:
        return None
    ship = sum(1 for v in valid if v == SHIP)
    return SHIP if 2 * ship > len(valid) else NOT_SHIP if 2 * ship < len(valid) else "a tie"


@dataclass(frozen=True)
class _Estimate:
    ship: float
    low: float
    high: float


@dataclass
class _Fitted:
    method: ConfidenceMethod
    basis: str
    tools: int
    estimates: dict[str, _Estimate]
    accuracy: dict[Judge, float] = field(default_factory=dict)
    labels: int = 0
    #: the method of the tools this one left without an estimate (editors: no judge with labels)
    fallback: _Fitted | None = None

    def source(self, tool_id: str) -> _Fitted | None:
        """The fit that estimated this tool, or None."""
        if tool_id in self.estimates:
            return self
        return self.fallback.source(tool_id) if self.fallback is not None else None


@dataclass(frozen=True)
class Carried:
    """The judges' reliabilities carried forward from editor labels on earlier runs."""

    reliabilities: dict[Judge, Confusion]  # binary confusion per judge with labels; empty: none
    notes: list[str]  # judges whose old reliability no longer applies, or why nothing was carried


def carried_forward(store: Store, run_id: str, *, leave_out: Collection[str] = ()) -> Carried:
    """The run's judges' reliabilities counted on the editors' labels of earlier runs of the
    same judge identity (`panel.analysis.editor_reliability`), folded to ship against the
    rest; labels of the tools in ``leave_out`` are not counted. Empty without any label in the
    store (nothing is read) and without numpy (the notes say what to install)."""
    if not store.labels_stamp()[0]:
        return Carried({}, [])
    try:
        from ..analysis.editor_reliability import judge_reliabilities
        from ..analysis.research import categories_of
    except ImportError:
        why = "editors' reliabilities are not carried forward: numpy is not installed"
        why += f" ({install_hint('analysis')})"
        return Carried({}, [why])
    categories = categories_of(store.run_personas(run_id))
    if SHIP not in categories:
        categories = [SHIP, *categories]
    found = judge_reliabilities(store, run_id, categories, leave_out=leave_out)
    return Carried(dict(found.binary(SHIP)), list(found.notes))


def run_confidence(
    store: Store,
    run_id: str,
    *,
    reliabilities: Mapping[Judge, Confusion] | None = None,
    carry_forward: bool = True,
    edits: bool = True,
) -> dict[str, Confidence]:
    """Each tool of the run (by id, in the run's order) with its confidence.

    ``reliabilities`` (judge -> confusion counts against editor labels) switch the method to
    "editors" for the judges they cover. Without them and with ``carry_forward``, those of
    :func:`carried_forward` are used when earlier runs' editor labels cover a judge of this
    run. ``edits=False`` reads the models' own verdicts, leaving the editors' edited ones out
    (an edited verdict is an editor's label: the triage rule must not read it as a vote).
    Raises nothing for a run without reviews: every tool then says its confidence
    cannot be estimated.
    """
    if reliabilities is None and carry_forward:
        reliabilities = carried_forward(store, run_id).reliabilities or None
    tools: dict[str, _Tool] = {str(t["id"]): _Tool() for t in store.run_tools(run_id)}
    for key, verdict in current_verdicts(store, run_id, edits=edits).items():
        tools.setdefault(key.tool_id, _Tool()).votes[(key.persona_id, key.member)] = verdict
    for row in store.rebuttals(run_id):
        if row.repeat == 0 and row.changed and row.tool_id in tools:
            tools[row.tool_id].flips += 1
    fitted = _fit(tools, reliabilities)
    before = _previous(store, run_id)
    return {
        tool_id: _confidence(tool, fitted, before.get(tool_id), tool_id) for tool_id, tool in tools.items()
    }


_CACHE: dict[tuple[str, str, object], dict[str, Confidence]] = {}
_CACHED_RUNS = 4


def cached_confidence(store: Store, run_id: str) -> dict[str, Confidence]:
    """:func:`run_confidence`, remembered while the run's reviews, edits and rebuttal answers
    stay as they were (``Store.run_state``), so the app's tool pages of a large run fit the
    run once, not once a page. An edit of an earlier run (which only moves `flipped_since`)
    is seen when this run next changes."""
    key = (str(store.path), run_id, (store.run_state(run_id), store.labels_stamp()))
    found = _CACHE.get(key)
    if found is None:
        found = run_confidence(store, run_id)
        while len(_CACHE) >= _CACHED_RUNS:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = found
    return found


def _previous(store: Store, run_id: str) -> dict[str, tuple[str, str | None]]:
    """Each tool's previous run (newest earlier done run that reviewed it) and its pooled verdict."""
    earlier = store.previous_runs(run_id)
    out: dict[str, tuple[str, str | None]] = {}
    for other in sorted(set(earlier.values())):
        votes: dict[str, list[str | None]] = {}
        for key, verdict in current_verdicts(store, other).items():
            if earlier.get(key.tool_id) == other:
                votes.setdefault(key.tool_id, []).append(verdict)
        out.update({tool_id: (other, _pooled(v)) for tool_id, v in votes.items()})
    return out


def _fit(tools: Mapping[str, _Tool], reliabilities: Mapping[Judge, Confusion] | None) -> _Fitted:
    judged = {t: tool for t, tool in tools.items() if tool.valid}
    judges = {j for tool in judged.values() for j in tool.valid}
    if not reliabilities and len(judged) < MIN_TOOLS:  # no model to fit: numpy is not even loaded
        return _vote_share(
            judged, f"{len(judged)} tools are too few (< {MIN_TOOLS}) to estimate the judges' reliability"
        )
    if not reliabilities and len(judges) < MIN_JUDGES:
        return _vote_share(
            judged, f"{len(judges)} judges are too few (< {MIN_JUDGES}) to estimate their reliability"
        )
    try:
        from . import confidence_fit
    except ImportError:
        why = f"numpy is not installed to estimate the judges' reliability ({install_hint('analysis')})"
        return _vote_share(judged, why)
    if reliabilities:
        fitted = confidence_fit.editors(judged, reliabilities)
        rest = {t: tool for t, tool in judged.items() if t not in fitted.estimates}
        fitted.fallback = _vote_share(rest, "none of its judges has editor labels") if rest else None
        return fitted
    return confidence_fit.dawid_skene(judged)


def _vote_share(judged: Mapping[str, _Tool], why: str) -> _Fitted:
    estimates = {}
    for tool_id, tool in judged.items():
        n = len(tool.valid)
        low, high = wilson(tool.ship, n)
        estimates[tool_id] = _Estimate(tool.ship / n, low, high)
    return _Fitted("vote-share", f"Wilson interval: {why}", len(judged), estimates)


def _confidence(
    tool: _Tool, fitted: _Fitted, before: tuple[str, str | None] | None, tool_id: str
) -> Confidence:
    valid = tool.valid
    n = len(valid)
    source = fitted.source(tool_id)
    if n < MIN_REVIEWS or source is None:
        reviews = "review" if n == 1 else "reviews"
        method: ConfidenceMethod = "none"
        basis = f"cannot be estimated from {n} valid {reviews} (the minimum is {MIN_REVIEWS})"
        ship = low = high = None
    else:
        found = source.estimates[tool_id]
        method, ship, low, high = source.method, found.ship, found.low, found.high
        if method == "vote-share":
            basis = f"vote share of {n} reviews, {source.basis}"
        else:
            basis = f"{source.basis} ({n} reviews of this tool)"
    reasons = _reasons(tool, fitted, before, low, high)
    return Confidence(
        ship=_round(ship),
        low=_round(low),
        high=_round(high),
        level=LEVEL,
        method=method,
        basis=basis,
        reviews=n,
        tools=(source or fitted).tools,
        labels=(source or fitted).labels,
        contested=bool(reasons),
        reasons=reasons,
        doubt=doubt(ship, low, high),
    )


def _round(x: float | None) -> float | None:
    return None if x is None else round(min(1.0, max(0.0, x)), 4)


def _reasons(
    tool: _Tool, fitted: _Fitted, before: tuple[str, str | None] | None, low: float | None, high: float | None
) -> list[Contested]:
    valid = tool.valid
    out: list[Contested] = []
    counts = Counter(valid.values())
    if len(valid) >= 2 and max(counts.values()) < MAJORITY * len(valid):
        tally = ", ".join(f"{c} {v}" for v, c in counts.most_common())
        out.append(Contested(code="split", text=f"The panel is split: {tally}."))
    if low is not None and high is not None and low < 0.5 < high:
        out.append(Contested(code="margin", text=f"The interval {low:.2f}–{high:.2f} includes even odds."))
    if tool.flips:
        s = "" if tool.flips == 1 else "s"
        out.append(
            Contested(
                code="rebuttal_flip", text=f"{tool.flips} review{s} changed verdict in the rebuttal round."
            )
        )
    now = _pooled(list(tool.votes.values()))
    sides = (SHIP, NOT_SHIP)
    if before is not None and before[1] in sides and now in sides and before[1] != now:
        out.append(
            Contested(code="flipped_since", text=f"Run {before[0]} said {before[1]}; this run says {now}.")
        )
    # Failed reviews and weak judges count when they could turn the majority: the failed
    # verdicts could tie or reverse it, or the weak judges' votes on the winning side decide it.
    margin = abs(2 * tool.ship - len(valid))
    winning = SHIP if 2 * tool.ship > len(valid) else NOT_SHIP
    weak = sorted(
        (j, fitted.accuracy[j])
        for j, v in valid.items()
        if fitted.accuracy.get(j, 1.0) < WEAK_ACCURACY and (SHIP if v == SHIP else NOT_SHIP) == winning
    )
    if weak and margin and len(weak) >= margin:
        named = "; ".join(f"{p} on {m} ({a:.2f})" for (p, m), a in weak[:_NAMED])
        named += f"; and {len(weak) - _NAMED} more" if len(weak) > _NAMED else ""
        out.append(
            Contested(
                code="weak_judge", text=f"The majority rests on judges of low estimated accuracy: {named}."
            )
        )
    failed = len(tool.votes) - len(valid)
    if failed and failed >= margin:
        s = "" if failed == 1 else "s"
        out.append(Contested(code="failed", text=f"{failed} review{s} failed, enough to turn the majority."))
    return out


def confidence_line(c: Confidence) -> str:
    """One line for a reader: the probability with its interval and method, or why there is
    none, then whether the verdict is contested and why."""
    head = c.summary
    if not c.contested:
        return f"{head}. Not contested."
    return f"{head}. Contested: " + " ".join(r.text for r in c.reasons)


def ranked(confidence: Mapping[str, Confidence]) -> list[tuple[str, Confidence]]:
    """The tools most doubtful first: by doubt, then by how many reasons, then the probability
    nearest even odds (a tool without one first), then in the run's order."""
    order = {tool_id: i for i, tool_id in enumerate(confidence)}

    def key(item: tuple[str, Confidence]) -> tuple[float, int, float, int]:
        tool_id, c = item
        odds = 0.0 if c.ship is None else abs(c.ship - 0.5)
        return (-c.doubt, -len(c.reasons), odds, order[tool_id])

    return sorted(confidence.items(), key=key)


def as_row(tool_id: str, name: str, c: Confidence) -> dict[str, Any]:
    """One tool's confidence as a flat row (triage's JSON and CSV), stable column names."""
    return {
        "tool_id": tool_id,
        "name": name,
        "doubt": c.doubt,
        "ship": c.ship,
        "low": c.low,
        "high": c.high,
        "method": c.method,
        "reviews": c.reviews,
        "contested": c.contested,
        "reasons": ";".join(r.code for r in c.reasons),
        "why": " ".join(r.text for r in c.reasons),
    }
