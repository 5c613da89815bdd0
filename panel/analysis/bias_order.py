"""What each reader was shown in the rebuttal round, read back from the store, and whether being
shown first makes a review more likely to be followed.

The rebuttal round shows each reader the other valid round-1 reviews of its tool in an order
drawn from a hash of the reader's cell and each review (`panel.run.rebuttal`). The order is read
here from the round-2 request the store kept, as it was sent: each other review's text, as the
prompt shows it, is found in that request, and the order of their places is the order shown.
A reader whose request is not stored has its order drawn again by the same rule; a reader one
of whose other reviews is not in its request as the prompt writes it today (a run made before
the answers were shown as one text, or a review set aside and made again since) cannot be
reconstructed exactly and is left out, counted.

The pairs read are (reader, other review) where the other's round-1 verdict differed from the
reader's; the reader *adopts* it when its verdict after the round is the other's. The order's
figure compares readers, not pairs (a reader's adoption is shared by every review against it, so
a "later" pair's reader may well have had a review against it shown first too): one row per
reader who read two reviews or more, at least one against it; x is whether the review shown first
was against it, y whether it adopted a verdict it was shown against it; the slope of y on x with
one intercept per (reviews read, reviews against) stratum, so readers under the same split are
compared. The interval is a percentile bootstrap over tools (the readers of a tool are not
independent). The order is drawn by a hash, independent of what the reviews say, so a difference
is an effect of the position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..prompts import fence
from ..run.rebuttal import reading_order_key, review_as_read
from ..store import RebuttalRow, ReviewRow, Store
from .bias_measure import Measure, Small, Sums, absent, reading, too_small, within_estimate
from .sample import MIN_TOOLS

__all__ = ["MIN_PAIRS", "Pair", "Shown", "order_bias", "shown_pairs", "too_few_pairs"]

#: the fewest disagreeing (reader, other) pairs the persuasion figures are read from
MIN_PAIRS = 30
TITLE = "Rebuttal order: is the review shown first followed more?"
METHOD = (
    "per reader of two reviews or more, one or more against it: its adoption of a verdict against "
    "it when the review shown first was against it minus when it was not, one intercept per "
    "(reviews read, reviews against) stratum; order read from the stored round-2 prompts; "
    "percentile bootstrap over tools"
)
UNIT = "in the share of readers who adopt a verdict against theirs"
ITEMS = "readers of two reviews or more, one or more of them against the reader"


@dataclass(frozen=True)
class Pair:
    """A reader of the rebuttal round and one other review it read whose verdict differed."""

    run: str
    tool: str
    reader: tuple[str, str]  # persona, member
    other: tuple[str, str]
    #: where the other review was shown: 0 first
    position: int
    #: how many other reviews the reader read
    shown: int
    #: characters of the other review as the prompt showed it (its JSON, inside the fence)
    length: int
    #: how many of the reviews it read differed from its round-1 verdict
    disagreeing: int
    adopted: bool


@dataclass(frozen=True)
class Shown:
    """The disagreeing pairs of the runs' rebuttal rounds, and how each reader's order was found."""

    pairs: list[Pair]
    readers: int  # valid round-2 answers (repeat 0)
    from_prompt: int  # orders read from the stored round-2 request
    by_rule: int  # orders drawn again by the round's rule (no stored request)
    unreadable: int  # left out: the order cannot be reconstructed exactly


def _prompt(store: Store, answer: RebuttalRow) -> str | None:
    if answer.request_id is None:
        return None
    messages, _ = store.request_messages(answer.request_id)
    return next((m.get("content", "") for m in messages if m.get("role") == "user"), None)


def _from_prompt(prompt: str, own: ReviewRow | None, others: list[ReviewRow]) -> list[ReviewRow] | None:
    """The others in the order the prompt shows them; None if one of them is not in it."""
    start = 0
    if own is not None:
        mine = fence(review_as_read(own))
        at = prompt.find(mine)
        start = at + len(mine) if at >= 0 else 0
    places: list[tuple[int, ReviewRow]] = []
    seen: dict[str, int] = {}  # a text shown twice (two identical reviews): its next place
    for other in others:
        shown = fence(review_as_read(other))
        at = prompt.find(shown, seen.get(shown, start))
        if at < 0:
            return None
        seen[shown] = at + len(shown)
        places.append((at, other))
    return [other for _, other in sorted(places, key=lambda p: p[0])]


def shown_pairs(store: Store, run_ids: Sequence[str]) -> Shown:
    """Every disagreeing pair of the runs' rebuttal rounds (repeat 0), with its place shown."""
    pairs: list[Pair] = []
    readers = from_prompt = by_rule = unreadable = 0
    for run in run_ids:
        answers = [a for a in store.rebuttals(run) if a.repeat == 0 and a.valid]
        if not answers:
            continue
        panel: dict[str, list[ReviewRow]] = {}
        for review in store.reviews(run):
            if review.repeat == 0 and review.valid:
                panel.setdefault(review.tool_id, []).append(review)
        for answer in answers:
            readers += 1
            who = (answer.persona_id, answer.member)
            reviews = panel.get(answer.tool_id, [])
            own = next((r for r in reviews if (r.persona_id, r.member) == who), None)
            # identical texts are placed in the round's own order, so the rule breaks their tie
            others = sorted(
                (r for r in reviews if r is not own), key=lambda r: reading_order_key(answer.key, r)
            )
            prompt = _prompt(store, answer)
            order = None if len(others) != answer.others else (
                _from_prompt(prompt, own, others) if prompt is not None else others
            )  # fmt: skip
            if order is None:
                unreadable += 1
                continue
            from_prompt += prompt is not None
            by_rule += prompt is None
            differ = [r for r in order if r.verdict != answer.verdict_before]
            pairs += [
                Pair(
                    run,
                    answer.tool_id,
                    who,
                    (r.persona_id, r.member),
                    k,
                    len(order),
                    len(review_as_read(r)),
                    len(differ),
                    answer.verdict_after == r.verdict,
                )
                for k, r in enumerate(order)
                if r.verdict != answer.verdict_before
            ]
    return Shown(pairs, readers, from_prompt, by_rule, unreadable)


def too_few_pairs(n_tools: int, n_pairs: int, what: str) -> Small | None:
    """Why the pairs are too few to read ``what`` from (too few tools, or too few pairs); or None."""
    return too_small(n_tools, MIN_TOOLS, "tools", what) or too_small(n_pairs, MIN_PAIRS, "pairs", what)


def order_bias(shown: Shown, *, n_resamples: int = 2000, seed: int = 0) -> Measure:
    """Whether a reader whose first-shown review was against it adopts a verdict against it more
    than a reader, under the same split, whose first-shown review was with it."""
    minimum = f"{MIN_PAIRS} readers over {MIN_TOOLS} tools"
    if not shown.readers:
        why = "The runs had no rebuttal round (or no valid answer in it)."
        return absent("rebuttal_order", TITLE, METHOD, UNIT, ITEMS, minimum, why)
    readers: dict[tuple[str, str, tuple[str, str]], list[Pair]] = {}
    for p in shown.pairs:
        if p.shown > 1:  # one review read: no order
            readers.setdefault((p.run, p.tool, p.reader), []).append(p)
    rows = [
        (mine[0], any(p.position == 0 for p in mine), any(p.adopted for p in mine))
        for mine in readers.values()
    ]
    tools = sorted({p.tool for p, _, _ in rows})
    small = too_small(len(tools), MIN_TOOLS, "tools", "the effect of the order") or too_small(
        len(rows), MIN_PAIRS, "readers", "the effect of the order"
    )
    first = [adopted for _, against, adopted in rows if against]
    later = [adopted for _, against, adopted in rows if not against]
    details = {
        "first_against": {"readers": len(first), "adopted": sum(first)},
        "first_with": {"readers": len(later), "adopted": sum(later)},
        "readers": shown.readers,
        "orders_from_stored_prompts": shown.from_prompt,
        "orders_by_the_rule": shown.by_rule,
        "orders_not_reconstructed": shown.unreadable,
    }
    estimate = flat = None
    if small is None:
        index = {t: k for k, t in enumerate(tools)}
        strata = {s: k for k, s in enumerate(sorted({(p.shown, p.disagreeing) for p, _, _ in rows}))}
        sums = Sums.of(
            [index[p.tool] for p, _, _ in rows], [strata[(p.shown, p.disagreeing)] for p, _, _ in rows],
            [float(against) for _, against, _ in rows], [float(adopted) for _, _, adopted in rows],
            (len(tools), len(strata)),
        )  # fmt: skip
        estimate, flat = within_estimate(sums, n_resamples, seed)
    caveat = (
        "the order is drawn by a hash, independent of what the reviews say, so a difference is an "
        "effect of the position."
    )
    return Measure(
        "rebuttal_order", TITLE, METHOD, UNIT, ITEMS, len(rows), len(tools), minimum,
        reading(estimate, small, len(tools), UNIT, caveat, flat), estimate, small, details=details,
        noun="readers",
    )  # fmt: skip
