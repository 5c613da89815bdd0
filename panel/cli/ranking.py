"""`panel rank`: rank a category's tools (or a list of tools) from head-to-head judgements,
pairs chosen adaptively, and write runs/<run id>/leaderboard.json."""

from __future__ import annotations

import asyncio
import itertools
import math
import re
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import typer

from ..analysis.leaderboard_fit import BoardInputs, build_leaderboard
from ..analysis.pair_choice import Pair, Ranker, default_budget
from ..backends.base import Sampling
from ..catalog import Catalog, load_catalog
from ..config import load_config
from ..errors import UserError
from ..report.files import write_atomic
from ..report.head_to_head import PairResult, answers_from_store, pair_results
from ..report.leaderboard_file import Leaderboard, Stopped
from ..report.leaderboard_render import write_leaderboard_pages
from ..run.ending import store_errors
from ..run.head_to_head import judges_pair
from ..run.plan import Plan, RunOptions, default_catalog, plan_resume, plan_run, require_prices, start_run
from ..run.pricing import charges
from ..run.ranking import estimate_rank, run_ranking, stored_results
from ..run.resume import resume_target
from ..store import Store
from .apps import err_console, notices
from .board_lines import print_board
from .execute import RunInterrupted
from .options import (
    ConfigPath,
    MaxTokens,
    Members,
    PersonaIds,
    PersonasDir,
    ProgressMode,
)
from .progress import Reporter

__all__ = ["Budget", "parse_budget", "rank_tools"]

_PAIRS = re.compile(r"\s*(\d+)\s*pairs?\s*", re.I)
_USD = re.compile(r"\s*\$\s*(\d+(?:\.\d*)?|\.\d+)\s*")


class Budget:
    """`--budget`: a number of pairs ("60 pairs") or a cost in USD ("$0.50")."""

    def __init__(self, text: str, pairs: int | None, usd: float | None) -> None:
        self.text, self.pairs, self.usd = text, pairs, usd


def parse_budget(text: str | None) -> Budget | None:
    if text is None:
        return None
    if m := _PAIRS.fullmatch(text):
        pairs = int(m.group(1))
        if pairs < 1:
            raise UserError(f"--budget: '{text}' asks no pair; give at least '1 pairs'")
        return Budget(f"{pairs} pairs", pairs, None)
    if m := _USD.fullmatch(text):
        usd = float(m.group(1))
        if not math.isfinite(usd):  # 400 digits read as infinity: no cap at all
            raise UserError(f"--budget: '{text[:40]}...' is too large to be a cost; give dollars ('$0.50')")
        if usd <= 0:
            raise UserError(f"--budget: '{text}' allows no spending; give more than $0")
        return Budget(f"${usd:g}", None, usd)
    raise UserError(
        f"--budget: '{text}' is not a budget: give a number of pairs ('60 pairs') or dollars ('$0.50')"
    )


def _chosen(catalog: Catalog, category: str | None, tools: str | None) -> tuple[list[str], str | None]:
    """The tool ids to rank and the category's name as the catalog spells it."""
    if (category is None) == (tools is None):
        raise UserError("panel rank needs --category C or --tools a,b,c (one of the two)")
    if tools is not None:
        ids = [t.strip() for t in tools.split(",") if t.strip()]
        return [catalog.get(t).id for t in ids], None
    assert category is not None
    found = [t for t in catalog if t.category.casefold() == category.strip().casefold()]
    if not found:
        known = sorted({t.category for t in catalog})
        listed = ", ".join(repr(k) for k in known[:12]) + (
            f" and {len(known) - 12} more" if len(known) > 12 else ""
        )
        raise UserError(f"{catalog.path}: no category '{category}' (its categories are {listed})")
    return [t.id for t in found], found[0].category


def _judgeable(plan: Plan) -> Callable[[str, str], bool]:
    """Whether some member may judge a pair (it recuses from neither tool's maker)."""
    tools = {t.id: t for t in plan.tools}
    return lambda a, b: any(judges_pair(m.backend, tools[a], tools[b]) for m in plan.members)


def _settings(plan: Plan, category: str | None, budget: Budget | None, seed: int) -> dict[str, Any]:
    n = len(plan.tools)
    cap = budget.pairs if budget is not None and budget.pairs is not None else default_budget(n)
    judgeable = _judgeable(plan)
    possible = sum(judgeable(a.id, b.id) for a, b in itertools.combinations(plan.tools, 2))
    return {
        "category": category,
        "budget": budget.text if budget is not None else None,
        "max_pairs": min(cap, possible),
        "max_cost": budget.usd if budget is not None else None,
        "seed": seed,
    }


def rank_tools(
    category: str | None,
    tools: str | None,
    catalog: Path | None,
    backend: Members,
    persona: PersonaIds,
    personas_dir: PersonasDir,
    config: ConfigPath,
    prices: Path | None,
    budget: str | None,
    seed: int,
    fmt: Literal["table", "json"],
    resume: str | None,
    out: Path,
    max_tokens: MaxTokens,
    no_cache: bool,
    progress: ProgressMode,
) -> None:
    """`panel rank` itself (:mod:`panel.cli.rank` holds the command and its options)."""
    notices.mode = progress
    parsed = parse_budget(budget)
    panel_config = load_config(config)
    if resume is not None:
        if category or tools or catalog or backend or persona or budget:
            raise UserError(
                "--resume finishes a ranking as it was planned: give no category, tools, "
                "catalog, members, personas or budget"
            )
        if not (out / "panel.db").is_file():
            raise UserError(f"no run '{resume}': {out} holds no runs")
        plan, settings, run_id = _resumed(out, resume, prices)
    else:
        cat = load_catalog(catalog or default_catalog())
        ids, named = _chosen(cat, category, tools)
        if len(ids) < 2:
            given = f"category '{named}'" if named is not None else "--tools"
            raise UserError(f"a ranking needs at least two tools; {given} gives {len(ids)}")
        plan = plan_run(
            ids,
            catalog=cat,
            backends=backend or [],
            persona_ids=persona or [],
            personas_dir=personas_dir,
            sampling=Sampling(seed=seed),
            config=panel_config,
            prices=prices,
            max_tokens=max_tokens,
        )
        settings = _settings(plan, named, parsed, seed)
        require_prices(plan, settings["max_cost"])
        run_id = None
    asked = stored = 0
    if run_id is not None:
        with Store(out, readonly=True) as store:
            asked = len({frozenset(r.tools) for r in stored_results(store, run_id)})
            stored = len(store.head_to_heads(run_id))
        notices.chatter("resuming", f"resuming ranking {run_id}: {asked} pairs asked so far", run_id=run_id)
    _announce(plan, settings, asked, stored)
    options = RunOptions(
        use_cache=not no_cache,
        max_cost=settings["max_cost"],
        retry=panel_config.retry.policy(),
        kind="rank",
        settings={"rank": settings},
    )
    started = time.monotonic()
    with Store(out) as store:
        if run_id is None:
            run_id = start_run(plan, store, "panel " + shlex.join(sys.argv[1:]), options)
        board = _run(store, plan, run_id, settings, options, out)
    print_board(board, store_dir=out / run_id, fmt=fmt, elapsed=time.monotonic() - started)
    if board.stopped == "interrupted" or (board.stopped == "budget" and settings["max_cost"] is not None):
        raise typer.Exit(3)


def _resumed(out: Path, resume: str, prices: Path | None) -> tuple[Plan, dict[str, Any], str]:
    with Store(out, readonly=True) as store:
        run_id = resume_target(store, resume, ranking=True)
        run = store.get_run(run_id)
        assert run is not None
        if run.kind != "rank":
            raise UserError(f"run {run_id} is not a ranking: finish it with `panel review --resume {run_id}`")
        plan = plan_resume(store, run_id, prices)
    return plan, dict(run.config["rank"]), run_id


def _announce(plan: Plan, settings: dict[str, Any], asked: int = 0, stored: int = 0) -> None:
    """The estimate before the asks: pairs, asks and cost at most; for a resume, what is
    left (`asked` pairs asked so far, `stored` asks answered of them)."""
    n = len(plan.tools)
    est = estimate_rank(plan, max(settings["max_pairs"] - asked, 0))
    # a resume first asks the orders a stopped process left unasked in the pairs begun
    unasked = max(asked * 2 * est.judges - stored, 0)
    # and their cost, as that of the whole pairs they make up at most
    begun = estimate_rank(plan, math.ceil(unasked / (2 * est.judges))) if est.judges else est
    expected_usd = worst_usd = None
    if est.expected_usd is not None and begun.expected_usd is not None and begun.worst_usd is not None:
        expected_usd = est.expected_usd + begun.expected_usd
        worst_usd = (est.worst_usd or 0.0) + begun.worst_usd
    if settings["budget"] and settings["max_cost"] is None:
        why = "the budget"
    elif settings["max_pairs"] < default_budget(n):  # fewer pairs than N log2 N can be judged
        why = "every pair a judge may answer"
    else:
        why = "N log2 N, a sort's comparisons"
    what = settings["category"] or "the tools given"
    text = (
        f"rank: {n} tools ({what}) by {est.judges} judges ({len(plan.personas)} personas x "
        f"{len(plan.members)} members): at most {est.pairs} "
        + (f"more (of {settings['max_pairs']}; {asked} asked) " if asked else "")
        + f"of {est.pairs_possible} pairs ({why}), {est.asks + unasked} asks (each pair in both orders "
        "by every judge); fewer if the order settles first"
    )
    if expected_usd is not None and worst_usd is not None:
        text += f"; estimated ${expected_usd:.4f}, at most ${worst_usd:.4f}"
    if settings["max_cost"] is not None:
        text += f"; stops before spending more than ${settings['max_cost']:g}"
    notices.chatter(
        "plan",
        text,
        tools=n,
        judges=est.judges,
        pairs=est.pairs,
        pairs_possible=est.pairs_possible,
        asks=est.asks + unasked,
        expected_usd=expected_usd,
        worst_usd=worst_usd,
    )
    if not asked and est.pairs < n - 1:  # a first round cut short: a path through est.pairs + 1 tools
        notices.say(
            "too_few_pairs",
            f"warning: {est.pairs} pairs leave {n - 1 - est.pairs} of the {n} tools with no judgement "
            f"(the board cannot place them); ranking {n} tools takes at least {n - 1} pairs",
            pairs=est.pairs,
            unjudged=n - 1 - est.pairs,
        )


def _run(
    store: Store, plan: Plan, run_id: str, settings: dict[str, Any], options: RunOptions, out: Path
) -> Leaderboard:
    ids = tuple(t.id for t in plan.tools)
    ranker = Ranker(ids, settings["max_pairs"], seed=settings["seed"], judgeable=_judgeable(plan))
    made: list[Leaderboard] = []

    def write(rid: str, stopped: Stopped) -> None:
        made.append(_write_board(store, plan, rid, settings, stopped))

    def on_round(round_no: int, results: Sequence[PairResult], step: list[Pair] | Stopped) -> None:
        asked = len({frozenset(r.tools) for r in results})
        next_ = f"asking {len(step)} more pairs" if isinstance(step, list) else f"stopping: {step}"
        notices.chatter(
            "round",
            f"round {round_no}: {asked} of at most {settings['max_pairs']} pairs asked, "
            f"{len(results)} judgements; {next_}",
            round=round_no,
            pairs=asked,
        )

    resume = shlex.join(
        ["panel", "rank", "--resume", run_id] + (["--out", str(out)] if out != Path("runs") else [])
    )
    # Each round's asks show their progress as `compare --head-to-head` shows its round.
    reporter = Reporter(notices.mode, 0, err_console)
    try:
        with store_errors(store), reporter, asyncio.Runner() as runner:
            runner.run(run_ranking(plan, store, run_id, ranker, options, write, on_round, reporter.show))
    except KeyboardInterrupt:
        made.append(_write_board(store, plan, run_id, settings, "interrupted"))
        notices.say(
            "interrupted",
            f"interrupted: ranking {run_id} wrote its board so far; resume with: {resume}",
            run_id=run_id,
            resume=resume,
        )
        raise RunInterrupted(run_id) from None
    board = made[-1]
    run = store.get_run(run_id)
    if run is not None and run.status == "stopped":
        notices.say(
            "stopped",
            f"ranking {run_id} stopped ({board.stopped}); finish it with: {resume}",
            run_id=run_id,
            resume=resume,
        )
    return board


def _write_board(
    store: Store, plan: Plan, run_id: str, settings: dict[str, Any], stopped: Stopped
) -> Leaderboard:
    rows = store.head_to_heads(run_id)
    priced = charges(plan.members)
    inputs = BoardInputs(
        run_id=run_id,
        category=settings["category"],
        names={t.id: t.name for t in plan.tools},
        budget=settings["budget"] or f"{settings['max_pairs']} pairs (default)",
        stopped=stopped,
        asks=len(rows),
        cost_usd=round(sum(r.cost_usd for r in rows), 6) if priced else None,
        seed=settings["seed"],
    )
    board = build_leaderboard(inputs, pair_results(answers_from_store(rows)))
    folder = store.run_dir(run_id)
    write_atomic(folder / "leaderboard.json", board.model_dump_json(indent=2) + "\n")
    write_leaderboard_pages(board, folder)  # leaderboard.md and leaderboard.html beside it
    return board
