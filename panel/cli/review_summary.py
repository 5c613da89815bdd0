"""`panel show` of a catalog review run: the catalog in summary, not one comparison of every tool.

What the app's review-run page reads (`panel.view.data.review_tools`: each tool's ship, valid
and failed reviews, the panel's own verdicts in repeat 0), put as a few lines for a terminal:
the counts, how the tools' ship shares spread, what the rebuttal round changed, where reviews
failed, and the most contested tools with why (`panel triage` ranks them all), which an
editor reads first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..report.confidence import cached_confidence, carried_forward
from ..report.ranking import ranked
from ..report.record import Confidence
from ..store import RunRow, Store
from ..text import for_console
from ..view.data import ToolLine, review_tools
from .apps import out_console

__all__ = ["BINS", "ReviewSummary", "print_review_summary", "review_summary"]

#: the ship-share bins of the distribution: (label, lowest share in it)
BINS = (("0-19%", 0), ("20-39%", 20), ("40-59%", 40), ("60-79%", 60), ("80-100%", 80))
#: tools listed under "most in need of an editor", and under failures
SHOWN = 5
#: the longest bar of the distribution, in characters
BAR = 30


@dataclass(frozen=True)
class ReviewSummary:
    run: RunRow
    tools: list[ToolLine]
    personas: int
    #: round-2 answers: (valid, failed, changed ship to skip, changed skip to ship); None without
    #: a round 2
    rebuttal: tuple[int, int, int, int] | None
    #: the commonest reasons reviews failed, with how many each
    reasons: list[tuple[str, int]]
    #: the contested tools, most doubtful first (``ranking.ranked``)
    contested: list[tuple[ToolLine, Confidence]]
    #: the judges whose editor-labelled reliability no longer applies (``carried_forward``)
    reliability_notes: list[str] = field(default_factory=list)

    @property
    def valid(self) -> int:
        return sum(t.valid for t in self.tools)

    @property
    def failed(self) -> int:
        return sum(t.failed for t in self.tools)

    def distribution(self) -> tuple[list[int], int]:
        """Tools per ship-share bin, and the tools with no valid review."""
        counts = [0] * len(BINS)
        for t in self.tools:
            if t.valid:
                counts[min(len(BINS) - 1, len(BINS) * t.ship // t.valid)] += 1
        return counts, sum(1 for t in self.tools if not t.valid)


def review_summary(store: Store, run: RunRow) -> ReviewSummary:
    rounds = store.rebuttals(run.id)
    rebuttal = None
    if rounds:
        flips = Counter((r.verdict_before, r.verdict_after) for r in rounds if r.changed)
        valid = sum(r.valid for r in rounds)
        rebuttal = (valid, len(rounds) - valid, flips[("ship", "skip")], flips[("skip", "ship")])
    tools, personas = review_tools(store, run.id), len(store.run_personas(run.id))
    line = {t.id: t for t in tools}
    contested = [
        (line[t], c) for t, c in ranked(cached_confidence(store, run.id)) if c.contested and t in line
    ]
    notes = carried_forward(store, run.id).notes
    return ReviewSummary(run, tools, personas, rebuttal, store.failure_reasons(run.id), contested, notes)


def _say(line: str = "") -> None:
    out_console.print(for_console(line), markup=False, highlight=False, emoji=False, soft_wrap=True)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def print_review_summary(summary: ReviewSummary) -> None:
    run, tools = summary.run, summary.tools
    members = len(run.config.get("members", []))
    _say(f"Review run {run.id} ({run.status}): {run.command}")
    _say(
        f"{_plural(len(tools), 'tool')} x {_plural(summary.personas, 'persona')} x "
        f"{_plural(members, 'member')}: {summary.valid + summary.failed} reviews, "
        f"{summary.valid} valid, {summary.failed} failed"
    )
    _distribution(summary, "round 1, before the rebuttal" if summary.rebuttal else "")
    if summary.rebuttal is not None:
        answered, failed, to_skip, to_ship = summary.rebuttal
        _say(
            f"\nRebuttal round: {answered} valid answers, {failed} failed; {to_skip + to_ship} verdicts "
            f"changed ({to_skip} ship to skip, {to_ship} skip to ship)"
        )
    _failures(tools, summary.reasons)
    _contested(summary.contested)
    if summary.reliability_notes:
        _say("\nEditors' labels of earlier runs:")
        for note in summary.reliability_notes:
            _say(f"  {note}")
    _say(f"\nOne tool's card: panel show {run.id} --tool ID")


def _distribution(summary: ReviewSummary, when: str) -> None:
    counts, none = summary.distribution()
    _say(f"\nPanel ship % by tool{f' ({when})' if when else ''}:")
    most = max(counts) or 1
    for (label, _), n in zip(BINS, counts, strict=True):
        bar = "#" * (max(1, round(BAR * n / most)) if n else 0)
        _say(f"  {label:>8}  {bar:<{BAR}}  {n}")
    if none:
        _say(f"  no valid review: {none}")


def _failures(tools: Sequence[ToolLine], reasons: Sequence[tuple[str, int]]) -> None:
    failing = sorted((t for t in tools if t.failed), key=lambda t: (-t.failed, t.name.lower()))
    if not failing:
        _say("\nFailed: none")
        return
    total = sum(t.failed for t in failing)
    named = ", ".join(f"{t.id} {t.failed}" for t in failing[:SHOWN])
    more = f", and {len(failing) - SHOWN} more" if len(failing) > SHOWN else ""
    _say(f"\nFailed: {_plural(total, 'review')} in {_plural(len(failing), 'tool')}: {named}{more}")
    for reason, n in reasons:
        _say(f"  {n} x {_cut(reason)}")


def _cut(reason: str, most: int = 160) -> str:
    line = " ".join(reason.split())
    return line if len(line) <= most else line[: most - 1] + "…"


def _contested(contested: Sequence[tuple[ToolLine, Confidence]]) -> None:
    if not contested:
        _say("\nNo contested verdict: no split, no narrow margin, no flip.")
        return
    _say("\nMost in need of an editor (most doubtful first; panel triage RUN lists every tool):")
    shown = contested[:SHOWN]
    width = max(len(t.id) for t, _ in shown)
    for t, c in shown:
        ship = "cannot be estimated" if c.ship is None else f"P(ship) {c.ship:.2f}"
        why = "; ".join(r.text.rstrip(".") for r in c.reasons)
        # the verdicts in force (after the rebuttal round and edits), not round 1's share above
        _say(f"  {t.id:<{width}}  {ship}  {t.name}: {_cut(why, 120)}")
    if len(contested) > SHOWN:
        _say(f"  and {len(contested) - SHOWN} more contested tools")
