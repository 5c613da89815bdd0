"""The rebuttal round in the record: final verdicts, flips, both rounds' ship shares, and the
reviews whose own text names their persona or model (relabelling cannot hide those)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePath

from ..personas import Persona
from ..store import CellKey, RebuttalRow, ReviewRow
from .record import RebuttalMark, RebuttalRound, RoundShare, ScorecardEntry, ShipShare, ToolCard

__all__ = ["Rounds", "apply_rebuttals", "names_itself", "round_share"]

SHIP = "ship"
DASH = "—"


def round_share(reviews: Iterable[ReviewRow]) -> RoundShare:
    valid = [r for r in reviews if r.valid]
    ship = sum(1 for r in valid if r.verdict == SHIP)
    pct = 100.0 * ship / len(valid) if valid else None
    return RoundShare(ship=ship, valid=len(valid), pct=pct, display=DASH if pct is None else f"{pct:.0f}%")


def _mark(row: RebuttalRow) -> RebuttalMark:
    decision = row.decision if row.decision in ("keep", "change") else None
    return RebuttalMark(
        valid=row.valid,
        decision=decision,  # type: ignore[arg-type]
        why=row.why,
        verdict_before=row.verdict_before or "",
        verdict_after=row.verdict_after if row.valid else None,
        changed=row.changed,
        others=row.others,
        error=row.error,
        asks=max(1, row.asks),
    )


@dataclass
class Rounds:
    """A run's round-1 panel (repeat 0, as the models wrote it) and its rebuttal answers."""

    first: list[ReviewRow]
    marks: dict[CellKey, RebuttalMark] = field(default_factory=dict)

    @property
    def any(self) -> bool:
        return bool(self.marks)

    def annotate(self, card: ToolCard, personas: Sequence[Persona]) -> ToolCard:
        """A tool's card with each entry's rebuttal and self-naming, and both rounds' shares."""
        mine = [r for r in self.first if r.tool_id == card.id]
        by_persona = {p.id: p for p in personas}
        own = {(r.persona_id, r.member): r for r in mine}
        entries = []
        for e in card.scorecard:
            review = own.get((e.persona_id, e.member))
            mark = self.marks.get(CellKey(card.id, e.persona_id, e.member, 0))
            named = names_itself(review, by_persona.get(e.persona_id)) if review else []
            entries.append(e.model_copy(update={"rebuttal": mark, "names_itself": named}))
        return card.model_copy(
            update={
                "scorecard": entries,
                "panel": self._share(card.panel, mine, card.id),
                "panel_by_member": {
                    m: self._share(s, [r for r in mine if r.member == m], card.id, m)
                    for m, s in card.panel_by_member.items()
                },
            }
        )

    def _share(
        self, share: ShipShare, first: list[ReviewRow], tool_id: str, member: str | None = None
    ) -> ShipShare:
        flipped = sum(
            1
            for key, mark in self.marks.items()
            if mark.changed and key.tool_id == tool_id and (member is None or key.member == member)
        )
        note = f"{flipped} verdict{'' if flipped == 1 else 's'} changed after rebuttal" if flipped else None
        joined = "; ".join(n for n in (share.note, note) if n) or None
        return share.model_copy(
            update={"first_round": round_share(first), "changed_after_rebuttal": flipped, "note": joined}
        )

    def summary(self, final: Sequence[ReviewRow], entries: Iterable[ScorecardEntry]) -> RebuttalRound:
        marks = list(self.marks.values())
        valid = sum(m.valid for m in marks)
        changed = sum(m.changed for m in marks)
        pct = 100.0 * changed / valid if valid else None
        display = DASH if pct is None else f"{pct:.0f}%"
        first, after = round_share(self.first), round_share(r for r in final if r.repeat == 0)
        named = sum(1 for e in entries if e.names_itself)
        text = (
            f"Rebuttal round: {len(marks)} reviewers read the others' reviews; {changed} of {valid} "
            f"valid answers changed the verdict ({display}). Panel ship {first.display} in round 1, "
            f"{after.display} after the rebuttal."
        )
        if len(marks) > valid:
            text += f" {len(marks) - valid} answer{'s' if len(marks) - valid > 1 else ''} failed."
        if named:
            whose = "their" if named > 1 else "its"
            text += f" {named} review{'s' if named > 1 else ''} named {whose} own persona or model."
        return RebuttalRound(
            answers=len(marks),
            valid=valid,
            failed=len(marks) - valid,
            changed=changed,
            flip_pct=pct,
            display=display,
            first_round=first,
            after_rebuttal=after,
            names_itself=named,
            summary=text,
        )


def apply_rebuttals(
    reviews: Sequence[ReviewRow], rebuttals: Iterable[RebuttalRow]
) -> tuple[list[ReviewRow], Rounds]:
    """The reviews with each valid round-2 verdict in place of round 1's (repeat 0 only), and
    the rounds as they were."""
    rows = {r.key: r for r in rebuttals if r.repeat == 0}
    rounds = Rounds(first=[r for r in reviews if r.repeat == 0], marks={k: _mark(r) for k, r in rows.items()})
    if not rows:
        return list(reviews), rounds
    out = []
    for review in reviews:
        answer = rows.get(review.key)
        if answer is None or not answer.valid or not review.valid or answer.verdict_after is None:
            out.append(review)
            continue
        data = {**(review.data or {}), "verdict": answer.verdict_after}
        out.append(replace(review, data=data, verdict=answer.verdict_after))
    return out, rounds


def _model_names(review: ReviewRow) -> list[str]:
    names = [review.member]
    model = review.model.strip()
    if model:
        names.append(model)
        stem = PurePath(model).name.removesuffix(".gguf")
        names.append(stem)
    return [n for n in dict.fromkeys(names) if len(n) >= 3 and n != review.backend]


def names_itself(review: ReviewRow, persona: Persona | None) -> list[str]:
    """The names of its own persona (id, name) or model (member label, model) that a review's
    own text gives, matched as whole words, case aside."""
    data = review.data or {}
    parts = [str(data.get("review") or ""), str(review.verdict_note or "")]
    parts += [str(v) for v in (data.get("answers") or {}).values()]
    text = "\n".join(parts)
    candidates = [review.persona_id, *([persona.name] if persona else []), *_model_names(review)]
    found = []
    for name in dict.fromkeys(candidates):
        spaced = name.replace("_", " ")
        for form in dict.fromkeys((name, spaced)):
            if re.search(rf"(?<!\w){re.escape(form)}(?!\w)", text, re.IGNORECASE):
                found.append(name)
                break
    return found
