"""Verbosity: does a longer catalog entry get more ship verdicts, and does a longer review
persuade more in the rebuttal round?

* **The entry.** A tool's entry is what its reviewers read: the catalog's facts as the review
  prompt shows them (JSON, `Tool.facts_for_review`), from the run's own snapshot of the tool
  (`Store.run_tools`). Over the valid reviews (repeat 0) of the runs, the least-squares slope of
  ship (1 or 0) on log2 of the entry's length in characters, with one intercept per judge
  (persona on member; a linear probability model with the judge as a fixed effect): the change
  in the share of ship verdicts per doubling of the entry's length.
* **The review.** Over the rebuttal round's (reader, other review) pairs whose round-1 verdicts
  differed (:mod:`.bias_order`), the slope of adoption (the reader's verdict after the round is
  the other's) on log2 of the other review's length as the reader saw it, with one intercept
  per number of reviews that disagreed with the reader (readers under the same majority are
  compared).

Both intervals are percentile bootstraps over tools (all rows of a tool resampled together):
a tool's reviews share its entry, and a tool's readers read the same reviews.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..catalog import Tool
from ..store import Store
from .bias_measure import Measure, Sums, absent, reading, too_small, within_estimate
from .bias_order import MIN_PAIRS, Shown, too_few_pairs
from .long import iter_long
from .sample import MIN_TOOLS

__all__ = ["entry_length", "entry_text", "review_length"]

ENTRY_TITLE = "Verbosity of the entry: do longer entries get more ship?"
ENTRY_METHOD = (
    "least-squares slope of ship (1/0) on log2 of the entry's length in characters, one intercept "
    "per judge (persona on member); percentile bootstrap over tools"
)
ENTRY_UNIT = "in the share of ship verdicts per doubling of the entry's length"
REVIEW_TITLE = "Verbosity of reviews: does a longer review persuade more in the rebuttal round?"
REVIEW_METHOD = (
    "least-squares slope of adoption (1/0) on log2 of the other review's length as shown, one "
    "intercept per number of reviews that disagreed with the reader; percentile bootstrap over tools"
)
REVIEW_UNIT = "in the share of readers who adopt its verdict per doubling of the review's length"


def entry_text(data: Mapping[str, Any]) -> str:
    """A tool's entry as the review prompt shows it, from the run's snapshot of the tool."""
    try:
        facts = Tool.model_validate(data).facts_for_review()
    except ValueError:  # a snapshot this version no longer reads: its facts as stored
        facts = {k: v for k, v in data.items() if k != "community"}
    return json.dumps(facts, indent=2, ensure_ascii=False)


def entry_length(
    store: Store,
    run_ids: Sequence[str],
    *,
    positive: str = "ship",
    n_resamples: int = 2000,
    seed: int = 0,
    long_rows: Iterable[Mapping[str, Any]] | None = None,
) -> Measure:
    """The effect of the entry's length on the ship rate over the runs' valid reviews (repeat 0);
    `long_rows` are the runs' long table when the caller has read it (`iter_long`)."""
    lengths = {(run, str(t.get("id"))): len(entry_text(t)) for run in run_ids for t in store.run_tools(run)}
    rows = [
        r for r in (iter_long(store, run_ids) if long_rows is None else long_rows)
        if r["repeat"] == 0 and r["valid"] and lengths.get((r["run"], r["tool"]))
    ]  # fmt: skip
    tools = sorted({r["tool"] for r in rows})
    judges = sorted({(r["persona"], r["member"]) for r in rows})
    small = too_small(len(tools), MIN_TOOLS, "tools", "the effect of the entry's length")
    estimate = None
    shown = sorted({lengths[(r["run"], r["tool"])] for r in rows})
    details: dict[str, Any] = {
        "shortest": shown[0] if shown else None,
        "longest": shown[-1] if shown else None,
    }
    flat = None
    if small is None:
        tool_at = {t: k for k, t in enumerate(tools)}
        judge_at = {j: k for k, j in enumerate(judges)}
        sums = Sums.of(
            [tool_at[r["tool"]] for r in rows],
            [judge_at[(r["persona"], r["member"])] for r in rows],
            [math.log2(lengths[(r["run"], r["tool"])]) for r in rows],
            [float(r["verdict"] == positive) for r in rows],
            (len(tools), len(judges)),
        )
        estimate, flat = within_estimate(sums, n_resamples, seed)
    caveat = (
        "the entry's length is not assigned at random, so this is an association: a longer entry "
        "may describe a more mature tool."
    )
    return Measure(
        "entry_length", ENTRY_TITLE, ENTRY_METHOD, ENTRY_UNIT, "valid reviews (repeat 0)", len(rows),
        len(tools), f"{MIN_TOOLS} tools", reading(estimate, small, len(tools), ENTRY_UNIT, caveat, flat),
        estimate, small, details=details, noun="reviews",
    )  # fmt: skip


def review_length(shown: Shown, *, n_resamples: int = 2000, seed: int = 0) -> Measure:
    """The effect of a disagreeing review's length on its adoption in the rebuttal round."""
    items = "(reader, other review) pairs whose round-1 verdicts differed"
    minimum = f"{MIN_PAIRS} pairs over {MIN_TOOLS} tools"
    if not shown.readers:
        why = "The runs had no rebuttal round (or no valid answer in it)."
        return absent("review_length", REVIEW_TITLE, REVIEW_METHOD, REVIEW_UNIT, items, minimum, why)
    pairs = shown.pairs
    tools = sorted({p.tool for p in pairs})
    small = too_few_pairs(len(tools), len(pairs), "the effect of a review's length")
    estimate = flat = None
    if small is None:
        tool_at = {t: k for k, t in enumerate(tools)}
        strata = sorted({p.disagreeing for p in pairs})
        stratum_at = {d: k for k, d in enumerate(strata)}
        sums = Sums.of(
            [tool_at[p.tool] for p in pairs], [stratum_at[p.disagreeing] for p in pairs],
            [math.log2(max(p.length, 1)) for p in pairs], [float(p.adopted) for p in pairs],
            (len(tools), len(strata)),
        )  # fmt: skip
        estimate, flat = within_estimate(sums, n_resamples, seed)
    caveat = (
        "a longer review may also be a better-argued one, so the data cannot separate its length "
        "from what it says."
    )
    return Measure(
        "review_length", REVIEW_TITLE, REVIEW_METHOD, REVIEW_UNIT, items, len(pairs), len(tools), minimum,
        reading(estimate, small, len(tools), REVIEW_UNIT, caveat, flat), estimate, small, noun="pairs",
    )  # fmt: skip
