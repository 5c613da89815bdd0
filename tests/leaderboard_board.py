"""A realistic leaderboard for the pages' tests and the guide's screenshots (not a test module).

`sample_board()` ranks the sample catalog's Developer Tools (examples/catalog.yaml, their real
ids and names) from simulated head-to-head judgements of four personas on two members: each
judge sometimes picks by position (mostly the first-shown tool), sometimes fails, and one
judge fails so often that its rates are "too few". Its figures add up as a real board's do
(wins = losses = consistent judgements, each tie and failure counted on both tools, asks =
pairs x 2 orders x judges). Strengths and intervals here are a quick log-odds reading of the
tallies, enough for a page; the real fit is `panel rank`'s.

`hostile_board(name)`: the same board with one tool, one member and the note carrying `name`.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter

import yaml

from panel.analysis.leaderboard_fit import judge_line
from panel.report.head_to_head import Answer, judge_bias, pair_results
from panel.report.leaderboard_file import Judgements, Leaderboard, LeaderTool

from .conftest import EXAMPLE_CATALOG

__all__ = ["MEMBERS", "PERSONAS", "hostile_board", "sample_board"]

PERSONAS = ("builder", "skeptic", "futurist", "business_analyst")
MEMBERS = ("openai:gpt-4.1-mini", "mistral:mistral-small-latest")
#: planted strengths, in catalog order
_PLANTED = (0.9, 1.4, -0.2, 0.3, 1.1, 0.6, 0.8, -0.9, -0.4)
#: per persona (or judge): the chance it picks by position, and that its answer fails
_POSITION: dict[object, float] = {
    "builder": 0.05, "skeptic": 0.1, "futurist": 0.15, "business_analyst": 0.1,
    ("skeptic", "mistral:mistral-small-latest"): 0.75, ("builder", "mistral:mistral-small-latest"): 0.6,
}  # fmt: skip
_FAILS = {"builder": 0.01, "skeptic": 0.01, "futurist": 0.03, "business_analyst": 0.01}
#: the judge that mostly fails (its rates are "too few")
_FLAKY = ("futurist", "mistral:mistral-small-latest")


def _catalog_tools() -> list[tuple[str, str]]:
    tools = yaml.safe_load(EXAMPLE_CATALOG.read_text(encoding="utf-8"))["tools"]
    return [(t["id"], t["name"]) for t in tools if t["category"] == "Developer Tools"]


def _answers(
    rng: random.Random, judge: tuple[str, str], a: str, b: str, planted: dict[str, float]
) -> list[Answer]:
    """`judge`'s two asks of the pair, a then b and b then a: it prefers one tool of the pair (drawn
    from the planted strengths) and names it, unless it fails or picks by position."""
    persona, member = judge
    fail = 0.5 if judge == _FLAKY else _FAILS[persona]
    preferred = a if rng.random() < 1 / (1 + math.exp(planted[b] - planted[a])) else b
    answers = []
    for first, second in ((a, b), (b, a)):
        if rng.random() < fail:
            answers.append(Answer(persona, member, first, second, None, error="no valid answer"))
        elif rng.random() < _POSITION.get(judge, _POSITION[persona]):
            answers.append(Answer(persona, member, first, second, first if rng.random() < 0.8 else second))
        else:
            answers.append(Answer(persona, member, first, second, preferred))
    return answers


def sample_board(seed: int = 7) -> Leaderboard:
    rng = random.Random(seed)
    tools = _catalog_tools()
    planted = dict(zip((t for t, _ in tools), _PLANTED, strict=False))
    ids = [t for t, _ in tools]
    pairs = [p for p in itertools.combinations(ids, 2) if abs(planted[p[0]] - planted[p[1]]) < 1.2]
    judges = [(p, m) for m in MEMBERS for p in PERSONAS]
    answers = [answer for a, b in pairs for judge in judges for answer in _answers(rng, judge, a, b, planted)]
    results = pair_results(answers)
    won: Counter[str] = Counter(r.winner for r in results if r.winner)
    lost: Counter[str] = Counter(next(t for t in r.tools if t != r.winner) for r in results if r.winner)
    tied: Counter[str] = Counter(t for r in results if r.tie for t in r.tools)
    failed: Counter[str] = Counter(t for r in results if r.outcome == "failed" for t in r.tools)
    met: dict[str, set[str]] = {t: set() for t in ids}
    for a, b in pairs:
        met[a].add(b)
        met[b].add(a)
    raw = {t: math.log((won[t] + 0.5) / (lost[t] + 0.5)) for t in ids}
    mean = sum(raw.values()) / len(raw)
    strength = {t: raw[t] - mean for t in ids}
    half = {t: 1.96 * math.sqrt(1 / (won[t] + 0.5) + 1 / (lost[t] + 0.5)) / 2 for t in ids}
    order = sorted(ids, key=lambda t: -strength[t])
    names = dict(tools)
    lines = []
    for rank, t in enumerate(order, start=1):
        low, high = strength[t] - half[t], strength[t] + half[t]
        above = sum(1 for o in ids if o != t and strength[o] > high)
        below = sum(1 for o in ids if o != t and strength[o] < low)
        lines.append(
            LeaderTool(
                rank=rank,
                tool_id=t,
                name=names[t],
                strength=round(strength[t], 3),
                low=round(low, 3),
                high=round(high, 3),
                rank_low=1 + above,
                rank_high=len(ids) - below,
                wins=won[t],
                losses=lost[t],
                ties=tied[t],
                failed=failed[t],
                opponents=len(met[t]),
            )
        )
    judge_lines = [judge_line(bias) for bias in judge_bias(results)]
    counts = Counter(r.outcome for r in results)
    return Leaderboard(
        run_id="20261206-141502-a1b2c3",
        title="Developer Tools: which one should you ship with?",
        category="Developer Tools",
        generated="2026-12-06T14:21:09+00:00",
        method=(
            "A Bradley–Terry model fitted to head-to-head judgements of 8 judges (4 personas on 2 "
            "members), pairs chosen where the order was least settled, each asked in both orders; "
            "95% intervals by bootstrap over judgements."
        ),
        level=0.95,
        resamples=2000,
        tools=lines,
        judges=judge_lines,
        judgements=Judgements(
            consistent=counts["consistent"],
            ties=counts["first-shown"] + counts["second-shown"],
            failed=counts["failed"],
        ),
        pairs_asked=len(pairs),
        pairs_possible=len(ids) * (len(ids) - 1) // 2,
        asks=len(pairs) * 2 * len(judges),
        budget="30 pairs",
        stopped="settled",
        cost_usd=0.184,
        note=(
            "With 9 tools and 8 judges, neighbours whose intervals overlap may swap places on "
            "another run: read the rank ranges, not the ranks alone."
        ),
    )


def hostile_board(name: str) -> Leaderboard:
    """`sample_board()` with `name` as the second tool's name and id, a member and the note."""
    board = sample_board()
    tools = list(board.tools)
    tools[1] = tools[1].model_copy(update={"name": name, "tool_id": name})
    judges = list(board.judges)
    judges[0] = judges[0].model_copy(update={"member": name, "persona_id": name})
    return board.model_copy(update={"tools": tools, "judges": judges, "note": name, "title": name})
