"""A leaderboard on the terminal: what `panel rank` prints at its end and `panel show` of a
ranking prints."""

from __future__ import annotations

import sys
from pathlib import Path

from ..report.leaderboard_file import Leaderboard
from ..text import for_console
from .apps import notices, out_console

__all__ = ["SHOWN", "print_board"]

#: the tools' lines printed (the whole board is in leaderboard.json)
SHOWN = 10


def print_board(
    board: Leaderboard, *, store_dir: Path, fmt: str = "table", elapsed: float | None = None
) -> None:
    """The board's title, its first `SHOWN` tools, how it was asked and where it is written
    (`fmt` "json": the whole board on stdout); `elapsed`: the time taken, when just made."""
    if fmt == "json":
        sys.stdout.write(board.model_dump_json(indent=2) + "\n")
        notices.say("wrote", f"wrote {store_dir / 'leaderboard.json'}", folder=str(store_dir))
        return
    out_console.print(for_console(board.title), markup=False, highlight=False, soft_wrap=True)
    for t in board.tools[:SHOWN]:
        interval = f"[{t.low:+.2f}, {t.high:+.2f}]" if t.low is not None and t.high is not None else "too few"
        places = f"rank {t.rank_low}-{t.rank_high}" if t.rank_low is not None else "rank ?"
        line = (
            f"{t.rank:>3}. {for_console(t.name)} ({for_console(t.tool_id)})  {t.strength:+.2f} {interval}  "
            f"{places}  {t.wins}W {t.losses}L {t.ties}T {t.failed}F"
        )
        out_console.print(line, markup=False, highlight=False, soft_wrap=True)
    if len(board.tools) > SHOWN:
        out_console.print(f"  ... and {len(board.tools) - SHOWN} more in leaderboard.json", markup=False)
    j = board.judgements
    out_console.print(
        f"{board.pairs_asked} of {board.pairs_possible} pairs asked, {board.asks} asks"
        + (f" in {elapsed:.1f}s" if elapsed is not None else "")
        + "; "
        f"judgements: {j.consistent} consistent, {j.ties} ties (picked by position), {j.failed} failed; "
        f"stopped: {board.stopped}" + (f"; ${board.cost_usd:.4f}" if board.cost_usd is not None else ""),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if board.note:
        out_console.print(for_console(board.note), markup=False, highlight=False, soft_wrap=True)
    out_console.print(
        f"{'wrote' if elapsed is not None else 'the whole board:'} "
        f"{for_console(store_dir / 'leaderboard.json')} (and leaderboard.md, leaderboard.html)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
