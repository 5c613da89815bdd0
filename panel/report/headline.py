"""The record's headline: which tool the panel backs, a tie, or a partial run's standing; with
head-to-head judgements, their result beside it, and one sentence when the two disagree."""

from __future__ import annotations

from collections.abc import Sequence

from .record import Headline, HeadToHeadSection, RunState, ToolCard

__all__ = ["headline", "join_names"]

# How a partial run's headline names its status: "the run stopped", "the run is still running".
_STATUS_WORDS = {
    "running": "is still running",
    "stopped": "stopped",
    "failed": "failed",
    "interrupted": "was interrupted",
    "done": "is marked done",
}


def _leaders(cards: Sequence[ToolCard]) -> tuple[list[ToolCard], str]:
    """The tools with the highest ship share, and the others as "Name 50% (1 of 2)"."""
    best = max(c.panel.pct for c in cards if c.panel.pct is not None)
    top = [c for c in cards if c.panel.pct == best]
    against = "; ".join(
        f"{c.name} {c.panel.display} ({c.panel.ship} of {c.panel.valid})" for c in cards if c not in top
    )
    return top, against


def headline(cards: Sequence[ToolCard], state: RunState, duels: HeadToHeadSection | None = None) -> Headline:
    """The verdict count's headline; with `duels` (two tools or more), the head-to-head result
    beside it and, in a finished run, a sentence when the two favour different tools."""
    told = _verdicts(cards, state)
    if duels is None or len(cards) < 2:
        return told
    names = {c.id: c.name for c in cards}
    result, pick, chooses = _head_to_head(duels, [c.id for c in cards], names)
    disagreement = None
    scored = any(c.panel.pct is not None for c in cards)
    if chooses and not state.missing and scored and told.pick != pick:
        count = f"favours {names[told.pick]}" if told.pick else "is a tie"
        duel = (
            f"favours {names[pick]}"
            if pick
            else ("is level" if len(cards) == 2 else "has no tool that leads every pair")
        )
        disagreement = f"The two disagree: the verdict count {count}, the head-to-head {duel}."
    update = {"head_to_head": result, "head_to_head_pick": pick, "disagreement": disagreement}
    return told.model_copy(update=update)


def _head_to_head(
    duels: HeadToHeadSection, ids: Sequence[str], names: dict[str, str]
) -> tuple[str, str | None, bool]:
    """The head-to-head result over the pairs of `ids` in words; its pick, the one tool that
    leads every pair it is in (more consistent wins than the other tool of each: a sum of wins
    over pairs would favour a tool judged more often, as under recusal); and whether it rests on
    any consistent judgement at all (when none, it does not choose and cannot disagree)."""
    wins = dict.fromkeys(ids, 0)
    pairs = [p for p in duels.pairs if all(t in wins for t in p.tools)]
    for p in pairs:
        for tid, n in zip(p.tools, p.wins, strict=True):
            wins[tid] += n
    ties, failed = sum(p.ties for p in pairs), sum(p.failed for p in pairs)
    over = "" if len(pairs) == 1 else f" over {len(pairs)} pairs"
    asked = f"Head to head{over} (each judge asked twice, the order swapped)"
    if not pairs:
        return f"{asked}: no pair of these tools was judged.", None, False
    if not any(wins.values()):
        if not ties:
            return f"{asked}: every answer failed, so the head-to-head does not choose.", None, False
        why = f"{ties} tied by a pick by position, {failed} failed"
        return (
            f"{asked}: no judge was consistent under swap ({why}), so the head-to-head does not choose.",
            None,
            False,
        )
    judged = {t for p in pairs for t in p.tools}
    leaders = [t for t in ids if t in judged and all(p.leader == t for p in pairs if t in p.tools)]
    pick = leaders[0] if len(leaders) == 1 else None
    ranked = sorted(ids, key=lambda tid: -wins[tid])
    said = ", ".join(f"{names[t]} {wins[t]}" for t in ranked)
    text = f"{asked}, consistent wins: {said}; {ties} tied by a pick by position, {failed} failed."
    if len(pairs) > 1:
        text += f" {names[pick]} leads every pair." if pick else " No tool leads every pair."
    return text, pick, True


def _verdicts(cards: Sequence[ToolCard], state: RunState) -> Headline:
    question = "Should you ship with it?" if len(cards) == 1 else "Which one should you ship with?"
    scored = any(c.panel.pct is not None for c in cards)
    if state.missing:
        return Headline(question=question, pick=None, text=_so_far(cards, state, scored))
    if not scored:
        return Headline(question=question, pick=None, text="No verdict: every review failed.")
    if len(cards) == 1:
        card = cards[0]
        word = "ships" if (card.panel.pct or 0) >= 50 else "skips"
        p = card.panel
        text = f"The panel {word} {card.name}: {p.ship} of {p.valid} say ship ({p.display})."
        return Headline(question=question, pick=card.id if word == "ships" else None, text=text)
    top, against = _leaders(cards)
    if len(top) == 1:
        pick = top[0]
        p = pick.panel
        text = f"Ship with {pick.name}: the panel backs it {p.ship} of {p.valid} ({p.display})"
        text += f", against {against}." if against else "."
        if (p.pct or 0) < 50:
            text += " Even so, most reviewers would skip it."
        return Headline(question=question, pick=pick.id, text=text)
    tied = join_names([c.name for c in top])
    text = f"A tie at {top[0].panel.display}: the panel backs {tied} alike."
    if against:
        text += f" Behind them: {against}."
    text += " Read the scorecard: the reasons differ more than the numbers."
    return Headline(question=question, pick=None, text=text)


def _so_far(cards: Sequence[ToolCard], state: RunState, scored: bool) -> str:
    """A partial run's standing, worded so that it cannot pass for the final verdict."""
    said = _STATUS_WORDS.get(state.status, f"is {state.status}")
    text = f"Partial run: {state.stored} of {state.planned} reviews in; the run {said}."
    if not scored:
        return f"{text} No valid review yet."
    if len(cards) == 1:
        p = cards[0].panel
        return f"{text} So far {p.ship} of {p.valid} say ship on {cards[0].name} ({p.display})."
    top, against = _leaders(cards)
    if len(top) == 1:
        p = top[0].panel
        text += f" So far {top[0].name} leads: {p.ship} of {p.valid} say ship ({p.display})"
        return text + (f", against {against}." if against else ".")
    text += f" So far {join_names([c.name for c in top])} are level at {top[0].panel.display}."
    return text + (f" Behind them: {against}." if against else "")


def join_names(names: Sequence[str]) -> str:
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]
