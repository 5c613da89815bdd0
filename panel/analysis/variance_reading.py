"""Plain sentences a researcher can quote from a variance split, each backed by its intervals.

A part "reaches 0" when its interval's lower end prints as 0.0%: only then does a sentence
say a source does not matter. One source is said to matter more than another only when
their intervals do not overlap.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .bootstrap import Estimate

if TYPE_CHECKING:
    from .variance import PersonaSplit, VarianceSplit

__all__ = ["reading"]

_ZERO = 0.0005  # prints as 0.0%


def _reaches_zero(e: Estimate) -> bool:
    return e.low < _ZERO


def _pct(e: Estimate) -> str:
    digits = 1 if max(e.point, e.high) < 0.1 else 0
    return f"{e.point:.{digits}%} [{e.low:.{digits}%}, {e.high:.{digits}%}]"


def _points(point: float, low: float, high: float) -> str:
    return f"{100 * point:.1f} points [{100 * low:.1f}, {100 * high:.1f}]"


def _sources(split: VarianceSplit) -> list[str]:
    per, mem, pm = (split.component(n).share for n in ("persona", "member", "persona x member"))
    if _reaches_zero(per) and _reaches_zero(mem):
        if _reaches_zero(pm):
            return [
                "Judges do not differ systematically: "
                "the persona, member and persona x member shares all reach 0."
            ]
        lead = "Neither the personas nor the members (models) differ on their own: both shares reach 0."
    elif per.low > mem.high:
        lead = (
            "Disagreement between judges comes from the personas, not the members (models): "
            "the member share reaches 0 and lies below the persona share."
            if _reaches_zero(mem)
            else "Disagreement between judges comes more from the personas than from the members (models), "
            "though the members differ too."
        )
    elif mem.low > per.high:
        lead = (
            "Disagreement between judges comes from the members (models), not the personas: "
            "the persona share reaches 0 and lies below the member share."
            if _reaches_zero(per)
            else "Disagreement between judges comes more from the members (models) than from the personas, "
            "though the personas differ too."
        )
    else:
        lead = (
            "The data do not tell whether the personas or the members (models) matter more: "
            "their intervals overlap."
        )
    out = [lead]
    if pm.low > max(per.high, mem.high):
        out.append(
            f"Most of it comes from particular pairs: personas act differently on different members "
            f"(persona x member {_pct(pm)})."
        )
    elif not _reaches_zero(pm):
        out.append(f"Some personas also act differently on different members (persona x member {_pct(pm)}).")
    return out


def _persona(ps: PersonaSplit) -> str | None:
    off, own, members = ps.offset, ps.own, ps.members
    apart = off.low > 0 or off.high < 0
    if not apart and _reaches_zero(members):
        return None
    if apart:
        way = "more" if off.point > 0 else "less"
        size = _points(abs(off.point), min(abs(off.low), abs(off.high)), max(abs(off.low), abs(off.high)))
        text = f"{ps.persona} ships {size} {way} often than the panel"
    else:
        text = f"{ps.persona} ships as often as the panel on average"
    if not _reaches_zero(members):
        rms = _points(math.sqrt(members.point), math.sqrt(members.low), math.sqrt(members.high))
        text += f"{'; ' if apart else ', but '}its members move it by {rms} (root mean square)"
    if apart and own.low > members.high:
        text += "; that distance is the persona's own, " + (
            "not its members'" if _reaches_zero(members) else "more than its members'"
        )
    elif apart and members.low > own.high:
        text += "; that distance comes more from its members than from the persona itself"
    return text + "."


def reading(split: VarianceSplit, n_personas: int, n_members: int) -> list[str]:
    """Sentences for ``split`` of a panel of ``n_personas`` x ``n_members``."""
    if split.n_tools < 2:
        return [f"Too few tools with verdicts ({split.n_tools}) to split the variance."]
    if all(math.isnan(c.share.point) for c in split.components):
        return ["Every verdict is the same: there is no variance to split."]
    out = []
    if n_personas == 1 and n_members == 1:
        out.append(
            "With one judge the tool's part cannot be told from the judge's noise: all of it is residual."
        )
    elif n_personas == 1:
        out.append(
            "With one persona nothing varies by persona (those parts are 0), "
            "and tool x member cannot be told from the residual, so it is counted there."
        )
    elif n_members == 1:
        out.append(
            "With one member nothing varies by member (those parts are 0), "
            "and tool x persona cannot be told from the residual, so it is counted there."
        )
    parts = "; ".join(f"{c.name} {_pct(c.share)}" for c in split.components)
    out.append(
        f"Shares of the verdict variance over {split.n_tools} tools ({split.level:.0%} intervals): {parts}."
    )
    if split.truncated:
        out.append(
            f"Estimated below 0 and shown as 0: {', '.join(split.truncated)} (a part too small to tell "
            "from sampling noise); the shares are of the parts shown, so they add up to 100%."
        )
    residual = split.component("residual").share
    out.append(
        f"The residual, {_pct(residual)}, is what no part explains: one judge's verdict on one tool "
        "beyond the tool, persona and member (noise, and the tool x persona x member interaction "
        "it cannot be told from)."
    )
    if n_personas > 1 and n_members > 1:
        out += _sources(split)
    for name, count in (("persona", n_personas), ("member", n_members)):
        single = split.component(name).share
        if count > 1 and n_personas * n_members == count and not _reaches_zero(single):
            out.append(f"The {name}s differ: {name} {_pct(single)}.")
    if n_personas > 1:
        tp = split.component("tool x persona").share
        if not _reaches_zero(tp) and n_members > 1:
            out.append(f"Personas also rank tools differently (tool x persona {_pct(tp)}).")
        said = [s for s in map(_persona, split.by_persona) if s]
        if said:
            # An offset is from the panel's mean, which every persona moves: a persona that
            # ships far less drags the mean down and makes the others look more lenient.
            out.append(
                "Each persona below is measured from the panel's mean ship rate, which every "
                "persona moves, so one persona's distance shifts the others' too."
            )
        out += said
    if n_members > 1 and n_personas > 1:
        tm = split.component("tool x member").share
        if not _reaches_zero(tm):
            out.append(f"Members (models) also rank tools differently (tool x member {_pct(tm)}).")
    return out
