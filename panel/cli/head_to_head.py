"""What `panel compare --head-to-head` prints after the record: each pair's head-to-head result
across judges, and each judge's consistency under swap and position bias."""

from __future__ import annotations

from itertools import combinations

from ..report.aggregate import recusals_of
from ..report.head_to_head import answers_from_store, judge_bias, pair_results, tally
from ..report.record import Recusal
from ..store import Store
from ..text import for_console
from .apps import out_console

__all__ = ["print_head_to_head"]


def print_head_to_head(store: Store, run_id: str, tool_ids: list[str] | None = None) -> None:
    """The run's head-to-head answers, combined: nothing when it asked none. The pairs of
    `tool_ids`, or (None) the pairs asked, in the order first asked. A pair says which members
    recused from it (judging neither order, `recuse = "maker"`)."""
    results = pair_results(answers_from_store(store.head_to_heads(run_id)))
    if not results:
        return
    run = store.get_run(run_id)
    recusals = recusals_of(run.config) if run is not None else []
    out_console.print("\n[bold]Head-to-head[/] (each pair asked in both orders; a pick by position is a tie)")
    pairs = combinations(tool_ids, 2) if tool_ids is not None else dict.fromkeys(r.tools for r in results)
    for a, b in pairs:
        t = tally(results, (a, b))
        out_console.print(
            f"  {for_console(a)} vs {for_console(b)}: {for_console(a)} {t.wins[0]}, "
            f"{for_console(b)} {t.wins[1]}, ties {t.ties}, failed {t.failed}" + _recused(recusals, a, b)
        )
    for judge in judge_bias(results):
        out_console.print(
            f"  {for_console(judge.persona_id)} on {for_console(judge.member)}: "
            f"consistent under swap {judge.consistency.text()}; "
            f"first-shown share of inconsistent pairs {judge.position_bias.text()}"
            + (f"; failed {judge.failed}" if judge.failed else "")
        )


def _recused(recusals: list[Recusal], a: str, b: str) -> str:
    """`; recused: m1, m2` for the members that left the pair out, else nothing."""
    who = [r.member for r in recusals if a in r.tool_ids or b in r.tool_ids]
    return f"; recused: {', '.join(for_console(m) for m in who)}" if who else ""
