"""How far to trust each verdict of a run: the panel's probability of ship, its interval, the
method it rests on, and the reasons a verdict is contested.

Binary throughout: the probability is of "ship" against every other verdict a persona may
give. It is about what the models said (:mod:`panel.report.pooled`: repeat 0, a valid
rebuttal-round verdict in place of round 1's), not about editors' edits: those are what the
labels measure the panel against, and counting them here would inflate the panel's agreement
with the editors. Three methods, chosen per run:

* **dawid-skene**: with at least :data:`~panel.analysis.sample.MIN_TOOLS` tools with
  verdicts, :data:`MIN_JUDGES` judges and numpy installed, the judges' reliabilities are
  fitted once on the whole run (``panel.analysis.latent``) and each tool's probability is
  its posterior; the interval comes from refitting the model on tools drawn with
  replacement (:data:`RESAMPLES` refits, all at once).
* **editors**: with ``reliabilities`` (each judge's confusion counted against editor
  labels), each tool's posterior under those counts; the interval from drawing each judge's
  rates from their Beta posteriors.
* **vote-share**: otherwise the *ship share*, the share of ship among valid reviews, with a
  Wilson interval, the basis saying why no model was fitted; it is not a probability and is
  not called one. Pure Python: the core needs no numpy.

A tool with fewer than :data:`MIN_REVIEWS` valid reviews gets method "none": no number.

A verdict is contested for any of these reasons: ``split`` (the larger side, ship or not
ship, has less than :data:`MAJORITY` of the valid reviews), ``margin`` (the interval includes
0.5; a vote share's Wilson interval only with at least :data:`MIN_SHARE_MARGIN` reviews, since
on a handful it includes 0.5 even for a unanimous panel),
``rebuttal_flip``, ``flipped_since`` (the newest earlier done run that reviewed the tool gave
the other majority), ``weak_judge`` (the majority rests on judges whose fitted accuracy is
below :data:`WEAK_ACCURACY`: without their votes it would tie or turn) and ``failed`` (enough
reviews failed to turn the majority). :func:`doubt` orders triage; on a ship share it is
:func:`share_doubt` (see :func:`panel.report.ranking.ranked` for a run whose tools come from two methods).

A model's interval wider than :data:`record_confidence.WIDE_INTERVAL` (e.g. Dawid-Skene on judges
answering at random: a point of 0.98 in 0 to 1) is printed first and called uncertain, the
point after it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from .._about import install_hint
from ..analysis.sample import MIN_TOOLS
from ..store import CellKey, Store
from . import confidence_cache as _cache
from .confidence_types import LEVEL, RESAMPLES, Confusion, Estimate, Fitted, Judge, ToolVotes, collapse
from .pooled import NOT_SHIP, SHIP, binary, models_verdict, pooled
from .record_confidence import Confidence, ConfidenceMethod, Contested

__all__ = [
    "MAJORITY",
    "MIN_JUDGES",
    "MIN_REVIEWS",
    "MIN_SHARE_MARGIN",
    "RESAMPLES",
    "WEAK_ACCURACY",
    "Carried",
    "Estimate",
    "Fitted",
    "Judge",
    "ToolVotes",
    "cached_confidence",
    "carried_forward",
    "collapse",
    "doubt",
    "models_verdicts",
    "result_key",
    "run_confidence",
    "share_doubt",
    "wilson",
]

#: the fewest valid reviews of a tool its confidence is estimated from
MIN_REVIEWS = 3
#: the fewest valid reviews whose ship share's Wilson interval may raise `margin`
MIN_SHARE_MARGIN = 10
#: the fewest judges with verdicts a reliability model is fitted to (fewer are not identified)
MIN_JUDGES = 3
#: a panel whose largest side has less than this share of the valid reviews is split
MAJORITY = 0.75
#: a judge whose estimated accuracy is below this is of low reliability
WEAK_ACCURACY = 0.6
_NAMED = 3  # weak judges named in a reason; the rest are counted
_Z = 1.959963984540054  # the normal quantile of a two-sided 95% interval


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


def share_doubt(ship: int, n: int) -> float:
    """Doubt on the ship-share scale: :func:`doubt` of the rule-of-succession share
    ``(ship + 1) / (n + 2)``, so a unanimous handful is fairly sure (3 of 3: 0.4; 10 of 10:
    0.17) but never certain, and an even split is a coin toss (1.0). Its Wilson interval is
    not used: on a handful of reviews it includes even odds for a unanimous panel too."""
    share = (ship + 1) / (n + 2)
    return doubt(share, share, share)


def models_verdicts(store: Store, run_id: str) -> dict[CellKey, str | None]:
    """Repeat 0 of every cell with the models' verdict (:func:`pooled.models_verdict`: a valid
    rebuttal-round verdict in place of round 1's); None where the review failed. Editors'
    edits do not enter (see the module docstring)."""
    cells = {k: v for k, v in store.cell_verdicts(run_id).items() if k.repeat == 0}
    for row in store.rebuttals(run_id):
        if row.valid and row.verdict_after is not None and row.key in cells:
            cells[row.key] = models_verdict(cells[row.key], row.verdict_after)
    return cells


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
    categories: Sequence[str] | None = None,
    carry_forward: bool = True,
) -> dict[str, Confidence]:
    """Each tool of the run (by id, in the run's order) with its confidence.

    ``reliabilities`` (judge -> confusion counts against editor labels) switch the method to
    "editors" for the judges they cover; a K x K confusion over ``categories`` (ship first
    when None) is collapsed to ship against not ship (:func:`collapse`). Raises nothing for a
    run without reviews: every tool then says its confidence cannot be estimated.
    Without ``reliabilities`` and with ``carry_forward``, those of :func:`carried_forward`
    are used when earlier runs' editor labels cover a judge of this run.
    """
    if reliabilities is None and carry_forward:
        reliabilities = carried_forward(store, run_id).reliabilities or None
    if reliabilities:
        reliabilities = {j: collapse(c, categories) for j, c in reliabilities.items()}
    tools: dict[str, ToolVotes] = {str(t["id"]): ToolVotes() for t in store.run_tools(run_id)}
    for key, verdict in models_verdicts(store, run_id).items():
        tools.setdefault(key.tool_id, ToolVotes()).votes[(key.persona_id, key.member)] = verdict
    for row in store.rebuttals(run_id):
        if row.repeat == 0 and row.changed and row.tool_id in tools:
            tools[row.tool_id].flips += 1
    fitted = _cache.FITS.get(_cache.digest(tools, reliabilities), lambda: _fit(tools, reliabilities))
    earlier = _cache.previous_key(store, run_id, store.previous_runs(run_id))
    before = _cache.BEFORE.get(earlier, lambda: _previous(store, run_id))
    return {
        tool_id: _confidence(tool, fitted, before.get(tool_id), tool_id) for tool_id, tool in tools.items()
    }


def cached_confidence(store: Store, run_id: str) -> dict[str, Confidence]:
    """:func:`run_confidence`, remembered while the run's reviews, edits and rebuttal answers
    and the editors' labels stay as they were (``Store.run_state``, ``labels_stamp``), so the
    app's tool pages of a large run fit the run once, not once a page. When they change, the
    judges' fit is found again if what it is fitted to is the same (``confidence_cache``: an
    editor's edit does not move the models' verdicts), and so are the previous runs' verdicts.
    The key holds the earlier runs' state too (``previous_key``): a review regenerated there
    moves `flipped_since` here."""
    found: dict[str, Confidence] = _cache.RESULTS.get(
        result_key(store, run_id), lambda: run_confidence(store, run_id)
    )
    return found


def result_key(store: Store, run_id: str) -> tuple[object, ...]:
    """What :func:`cached_confidence` keeps a run's result under: the store, the run, its state
    and the labels' (``labels_stamp``), and the earlier runs' state (``previous_key``)."""
    earlier = _cache.previous_key(store, run_id, store.previous_runs(run_id))
    return (str(store.path), run_id, (store.run_state(run_id), store.labels_stamp()), earlier)


def _previous(store: Store, run_id: str) -> dict[str, tuple[str, str | None]]:
    """Each tool's previous run (newest earlier done run that reviewed it) and its pooled verdict."""
    earlier = store.previous_runs(run_id)
    out: dict[str, tuple[str, str | None]] = {}
    for other in sorted(set(earlier.values())):
        votes: dict[str, list[str | None]] = {}
        for key, verdict in models_verdicts(store, other).items():
            if earlier.get(key.tool_id) == other:
                votes.setdefault(key.tool_id, []).append(verdict)
        out.update({tool_id: (other, pooled(v)) for tool_id, v in votes.items()})
    return out


def _fit(tools: Mapping[str, ToolVotes], reliabilities: Mapping[Judge, Confusion] | None) -> Fitted:
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


def _vote_share(judged: Mapping[str, ToolVotes], why: str) -> Fitted:
    estimates = {}
    for tool_id, tool in judged.items():
        n = len(tool.valid)
        low, high = wilson(tool.ship, n)
        estimates[tool_id] = Estimate(tool.ship / n, low, high)
    return Fitted("vote-share", f"Wilson interval: {why}", len(judged), estimates)


def _confidence(
    tool: ToolVotes, fitted: Fitted, before: tuple[str, str | None] | None, tool_id: str
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
            basis = f"ship share of {n} reviews (not a probability), {source.basis}"
        else:
            basis = f"{source.basis} ({n} reviews of this tool)"
    reasons = _reasons(tool, fitted, before, method, low, high)
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
        doubt=share_doubt(tool.ship, n) if method == "vote-share" else doubt(ship, low, high),
    )


def _round(x: float | None) -> float | None:
    return None if x is None else round(min(1.0, max(0.0, x)), 4)


def _reasons(
    tool: ToolVotes, fitted: Fitted, before: tuple[str, str | None] | None, method: str,
    low: float | None, high: float | None,
) -> list[Contested]:  # fmt: skip
    valid = tool.valid
    out: list[Contested] = []
    n, ship = len(valid), tool.ship
    if n >= 2 and max(ship, n - ship) < MAJORITY * n:
        out.append(Contested(code="split", text=f"The panel is split: {_tally(valid.values())}."))
    informative = method != "vote-share" or n >= MIN_SHARE_MARGIN
    if informative and low is not None and high is not None and low < 0.5 < high:
        out.append(Contested(code="margin", text=f"The interval {low:.2f}–{high:.2f} includes even odds."))
    if tool.flips:
        s = "" if tool.flips == 1 else "s"
        out.append(
            Contested(
                code="rebuttal_flip", text=f"{tool.flips} review{s} changed verdict in the rebuttal round."
            )
        )
    now = pooled(list(tool.votes.values()))
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
        if fitted.accuracy.get(j, 1.0) < WEAK_ACCURACY and binary(v) == winning
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


def _tally(verdicts: Iterable[str]) -> str:
    """Ship against not ship, naming the verdicts on the not-ship side when they differ:
    "2 ship, 2 skip" or "2 ship, 2 not ship (1 skip, 1 maybe)"."""
    said = list(verdicts)
    ship = sum(1 for v in said if v == SHIP)
    others = Counter(v for v in said if v != SHIP).most_common()
    if len(others) == 1:
        rest = f"{others[0][1]} {others[0][0]}"
    else:
        named = ", ".join(f"{c} {v}" for v, c in others)
        rest = f"{len(said) - ship} {NOT_SHIP}" + (f" ({named})" if others else "")
    return f"{ship} {SHIP}, {rest}"
