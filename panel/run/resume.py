"""The command that finishes a run, with the options it must repeat, and which run
`--resume` names."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from ..store import UNFINISHED, Store
from .batch import DEFAULT_POLL_S
from .runref import resolve_run

__all__ = ["budget_resume_command", "resume_args", "resume_command", "resume_target"]


def resume_command(run_id: str, extra: Sequence[str] = ()) -> str:
    """The command that finishes a run, with the options it must repeat (--out, --max-cost ...)."""
    return shlex.join(["panel", "review", "--resume", run_id, *extra])


def resume_target(store: Store, resume: str, *, ranking: bool = False) -> str:
    """The run `--resume` names: a run id or a prefix of one; 'last' is the newest run that
    did not finish, a ranking for `panel rank` (`ranking`), else a review or comparison."""
    what = "unfinished ranking" if ranking else "unfinished run"
    return resolve_run(
        store,
        resume,
        newest=lambda: store.latest_run(*UNFINISHED, ranking=ranking),
        what=what,
        flag="--resume",
    )


def resume_args(
    out: Path,
    *,
    config: Path | None = None,
    no_cache: bool = False,
    prices: Path | None = None,
    max_cost: float | None = None,
    poll_interval: float | None = None,
    reask_live: bool = False,
) -> list[str]:
    """The options of this command that `panel review --resume` must be given again (the
    batch route's own ones only where they differ from the defaults)."""
    args: list[str] = []
    if out != Path("runs"):
        args += ["--out", str(out)]
    if config is not None:
        args += ["--config", str(config)]
    if prices is not None:
        args += ["--prices", str(prices)]
    if no_cache:
        args.append("--no-cache")
    if max_cost is not None:
        args += ["--max-cost", str(max_cost)]
    if poll_interval is not None and poll_interval != DEFAULT_POLL_S:
        args += ["--poll-interval", f"{poll_interval:g}"]
    if reask_live:
        args += ["--reask", "live"]
    return args


def budget_resume_command(run_id: str, resume_args: Sequence[str]) -> str:
    """The resume command with a larger budget for the user to fill in."""
    args = list(resume_args)
    if "--max-cost" in args:
        i = args.index("--max-cost")
        del args[i : i + 2]
    return resume_command(run_id, args) + " --max-cost MORE"
