"""The record's self-consistency: a run's later repeats read against repeat 0.

Repeat 0 is the panel: every share, scorecard and split reads it alone. Later repeats ask
the same question again, so a changed verdict is test-retest noise of one rater, not
disagreement between raters; it is reported here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..catalog import Tool
from ..personas import Persona
from ..store import ReviewRow
from .record import RaterConsistency, RepeatCell, SelfConsistency

__all__ = ["self_consistency"]

_LISTED = 5  # changed cells named in the summary before "and N more"


def _share(agree: int, compared: int) -> tuple[float | None, str]:
    pct = 100.0 * agree / compared if compared else None
    return pct, "—" if pct is None else f"{pct:.0f}%"


def _cell(tool: Tool, persona: Persona, member: str, rater: str, verdicts: list[str | None]) -> RepeatCell:
    first, later = verdicts[0], [v for v in verdicts[1:] if v is not None]
    compared = len(later) if first is not None else 0
    agree = sum(1 for v in later if v == first) if first is not None else 0
    return RepeatCell(
        tool_id=tool.id,
        persona_id=persona.id,
        rater=rater,
        member=member,
        verdicts=verdicts,
        agree=agree,
        compared=compared,
        stable=agree == compared if compared else None,
    )


def self_consistency(
    tools: Sequence[Tool],
    personas: Sequence[Persona],
    members: Sequence[str],
    reviews: Sequence[ReviewRow],
    repeats: int,
    rater_name: Callable[[Persona, str], str],
) -> SelfConsistency | None:
    """Every cell's verdict per repeat and how often later repeats give repeat 0's verdict.

    None when the run has a single repeat. A failed or missing repeat is null and is not
    compared: only two verdicts can agree or differ.
    """
    if repeats < 2:
        return None
    verdict = {(r.tool_id, r.persona_id, r.member, r.repeat): r.verdict if r.valid else None for r in reviews}
    cells: list[RepeatCell] = []
    raters: list[RaterConsistency] = []
    for member in members:
        for persona in personas:
            name = rater_name(persona, member)
            mine = [
                _cell(
                    tool,
                    persona,
                    member,
                    name,
                    [verdict.get((tool.id, persona.id, member, k)) for k in range(repeats)],
                )
                for tool in tools
            ]
            agree, compared = sum(c.agree for c in mine), sum(c.compared for c in mine)
            pct, display = _share(agree, compared)
            raters.append(
                RaterConsistency(
                    persona_id=persona.id,
                    member=member,
                    rater=name,
                    agree=agree,
                    compared=compared,
                    pct=pct,
                    display=display,
                )
            )
            cells += mine
    agree, compared = sum(r.agree for r in raters), sum(r.compared for r in raters)
    pct, display = _share(agree, compared)
    names = {t.id: t.name for t in tools}
    return SelfConsistency(
        repeats=repeats,
        agree=agree,
        compared=compared,
        pct=pct,
        display=display,
        raters=raters,
        cells=cells,
        summary=_summary(repeats, agree, compared, display, cells, names),
    )


def _summary(
    repeats: int, agree: int, compared: int, display: str, cells: Sequence[RepeatCell], names: dict[str, str]
) -> str:
    head = f"Self-consistency over {repeats} repeats (kept out of the panel's figures, which read repeat 0):"
    if not compared:
        return f"{head} no later repeat has a verdict to compare with repeat 0."
    text = f"{head} later repeats give repeat 0's verdict in {agree} of {compared} comparisons ({display})."
    changed = [c for c in cells if c.stable is False]
    if not changed:
        return text + " No reviewer changed its verdict."
    listed = "; ".join(
        f"{names.get(c.tool_id, c.tool_id)} · {c.rater} ({' → '.join(v or 'failed' for v in c.verdicts)})"
        for c in changed[:_LISTED]
    )
    more = f"; and {len(changed) - _LISTED} more" if len(changed) > _LISTED else ""
    return f"{text} Changed on a repeat: {listed}{more}."
