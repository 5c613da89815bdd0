"""The Biases section of `panel agreement`: the judges' known biases measured on the runs.

Six parts, each with its method, its interval, the items it rests on, its minimum and a
sentence on what the data can tell at that size (below the minimum: no number, a reason):

* verbosity of the entry and of reviews in the rebuttal round (:mod:`.bias_length`);
* the rebuttal round's order: is the review shown first followed more (:mod:`.bias_order`);
* herding: the rebuttal round's flips to the round-1 majority, as :mod:`.rounds` counts them,
  with Wilson's interval;
* self-preference, as :mod:`.self_preference` computes it;
* head-to-head judges' position bias, as :mod:`panel.report.head_to_head` combines the asks.

Everything is JSON-ready: the dict is `biases` in `panel agreement --format json`, and the
terminal's tables and the report page are drawn from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from ..report.confidence import wilson
from ..report.head_to_head import MIN_PAIRS as MIN_H2H_PAIRS
from ..report.head_to_head import JudgeBias, Rate, answers_from_store, judge_bias, pair_results
from ..store import Store
from .bias_length import entry_length, review_length
from .bias_measure import Measure, Small, absent, too_small
from .bias_measure import reading as read_estimate
from .bias_order import MIN_PAIRS, order_bias, shown_pairs
from .bootstrap import Estimate
from .long import iter_long
from .self_preference import MIN_TOOLS as MIN_MAKER_TOOLS
from .self_preference import SelfPreference, SelfPreferences, run_self_preference, to_dicts

__all__ = ["MIN_MAKER_TOOLS", "biases", "herding", "report_biases"]

HERDING_TITLE = "Herding: do reviewers move to the round-1 majority?"
HERDING_METHOD = (
    "answers of the rebuttal round whose verdict moved to the one most other reviewers of the tool "
    "gave in round 1 (as the rebuttal section counts them), among all valid answers; Wilson's interval"
)
HERDING_UNIT = "in the share of answers that moved to the majority"


def herding(rounds: Mapping[str, Any] | None) -> Measure:
    """The rebuttal section's count of flips to the majority, over every valid answer."""
    items = "valid answers of the rebuttal round (repeat 0, first run)"
    minimum = f"{MIN_PAIRS} answers"
    flips = next((f for f in (rounds or {}).get("flips", []) if f.get("kind") == "all"), None)
    if flips is None:
        why = "The first run had no rebuttal round."
        return absent("herding", HERDING_TITLE, HERDING_METHOD, HERDING_UNIT, items, minimum, why)
    answered, changed, herd = int(flips["answered"]), int(flips["changed"]), int(flips["to_majority"])
    small = too_small(answered, MIN_PAIRS, "answers", "herding")
    details: dict[str, Any] = {"answered": answered, "changed": changed, "to_majority": herd}
    estimate = None
    if small is None:
        low, high = wilson(herd, answered)
        estimate = Estimate(herd / answered, low, high, 0)
        if changed >= MIN_PAIRS:
            flips_low, flips_high = wilson(herd, changed)
            details["share_of_flips"] = {"point": herd / changed, "low": flips_low, "high": flips_high}
        else:  # the share among the flips rests on the flips alone: the same minimum
            note = f"too few: {herd} of {changed} flips moved to the majority ({MIN_PAIRS} flips needed)"
            details["share_of_flips"] = {"point": None, "low": None, "high": None, "note": note}
        text = (
            f"{herd} of {answered} answers ({herd / answered:.0%}, {low:.0%} to {high:.0%}) moved to the "
            f"round-1 majority, of {changed} that changed; answers about one tool are not independent, so "
            "the interval is too narrow when few tools hold them, and with two verdicts a reviewer in the "
            "minority can only move toward the majority: this counts herding, it does not say why."
        )
    else:
        text = f"Too small a sample: {small.reason}; at this size the data cannot tell herding from chance."
    return Measure(
        "herding", HERDING_TITLE, HERDING_METHOD, HERDING_UNIT, items, answered, 0, minimum, text,
        estimate, small, details=details, noun="answers",
    )  # fmt: skip


def _self_preference(found: Sequence[SelfPreference]) -> dict[str, Any]:
    method = (
        "share of ship verdicts on its maker's tools minus the disinterested rest of the panel's, against "
        "the same gap on other makers' tools (a difference in differences); percentile bootstrap over tools"
    )
    minimum = f"{MIN_MAKER_TOOLS} tools of its maker and {MIN_MAKER_TOOLS} of others"
    notes = list(found.notes) if isinstance(found, SelfPreferences) else []
    if not found:
        return {
            "title": "Self-preference: does a member favour its maker's tools?", "method": method,
            "minimum": minimum, "members": [], "notes": notes,
            "absent": "No member or no tool of the runs names a maker (`maker` in the catalog, panel.toml).",
        }  # fmt: skip
    members = []
    for f, row in zip(found, to_dicts(found), strict=True):
        # the member's own count of what is missing ("4 own tools and 8 other tools"), one wording
        small = None if f.too_few is None else Small(
            min(f.own_tools, f.other_tools), "tools", MIN_MAKER_TOOLS,
            f"{f.too_few.removeprefix('too few: ')} to read self-preference",
        )  # fmt: skip
        if small is not None:
            row.update(estimate=None, low=None, high=None)
        caveat = "a member's maker's tools may differ from the others in what makes them good."
        e = f.estimate
        shown = None if math.isnan(e.point) else e
        row["sample"] = None if small is None else asdict(small)
        row["reading"] = read_estimate(
            shown, small, f.own_tools + f.other_tools, "in the share of ship verdicts", caveat
        )
        members.append(row)
    return {
        "title": "Self-preference: does a member favour its maker's tools?", "method": method,
        "minimum": minimum, "members": members, "absent": None, "notes": notes,
    }  # fmt: skip


def _rate(rate: Rate) -> dict[str, Any]:
    enough = rate.enough and rate.interval is not None
    low, high = rate.interval if enough and rate.interval is not None else (None, None)
    return {
        "count": rate.count, "n": rate.n, "point": rate.value if enough else None, "low": low, "high": high,
        "minimum": rate.minimum, "text": rate.text(),
    }  # fmt: skip


def _size(judge: JudgeBias) -> str:
    """How large the lean is (:meth:`JudgeBias.lean`), once its answers reach the minimum."""
    picks, lean = judge.first_picks, judge.lean()
    if not picks.enough or lean is None or picks.value is None:
        return ""
    b, low, high = lean
    return (
        f"; it names the first-shown tool in {picks.value:.2f} of its {picks.n} answers, as a judge "
        f"would that picks by position {b:+.2f} of the time ({low:+.2f} to {high:+.2f})"
    )


def _position(store: Store, run_ids: Sequence[str]) -> dict[str, Any]:
    method = (
        "each pair asked in both orders: consistent when the same tool is picked both times; the "
        "first-shown share among its inconsistent pairs, and the first-shown picks among all its "
        "answers, which grow with the size of the lean (0.5: no lean); Wilson's intervals"
    )
    results = [r for run in run_ids for r in pair_results(answers_from_store(store.head_to_heads(run)))]
    if not results:
        return {
            "title": "Position bias of head-to-head judges", "method": method,
            "minimum": f"{MIN_H2H_PAIRS} pairs", "judges": [],
            "absent": "The runs asked no head-to-head judgements (`panel compare A B --head-to-head`).",
        }  # fmt: skip
    judges = []
    for j in judge_bias(results):
        lean = j.position_bias
        if not lean.enough or lean.interval is None:
            said = f"too few inconsistent pairs to tell a lean to either position ({lean.text()})"
        elif lean.interval[0] > 0.5:
            said = "it leans to the tool shown first"
        elif lean.interval[1] < 0.5:
            said = "it leans to the tool shown second"
        else:
            said = "the data cannot tell a lean to either position from none"
        judges.append({
            "persona": j.persona_id, "member": j.member, "pairs": j.pairs, "consistent": j.consistent,
            "first_shown": j.first_shown, "second_shown": j.second_shown, "failed": j.failed,
            "consistency": _rate(j.consistency), "position_bias": _rate(lean),
            "first_picks": _rate(j.first_picks),
            "reading": f"Consistent under swap: {j.consistency.text()}; {said}{_size(j)}.",
        })  # fmt: skip
    return {
        "title": "Position bias of head-to-head judges", "method": method,
        "minimum": f"{MIN_H2H_PAIRS} pairs", "judges": judges, "absent": None,
    }  # fmt: skip


def biases(
    store: Store,
    run_ids: Sequence[str],
    *,
    rounds: Mapping[str, Any] | None,
    preference: Sequence[SelfPreference],
    positive: str = "ship",
    n_resamples: int = 2000,
    seed: int = 0,
    long_rows: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The Biases section of the runs, JSON-ready. ``rounds`` is the report's rebuttal section
    (its dict; None without a rebuttal round); ``preference`` the members' self-preference;
    ``long_rows`` the runs' long table when the caller has read it."""
    shown = shown_pairs(store, run_ids)
    measures = [
        entry_length(
            store, run_ids, positive=positive, n_resamples=n_resamples, seed=seed, long_rows=long_rows
        ),
        review_length(shown, n_resamples=n_resamples, seed=seed),
        order_bias(shown, n_resamples=n_resamples, seed=seed),
        herding(rounds),
    ]
    notes = [
        "The biases read repeat 0 of every run given; herding reads the first run, as the rebuttal "
        f"section does. Bootstrap intervals: 95% percentile, {n_resamples} resamples over tools, seed {seed}."
    ]
    if shown.unreadable:
        notes.append(
            f"{shown.unreadable} of {shown.readers} readers of the rebuttal round are left out: the order "
            "they were shown cannot be reconstructed exactly (a run made before the reviews were shown "
            "as they are now, or a review set aside and made again since)."
        )
    if shown.by_rule:
        notes.append(
            f"{shown.by_rule} readers' orders were drawn again by the round's rule: their requests are "
            "not stored."
        )
    return {
        "measures": [m.to_dict() for m in measures],
        "self_preference": _self_preference(preference),
        "position": _position(store, run_ids),
        "notes": notes,
    }


def report_biases(
    store: Store, run_ids: Sequence[str], report: Mapping[str, Any], *, n_resamples: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """The Biases section of an agreement report (its JSON dict `report`), self-preference included,
    as `panel agreement` and the view's agreement page both show it."""
    rows = list(iter_long(store, run_ids))  # read once for self-preference and the entry's length
    preference = run_self_preference(store, run_ids, n_resamples=n_resamples, seed=seed, long_rows=rows)
    return biases(
        store, run_ids, rounds=report.get("rounds"), preference=preference, n_resamples=n_resamples,
        seed=seed, long_rows=rows,
    )  # fmt: skip
