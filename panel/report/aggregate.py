"""Turn a run's reviews into a comparison record: shares, split, pricing, headline.

One rule for repeats: repeat 0 of each cell is the panel, and every figure, scorecard and
split reads it alone. Later repeats feed only `self_consistency` (see panel.report.repeats).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import get_args

from ..catalog import Tool
from ..personas import Persona
from ..store import CellKey, EditRow, HeadToHeadRow, RebuttalRow, ReviewRow
from .edited import Marks, apply_edits, changed_note
from .head_to_head import JudgeBias, answers_from_store, judge_bias, pair_results, section
from .headline import headline, join_names
from .rebuttal import apply_rebuttals
from .record import (
    Answer,
    CommunityRead,
    CommunityVsPanel,
    ComparisonRecord,
    Confidence,
    Counts,
    EditMark,
    Enforced,
    EntryRead,
    MemberDisagreement,
    PanelInfo,
    PersonaAcross,
    PersonaInfo,
    PricingSide,
    Recusal,
    ReviewerSplit,
    RunState,
    ScorecardEntry,
    ShipShare,
    ToolCard,
    ToolSplit,
)
from .repeats import self_consistency

__all__ = ["build_record", "community_read", "entry_read", "recusals_of", "ship_share"]

SHIP = "ship"
DASH = "—"

_ENTRY_LABELS = {
    "free": "Free",
    "freemium": "Freemium",
    "paid": "Paid",
    "enterprise": "Enterprise",
    "unknown": "Unknown",
}
_ENTRY_REASONS = {
    "free": "No charge to use.",
    "freemium": "A free tier, with paid plans above it.",
    "paid": "Pay to use, from the first request.",
    "enterprise": "Priced by contract with sales.",
    "unknown": "The catalog does not say how it is priced.",
}


def _pct(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


def _show(pct: float | None) -> str:
    return DASH if pct is None else f"{pct:.0f}%"


def ship_share(reviews: Sequence[ReviewRow], changed: Collection[CellKey] = ()) -> ShipShare:
    """Ship verdicts over valid reviews; failed reviews are counted but never in the share.

    `changed` holds the cells whose verdict an editor changed: the share says how many."""
    valid = [r for r in reviews if r.valid]
    ship = sum(1 for r in valid if r.verdict == SHIP)
    pct = _pct(ship, len(valid))
    edited = sum(1 for r in valid if r.key in changed) if changed else 0
    return ShipShare(
        ship=ship,
        valid=len(valid),
        failed=len(reviews) - len(valid),
        pct=pct,
        display=_show(pct),
        changed_by_editor=edited,
        note=changed_note(edited),
    )


def community_read(tool: Tool) -> CommunityRead:
    votes = tool.community
    ship, skip = (votes.ship, votes.skip) if votes else (0, 0)
    pct = _pct(ship, ship + skip)
    return CommunityRead(ship=ship, skip=skip, total=ship + skip, pct=pct, display=_show(pct))


def entry_read(tool: Tool) -> EntryRead:
    model = tool.pricing.model
    reason = tool.pricing.note.strip() or _ENTRY_REASONS[model]
    return EntryRead(label=_ENTRY_LABELS[model], pricing_model=model, reason=reason)  # type: ignore[arg-type]


def build_record(
    run_id: str,
    created_at: float,
    tools: Sequence[Tool],
    personas: Sequence[Persona],
    members: Sequence[str],
    reviews: Sequence[ReviewRow],
    *,
    status: str = "done",
    repeats: int = 1,
    edits: Iterable[EditRow] = (),
    rebuttals: Iterable[RebuttalRow] = (),
    confidence: Mapping[str, Confidence] | None = None,
    recusals: Sequence[Recusal] = (),
    head_to_heads: Iterable[HeadToHeadRow] = (),
    names: Mapping[str, str] | None = None,
    judged: Sequence[JudgeBias] | None = None,
) -> ComparisonRecord:
    """The record of a run; `status` and `repeats` come from the store's run row and plan.

    Reviews of repeat 0 make the panel; later repeats only make `self_consistency`, which
    reads the models' own verdicts. `edits` (the store's `edits(run_id)`) put an editor's
    text in place of the model's, marked in each entry's `edited_by_editor`. `rebuttals`
    (the store's `rebuttals(run_id)`) put each valid round-2 verdict in place of round 1's
    (before an editor's), with both rounds in the record (`panel.report.rebuttal`).
    `confidence` (``panel.report.confidence.run_confidence``, by tool id) fills each card's.
    `recusals` (`recusals_of` the run's config) name the cells never planned: no review of
    them is missing, and no share counts them. `head_to_heads` are the run's head-to-head
    answers (the record keeps the pairs with one of its tools); the judges' rates are read from
    all of them, or are `judged` when given (the same for every tool record of a run).
    """
    models_own = reviews
    reviews, rounds = apply_rebuttals(reviews, rebuttals)
    reviews, marks = apply_edits(reviews, edits)
    by_persona = {p.id: p for p in personas}
    multi = len(members) > 1

    def rater_name(persona_name: str, member: str) -> str:
        return f"{persona_name} ({member})" if multi else persona_name

    def rater(r: ReviewRow) -> str:
        name = by_persona[r.persona_id].name if r.persona_id in by_persona else r.persona_id
        return rater_name(name, r.member)

    ids = {tool.id for tool in tools}
    recusals = [
        r.model_copy(update={"tool_ids": kept})
        for r in recusals
        if (kept := [t for t in r.tool_ids if t in ids]) and r.member in members
    ]
    recused = {(r.member, t) for r in recusals for t in r.tool_ids}
    panel = [r for r in reviews if r.repeat == 0]
    cards = [_card(tool, personas, members, panel, marks, recused) for tool in tools]
    if rounds.any:
        cards = [rounds.annotate(card, personas) for card in cards]
    if confidence:
        cards = [card.model_copy(update={"confidence": confidence.get(card.id)}) for card in cards]
    splits = [_tool_split(tool, [r for r in panel if r.tool_id == tool.id], rater) for tool in tools]
    verdict_of = _verdicts(panel)
    across = _across(tools, personas, members, verdict_of)
    between = _between_members(tools, personas, members, verdict_of) if multi else []
    valid = sum(1 for r in panel if r.valid)
    repeats = max([repeats, *(r.repeat + 1 for r in reviews)])
    planned = (len(tools) * len(members) - len(recused)) * len(personas) * repeats
    stored = len({r.key for r in reviews})
    missing = max(planned - stored, 0)
    state = RunState(
        status=status,
        planned=planned,
        stored=stored,
        missing=missing,
        complete=status == "done" and missing == 0,
    )
    names = {t.id: t.name for t in tools} if names is None else names
    asked = answers_from_store(head_to_heads)
    duels = section(
        (a for a in asked if a.first in ids or a.second in ids),
        names,
        lambda persona_id, member: rater_name(
            by_persona[persona_id].name if persona_id in by_persona else persona_id, member
        ),
        # a judge's rates over every pair it answered in the run
        judged=judge_bias(pair_results(asked)) if judged is None else judged,
    )
    return ComparisonRecord(
        run_id=run_id,
        created_at=datetime.fromtimestamp(created_at, UTC).isoformat(timespec="seconds"),
        title=" vs ".join(tool.name for tool in tools),
        tools=cards,
        panel=PanelInfo(
            members=list(members),
            personas=[PersonaInfo(id=p.id, name=p.name, lens=p.lens) for p in personas],
        ),
        headline=headline(cards, state, duels),
        split=ReviewerSplit(
            within_tools=splits,
            across_tools=across,
            between_members=between,
            summary=_split_summary(splits, across, between, tools),
        ),
        pricing=[
            PricingSide(tool_id=c.id, name=c.name, label=c.entry.label, reason=c.entry.reason) for c in cards
        ],
        community_vs_panel=[_community_vs_panel(c) for c in cards],
        counts=Counts(reviews=len(panel), valid=valid, failed=len(panel) - valid),
        run=state,
        self_consistency=self_consistency(
            tools, personas, members, models_own, repeats, lambda p, m: rater_name(p.name, m)
        ),
        rebuttal=rounds.summary(panel, (e for c in cards for e in c.scorecard)) if rounds.any else None,
        recusals=recusals,
        head_to_head=duels,
    )


def recusals_of(config: Mapping[str, object]) -> list[Recusal]:
    """The recusals a run's config records (`panel.run.plan.start_run`); none in a run
    recorded before members had makers."""
    makers = config.get("makers")
    recused = config.get("recused")
    if not isinstance(makers, dict) or not isinstance(recused, dict):
        return []
    return [
        Recusal(member=member, maker=str(makers.get(member)), tool_ids=list(tool_ids))
        for member, tool_ids in recused.items()
        if tool_ids
    ]


def _card(
    tool: Tool,
    personas: Sequence[Persona],
    members: Sequence[str],
    reviews: Sequence[ReviewRow],
    marks: Marks,
    recused: Collection[tuple[str, str]] = (),
) -> ToolCard:
    # a recused member's review (none is asked; one stored anyway) is in no share
    mine = [r for r in reviews if r.tool_id == tool.id and (r.member, tool.id) not in recused]
    order = {(p.id, m): i for i, (p, m) in enumerate((p, m) for m in members for p in personas)}
    mine.sort(key=lambda r: order.get((r.persona_id, r.member), len(order)))
    by_persona = {p.id: p for p in personas}
    changed = {key for key, found in marks.items() if any(m.field == "verdict" for m in found)}
    return ToolCard(
        id=tool.id,
        name=tool.name,
        category=tool.category,
        tagline=tool.tagline,
        description=tool.description,
        links=tool.links,
        facts=tool.facts,
        panel=ship_share(mine, changed),
        panel_by_member={
            m: ship_share([r for r in mine if r.member == m], changed)
            for m in members
            if (m, tool.id) not in recused
        },
        community=community_read(tool),
        entry=entry_read(tool),
        scorecard=[_entry(r, by_persona.get(r.persona_id), marks.get(r.key, [])) for r in mine],
        recused=[m for m in members if (m, tool.id) in recused],
    )


def _enforced(value: str | None) -> Enforced | None:
    """A stored enforcement the record knows, else None (an older or foreign value)."""
    known: tuple[Enforced, ...] = get_args(Enforced)
    return next((k for k in known if k == value), None)


def _entry(r: ReviewRow, persona: Persona | None, marks: list[EditMark]) -> ScorecardEntry:
    answers: list[Answer] = []
    if r.data and persona is not None:
        given = r.data.get("answers", {})
        answers = [
            Answer(key=q.key, question=q.question, answer=str(given.get(q.key, "")))
            for q in persona.questions
        ]
    return ScorecardEntry(
        persona_id=r.persona_id,
        persona_name=persona.name if persona else r.persona_id,
        lens=persona.lens if persona else "",
        member=r.member,
        valid=r.valid,
        verdict=r.verdict,
        verdict_note=r.verdict_note,
        review=r.data.get("review") if r.data else None,
        answers=answers,
        error=r.error,
        asks=max(1, r.asks),
        repeat=r.repeat,
        enforced=_enforced(r.enforced),
        edited_by_editor=marks,
    )


def _tool_split(tool: Tool, reviews: Sequence[ReviewRow], name_of: Callable[[ReviewRow], str]) -> ToolSplit:
    valid = [r for r in reviews if r.valid]
    by_verdict: dict[str, list[str]] = {}
    for r in valid:
        by_verdict.setdefault(r.verdict or "", []).append(name_of(r))
    failed = [name_of(r) for r in reviews if not r.valid]
    unanimous = len(by_verdict) <= 1
    if not by_verdict:
        summary = f"No valid review of {tool.name}."
    elif unanimous:
        (word,) = by_verdict
        summary = f"Unanimous on {tool.name}: every valid review says {word}."
    else:
        # The largest group is the panel's view; everyone else is named as dissenting.
        ranked = sorted(by_verdict.items(), key=lambda kv: (-len(kv[1]), kv[0] != SHIP, kv[0]))
        tally = "–".join(str(len(names)) for _, names in ranked)
        words = "/".join(word for word, _ in ranked)
        dissent = "; ".join(
            f"{join_names(names)} {'says' if len(names) == 1 else 'say'} {word}" for word, names in ranked[1:]
        )
        summary = f"{tool.name} splits the panel {tally} ({words}): {dissent}."
    if failed:
        summary += f" {len(failed)} review{'s' if len(failed) > 1 else ''} failed."
    return ToolSplit(
        tool_id=tool.id,
        unanimous=unanimous,
        ship=by_verdict.get(SHIP, []),
        skip=by_verdict.get("skip", []),
        other=[
            f"{name}: {word}"
            for word, names in by_verdict.items()
            if word not in (SHIP, "skip")
            for name in names
        ],
        failed=failed,
        summary=summary,
    )


# A cell's valid verdict, or None when its review failed; keyed (tool, persona, member).
_Verdicts = dict[tuple[str, str, str], str | None]


def _verdicts(panel: Sequence[ReviewRow]) -> _Verdicts:
    return {(r.tool_id, r.persona_id, r.member): r.verdict if r.valid else None for r in panel}


def _across(
    tools: Sequence[Tool],
    personas: Sequence[Persona],
    members: Sequence[str],
    verdict_of: _Verdicts,
) -> list[PersonaAcross]:
    rows = []
    for member in members:
        for p in personas:
            verdicts = {t.id: verdict_of.get((t.id, p.id, member)) for t in tools}
            known = list(verdicts.values())
            splits = None if None in known else len(set(known)) > 1
            rows.append(
                PersonaAcross(
                    persona_id=p.id,
                    persona_name=p.name,
                    member=member,
                    verdicts=verdicts,
                    splits_tools=splits,
                )
            )
    return rows


def _between_members(
    tools: Sequence[Tool],
    personas: Sequence[Persona],
    members: Sequence[str],
    verdict_of: _Verdicts,
) -> list[MemberDisagreement]:
    out = []
    for t in tools:
        for p in personas:
            verdicts = {m: verdict_of.get((t.id, p.id, m)) for m in members}
            if len({v for v in verdicts.values() if v is not None}) > 1:
                out.append(MemberDisagreement(tool_id=t.id, persona_id=p.id, verdicts=verdicts))
    return out


def _split_summary(
    splits: Sequence[ToolSplit],
    across: Sequence[PersonaAcross],
    between: Sequence[MemberDisagreement],
    tools: Sequence[Tool],
) -> str:
    parts = [s.summary for s in splits]
    if len(tools) > 1:
        apart = [a for a in across if a.splits_tools]
        if apart:
            names = join_names([a.persona_name for a in apart])
            parts.append(f"Across the tools, {names} {'tells' if len(apart) == 1 else 'tell'} them apart.")
        else:
            parts.append("Across the tools, no reviewer tells them apart.")
    if between:
        parts.append(
            f"The models disagree on {len(between)} of {len(tools) * len({a.persona_id for a in across})}"
            " tool-and-persona pairs."
        )
    return " ".join(parts)


def _community_vs_panel(card: ToolCard) -> CommunityVsPanel:
    cpct, ppct = card.community.pct, card.panel.pct
    gap = ppct - cpct if cpct is not None and ppct is not None else None
    if cpct is None:
        note = f"No community votes yet; the panel's {card.panel.display} stands alone."
    elif ppct is None:
        note = f"The community says {card.community.display} ship; the panel has no valid review."
    elif abs(gap or 0) < 10:
        note = (
            f"The panel ({card.panel.display}) and the community ({card.community.display} of "
            f"{card.community.total} votes) roughly agree."
        )
    else:
        side = "warmer" if (gap or 0) > 0 else "cooler"
        note = (
            f"The panel ({card.panel.display}) is {abs(gap or 0):.0f} points {side} than the "
            f"community ({card.community.display} of {card.community.total} votes)."
        )
    return CommunityVsPanel(
        tool_id=card.id,
        name=card.name,
        community_pct=cpct,
        community_votes=card.community.total,
        panel_pct=ppct,
        gap=gap,
        note=note,
    )
