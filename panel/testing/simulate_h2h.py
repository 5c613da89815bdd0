"""Simulated head-to-head answers with planted strengths and position biases, stored as a run's.

**The generative model.** Each tool has a planted strength ``s``. A judge (persona, member)
shown tool A first and tool B second answers by position with probability ``|b|`` (its
planted position bias ``b`` in [-1, 1]): it names the first-shown tool when ``b > 0``, the
second-shown when ``b < 0``, whatever the two are. Otherwise it judges by strength and names A
with probability ``sigmoid(s_A - s_B)`` (Bradley-Terry). Every ask is drawn on its own, and
fails (no answer, after its re-ask) with probability ``missing``.

**What the report reads off it** (:mod:`panel.report.head_to_head`). For one pair with
``p = sigmoid(s_A - s_B)`` and ``q = (1 - |b|)^2 p (1 - p)``, a judge with ``b >= 0`` ties by
first-shown with probability ``b + q`` and by second-shown with ``q`` (the other way round for
``b < 0``), and is consistent otherwise. So first-shown ties minus second-shown ties, over the
pairs with both answers, estimate ``b`` whatever the strengths (:func:`position_from` reads it
from a :class:`JudgeBias`); the report's consistency rate and its first-shown share of the
inconsistent pairs depend on the strengths too, and :meth:`SimulatedHeadToHead.expected` gives
what they should recover on the pairs asked.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from ..backends.base import Reply, Usage
from ..report.head_to_head import Answer, JudgeBias
from ..store import HEAD_TO_HEAD_ROUND, CellKey, Store
from .simulate import SimulatedPanel, _sigmoid

__all__ = ["Expected", "SimulatedHeadToHead", "position_from", "simulate_head_to_head"]

#: the mean strength of a tool whose truth is ship above one whose truth is skip (default strengths)
TRUTH_GAP = 2.0
INPUT_TOKENS, OUTPUT_TOKENS = 1500, 40
#: what a failed ask stores, as a real run's re-asked invalid reply does
FAILED_RAW = "{"
#: a failed ask's first reply (re-asked with the error, then failed again)
FALSE_START = "Tool A, I think"
FAILED_ERROR = "invalid after re-ask: simulated failure: the reply is not valid JSON"

Judge = tuple[str, str]


@dataclass(frozen=True)
class Expected:
    """What the report should recover for one judge on the pairs asked (no failures counted)."""

    #: the planted position bias (first-shown ties minus second-shown ties, per pair)
    position: float
    #: consistent pairs among pairs with both answers
    consistency: float
    #: first-shown ties among the inconsistent pairs (nan: none expected)
    first_shown_share: float


@dataclass(frozen=True)
class SimulatedHeadToHead:
    """Head-to-head answers of a simulated panel's judges on ``pairs``, each asked in both orders."""

    run_id: str
    personas: list[str]
    members: list[str]
    strengths: dict[str, float]
    #: every judge's planted position bias (0: none)
    position_bias: dict[Judge, float]
    #: in their A-then-B order
    pairs: list[tuple[str, str]]
    missing: float
    seed: int
    prices: dict[str, float]
    #: every ask, pair-major, A-then-B before B-then-A (``picked`` None: failed)
    answers: list[Answer]

    @property
    def judges(self) -> list[Judge]:
        return [(p, m) for p in self.personas for m in self.members]

    def p_pick_first(self, judge: Judge, first: str, second: str) -> float:
        """The planted probability that ``judge`` names ``first`` when shown it first."""
        b = self.position_bias[judge]
        by_strength = (1.0 - abs(b)) * _sigmoid(self.strengths[first] - self.strengths[second])
        return by_strength + max(b, 0.0)

    def expected(self, persona: str, member: str) -> Expected:
        """The report's readings this judge should give on the pairs asked."""
        b = self.position_bias[(persona, member)]
        noise = [
            (1.0 - abs(b)) ** 2 * p * (1.0 - p)
            for p in (_sigmoid(self.strengths[x] - self.strengths[y]) for x, y in self.pairs)
        ]
        first = sum(q + max(b, 0.0) for q in noise)
        second = sum(q + max(-b, 0.0) for q in noise)
        n = len(self.pairs)
        share = first / (first + second) if first + second > 0 else math.nan
        return Expected(b, (n - first - second) / n if n else math.nan, share)

    def describe(self) -> dict[str, Any]:
        """The planted parameters as JSON-ready data."""
        return {
            "pairs": len(self.pairs),
            "missing": self.missing,
            "seed": self.seed,
            "position_bias": {f"{p} / {m}": b for (p, m), b in self.position_bias.items()},
            "strengths": self.strengths,
        }

    def save(self, store: Store) -> None:
        """Store every ask as a real run's head-to-head round does: its request(s) in round 3
        (a failed ask was re-asked, so it has two), their replies and its head-to-head row."""
        if store.get_run(self.run_id) is None:
            raise ValueError(f"run {self.run_id!r} is not in {store.path}")
        for answer in self.answers:
            _save_answer(store, self.run_id, answer, self.prices[answer.member])


def _save_answer(store: Store, run_id: str, answer: Answer, price: float) -> None:
    backend, _, model = answer.member.partition(":")
    key = CellKey(answer.first, answer.persona_id, answer.member, 0)
    if answer.picked is None:
        raws = [FALSE_START, FAILED_RAW]
    else:
        letter = "A" if answer.picked == answer.first else "B"
        raws = [json.dumps({"ship_with": letter, "reason": answer.reason})]
    request_id = 0
    for ask, raw in enumerate(raws, start=1):
        request_id = store.begin_request(
            run_id, key, backend, model, ask, [], f"{answer.persona_id}_head_to_head", {},
            reserved_usd=price, round_=HEAD_TO_HEAD_ROUND, rival=answer.second,
        )  # fmt: skip
        reply = Reply(raw, Usage(INPUT_TOKENS, OUTPUT_TOKENS), 1.0, "stop")
        store.finish_request(request_id, reply, 1, cost_usd=price)
    store.save_head_to_head(
        run_id, answer.persona_id, answer.member, (answer.first, answer.second), backend, model,
        picked=answer.picked, reason=answer.reason, error=answer.error, raw_reply=raws[-1],
        request_id=request_id, asks=len(raws),
    )  # fmt: skip


def simulate_head_to_head(
    panel: SimulatedPanel,
    pairs: int | Sequence[tuple[str, str]],
    *,
    strengths: Mapping[str, float] | None = None,
    position_bias: Mapping[Judge, float] | None = None,
    missing: float | None = None,
    seed: int | None = None,
) -> SimulatedHeadToHead:
    """Draw every judge's answers on ``pairs`` in both orders, by the module's model.

    ``pairs``: tool ids, or a number of pairs drawn at random among the panel's tools.
    ``strengths`` default to ``TRUTH_GAP`` / 2 for a tool whose truth is ship, minus that for
    skip, plus a standard normal draw. ``position_bias`` maps a judge to ``b`` (0 when absent);
    ``missing`` and ``seed`` default to the panel's."""
    seed = panel.seed if seed is None else seed
    missing = panel.missing if missing is None else missing
    if not 0.0 <= missing < 1.0:
        raise ValueError(f"missing must be in [0, 1), got {missing}")
    rng = np.random.default_rng([seed, 4])
    chosen = _pairs(panel.tools, pairs, rng)
    planted = {judge: float((position_bias or {}).get(judge, 0.0)) for judge in panel.judges}
    unknown = set(position_bias or {}) - set(planted)
    if unknown:
        raise ValueError(f"position_bias names judges that are not in the panel: {sorted(unknown)}")
    for judge, b in planted.items():
        if not -1.0 <= b <= 1.0:
            raise ValueError(f"position bias of {judge} must be in [-1, 1], got {b}")
    if strengths is None:
        noise = rng.normal(size=len(panel.tools))
        shift = {"ship": TRUTH_GAP / 2, "skip": -TRUTH_GAP / 2}
        strengths = {t: shift[v] + float(e) for t, v, e in zip(panel.tools, panel.truth, noise, strict=True)}
    absent = {t for pair in chosen for t in pair} - set(strengths)
    if absent:
        raise ValueError(f"no strength for {sorted(absent)}")
    sim = SimulatedHeadToHead(
        panel.run_id, list(panel.personas), list(panel.members), dict(strengths), planted, chosen,
        missing, seed, dict(panel.prices), [],
    )  # fmt: skip
    # Each judge draws from its own stream, one uniform per ask: a judge's answers do not change
    # when another judge's bias does, and a larger bias only turns picks toward the first-shown.
    draws = {
        judge: np.random.default_rng([seed, 5, j]).random((len(chosen), 2, 2))
        for j, judge in enumerate(sim.judges)
    }
    for i, (one, other) in enumerate(chosen):
        for judge in sim.judges:
            for order, (first, second) in enumerate(((one, other), (other, one))):
                pick, fail = (float(x) for x in draws[judge][i, order])
                picked = first if pick < sim.p_pick_first(judge, first, second) else second
                sim.answers.append(_answer(judge, first, second, None if fail < missing else picked))
    return sim


def _answer(judge: Judge, first: str, second: str, picked: str | None) -> Answer:
    persona, member = judge
    if picked is None:
        return Answer(persona, member, first, second, None, error=FAILED_ERROR)
    reason = f"Simulated: Tool {'A' if picked == first else 'B'} is the one to ship with."
    return Answer(persona, member, first, second, picked, reason=reason)


def _pairs(
    tools: Sequence[str], pairs: int | Sequence[tuple[str, str]], rng: np.random.Generator
) -> list[tuple[str, str]]:
    if isinstance(pairs, int):
        every = list(combinations(tools, 2))
        if not 0 < pairs <= len(every):
            raise ValueError(f"pairs must be between 1 and {len(every)} for {len(tools)} tools, got {pairs}")
        return [every[i] for i in sorted(rng.choice(len(every), size=pairs, replace=False).tolist())]
    chosen = [(str(a), str(b)) for a, b in pairs]
    known = set(tools)
    seen: set[frozenset[str]] = set()
    for a, b in chosen:
        if a == b or a not in known or b not in known:
            raise ValueError(f"a pair needs two of the panel's tools, got ({a!r}, {b!r})")
        if frozenset((a, b)) in seen:
            raise ValueError(f"the pair ({a!r}, {b!r}) is given twice")
        seen.add(frozenset((a, b)))
    if not chosen:
        raise ValueError("a head-to-head needs at least one pair")
    return chosen


def position_from(judge: JudgeBias) -> tuple[float, float, float]:
    """The position bias ``b`` read from a judge's pairs, with a 95% interval
    (:meth:`JudgeBias.lean`: under the module's model each pair's two answers are independent
    and the first-shown picks among them have mean ``(1 + b) / 2``). ``nan`` when no pair has
    both answers."""
    lean = judge.lean()
    return (math.nan, math.nan, math.nan) if lean is None else lean
