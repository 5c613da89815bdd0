"""Simulated panels with planted structure: known truth, known judges, written as real runs.

The analyses of a panel (agreement with a reference, pooled verdicts, latent-truth models,
the variance split) are checked here against what was planted, not against a model.

**The generative model.** Each tool's true verdict is ``ship`` with probability
``prevalence``, else ``skip``, independently. A judge is one (persona, member) pair with a
planted accuracy ``a``; on each tool, independently of every other judge given the truth,
it says ``ship`` with probability ``sigmoid(s * logit(a) + b)``, where ``s`` is +1 when the
truth is ship and -1 when it is skip, and ``b = persona_bias[persona] + member_bias[member]``
(0 when absent). With ``b = 0`` the judge says the true verdict with probability exactly
``a`` on either kind of tool; a bias shifts the log-odds of saying ship, so a persona
effect (``persona_bias`` only), a member effect (``member_bias`` only) or both can be
planted. :meth:`SimulatedPanel.confusion` and :meth:`SimulatedPanel.expected_accuracy` give
the resulting per-judge figures. Independently of all that, each review fails (no verdict)
with probability ``missing``. Every review, failed or not, costs its member's price.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends.base import Reply, Usage
from ..catalog import Community, Pricing, Tool
from ..personas import Persona, load_personas
from ..resources import data_dir
from ..store import CellKey, Store

if TYPE_CHECKING:
    from .simulate_h2h import SimulatedHeadToHead

__all__ = [
    "CATEGORIES",
    "DEFAULT_ACCURACY",
    "PERSONAS",
    "SimulatedPanel",
    "editor_labels",
    "simulate_panel",
    "write_editor_labels",
    "write_labels",
    "write_simulated_run",
]

CATEGORIES = ("ship", "skip")
#: The project's own personas (personas/*.yaml), in panel order.
PERSONAS = ("builder", "skeptic", "futurist", "business_analyst")
DEFAULT_ACCURACY = 0.8
#: USD per review of a member missing from ``prices``.
DEFAULT_PRICE = 0.001
INPUT_TOKENS, OUTPUT_TOKENS = 900, 250


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


@dataclass(frozen=True)
class SimulatedPanel:
    """One simulated run: the planted truth and judges, and the long-table rows they gave.

    ``rows`` have the columns of ``panel.analysis.agreement.LONG_COLUMNS`` (``run`` is
    ``run_id``), one per tool x persona x member, in that order, repeat 0.
    """

    run_id: str
    tools: list[str]
    personas: list[str]
    members: list[str]
    truth: list[str]
    accuracy: dict[tuple[str, str], float]
    persona_bias: dict[str, float]
    member_bias: dict[str, float]
    prevalence: float
    missing: float
    prices: dict[str, float]
    seed: int
    rows: list[dict[str, Any]]
    #: who made each tool and each member's model (empty: no makers planted)
    tool_makers: dict[str, str] = field(default_factory=dict)
    member_makers: dict[str, str] = field(default_factory=dict)
    #: a member's planted same-maker bias: added to its probability of saying ship on its
    #: maker's tools (clipped to [0, 1])
    maker_bias: dict[str, float] = field(default_factory=dict)

    @property
    def judges(self) -> list[tuple[str, str]]:
        """Every (persona, member), persona-major, as ``Judgments`` orders them."""
        return [(p, m) for p in self.personas for m in self.members]

    def p_ship(self, persona: str, member: str, truth: str) -> float:
        """The planted probability that this judge says ship on a tool whose truth is ``truth``."""
        a = self.accuracy[(persona, member)]
        bias = self.persona_bias.get(persona, 0.0) + self.member_bias.get(member, 0.0)
        sign = 1.0 if truth == "ship" else -1.0
        return _sigmoid(sign * _logit(a) + bias)

    def confusion(self, persona: str, member: str) -> list[list[float]]:
        """``[truth][said]`` probabilities over (ship, skip): the judge's planted confusion matrix."""
        return [[p, 1.0 - p] for p in (self.p_ship(persona, member, t) for t in CATEGORIES)]

    def expected_accuracy(self, persona: str, member: str) -> float:
        """How often this judge says the truth, over tools drawn at the planted prevalence."""
        (ship_ship, _), (_, skip_skip) = self.confusion(persona, member)
        return self.prevalence * ship_ship + (1.0 - self.prevalence) * skip_skip

    def effective_maker_bias(self, member: str) -> float:
        """How much ``member``'s planted same-maker bias raises its ship rate on its maker's
        tools once clipped to [0, 1], over its personas and the planted prevalence: what a
        self-preference estimate should recover (the planted value when nothing is clipped)."""
        bias = self.maker_bias.get(member, 0.0)
        raised = [
            (self.prevalence if truth == "ship" else 1.0 - self.prevalence)
            * (min(1.0, max(0.0, chance + bias)) - chance)
            for persona in self.personas
            for truth in CATEGORIES
            for chance in (self.p_ship(persona, member, truth),)
        ]
        return sum(raised) / len(self.personas)

    def describe(self) -> dict[str, Any]:
        """The planted parameters as JSON-ready data (stored in the run's config)."""
        return {
            "prevalence": self.prevalence,
            "missing": self.missing,
            "seed": self.seed,
            "accuracy": {f"{p} / {m}": a for (p, m), a in self.accuracy.items()},
            "expected_accuracy": {f"{p} / {m}": self.expected_accuracy(p, m) for p, m in self.judges},
            "persona_bias": self.persona_bias,
            "member_bias": self.member_bias,
            "member_makers": self.member_makers,
            "maker_bias": self.maker_bias,
            "price_per_review_usd": self.prices,
        }


def simulate_panel(
    n_tools: int,
    personas: Sequence[str] = PERSONAS,
    members: Sequence[str] = ("sim:a", "sim:b", "sim:c"),
    *,
    accuracy: Mapping[tuple[str, str], float] | None = None,
    prevalence: float = 0.5,
    persona_bias: Mapping[str, float] | None = None,
    member_bias: Mapping[str, float] | None = None,
    missing: float = 0.0,
    prices: Mapping[str, float] | None = None,
    default_accuracy: float = DEFAULT_ACCURACY,
    run_id: str = "sim",
    seed: int = 0,
    member_makers: Mapping[str, str] | None = None,
    maker_bias: Mapping[str, float] | None = None,
) -> SimulatedPanel:
    """Draw a panel by the generative model of the module docstring, seeded.

    ``accuracy`` maps (persona, member) to the planted accuracy ``a`` (strictly between 0
    and 1); judges it leaves out get ``default_accuracy``. ``prices`` is USD per review by
    member (:data:`DEFAULT_PRICE` when absent). Members are ``backend:model`` labels.
    """
    if n_tools < 1 or not personas or not members:
        raise ValueError("a simulated panel needs at least one tool, persona and member")
    if not 0.0 <= prevalence <= 1.0 or not 0.0 <= missing < 1.0:
        raise ValueError("prevalence must be in [0, 1] and missing in [0, 1)")
    planted = {
        (p, m): float((accuracy or {}).get((p, m), default_accuracy)) for p in personas for m in members
    }
    for judge, a in planted.items():
        if not 0.0 < a < 1.0:
            raise ValueError(f"accuracy of {judge} must be strictly between 0 and 1, got {a}")
    unknown = set(accuracy or {}) - set(planted)
    if unknown:
        raise ValueError(f"accuracy names judges that are not in the panel: {sorted(unknown)}")
    rng = np.random.default_rng(seed)
    width = len(str(n_tools))
    tools = [f"sim-{i:0{width}d}" for i in range(1, n_tools + 1)]
    is_ship = rng.random(n_tools) < prevalence
    truth = ["ship" if s else "skip" for s in is_ship]
    makers = sorted(set((member_makers or {}).values()))
    tool_makers = {tool: makers[i % len(makers)] for i, tool in enumerate(tools)} if makers else {}
    panel = SimulatedPanel(
        run_id=run_id,
        tools=tools,
        personas=list(personas),
        members=list(members),
        truth=truth,
        accuracy=planted,
        persona_bias=dict(persona_bias or {}),
        member_bias=dict(member_bias or {}),
        prevalence=prevalence,
        missing=missing,
        prices={m: float((prices or {}).get(m, DEFAULT_PRICE)) for m in members},
        seed=seed,
        rows=[],
        tool_makers=tool_makers,
        member_makers=dict(member_makers or {}),
        maker_bias=dict(maker_bias or {}),
    )
    # One column of draws per judge, judges persona-major: a judge's verdicts do not change
    # when another judge's accuracy does.
    judges = panel.judges
    says_ship = np.empty((n_tools, len(judges)), dtype=bool)
    failed = np.empty((n_tools, len(judges)), dtype=bool)
    for j, (p, m) in enumerate(judges):
        chance = np.where(is_ship, panel.p_ship(p, m, "ship"), panel.p_ship(p, m, "skip"))
        if panel.maker_bias.get(m) and m in panel.member_makers:
            own = np.array([tool_makers.get(t) == panel.member_makers[m] for t in tools])
            chance = np.clip(chance + own * panel.maker_bias[m], 0.0, 1.0)
        says_ship[:, j] = rng.random(n_tools) < chance
        failed[:, j] = rng.random(n_tools) < missing
    for i, tool in enumerate(tools):
        for j, (p, m) in enumerate(judges):
            verdict = None if failed[i, j] else ("ship" if says_ship[i, j] else "skip")
            panel.rows.append(_row(panel, tool, p, m, verdict))
    return panel


def _row(panel: SimulatedPanel, tool: str, persona: str, member: str, verdict: str | None) -> dict[str, Any]:
    backend, _, model = member.partition(":")
    return {
        "run": panel.run_id, "tool": tool, "persona": persona, "backend": backend, "model": model,
        "member": member, "repeat": 0, "verdict": verdict, "valid": verdict is not None,
        "cost_usd": panel.prices[member], "latency_s": 1.0,
        "input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS, "paid_by": panel.run_id,
    }  # fmt: skip


def write_simulated_run(
    out: Path,
    panel: SimulatedPanel,
    *,
    community_votes: int = 0,
    community_accuracy: float = 0.7,
    personas_dir: Path | None = None,
    head_to_head: SimulatedHeadToHead | None = None,
) -> str:
    """Write ``panel`` as a finished run of the store ``out/panel.db``; returns its run id.

    The run holds the tools (each with community votes when ``community_votes`` > 0), the
    real persona files of the panel's personas, and per review a request and its reply
    (so ``cost_usd`` reads back from the store as a real run's does) and the review.
    Community votes: a tool gets ``Binomial(2 * community_votes, 1/2)`` votes (their mean
    is ``community_votes``; some tools fall below a ``--min-votes``), each for the true
    verdict with probability ``community_accuracy``. ``head_to_head`` (of this panel): its
    answers stored as the run's head-to-head round (`panel.testing.simulate_h2h`).
    """
    if head_to_head is not None and head_to_head.run_id != panel.run_id:
        raise ValueError(f"the head-to-head answers are of run {head_to_head.run_id!r}, not {panel.run_id!r}")
    available = load_personas(personas_dir or data_dir("personas"))
    missing = [p for p in panel.personas if p not in available]
    if missing:
        raise ValueError(f"not personas of the project: {missing} (have {sorted(available)})")
    chosen = [available[p] for p in panel.personas]
    tools = _tools(panel, community_votes, community_accuracy)
    fingerprints = {t.id: t.fingerprint() for t in tools}
    config: dict[str, Any] = {"members": panel.members, "kind": "simulated", "simulation": panel.describe()}
    if panel.member_makers:  # as a real run records them (`panel.run.plan.start_run`)
        config["makers"] = {m: panel.member_makers.get(m) for m in panel.members}
    if head_to_head is not None:
        config["simulation"]["head_to_head"] = head_to_head.describe()
    with Store(out) as store:
        if store.get_run(panel.run_id) is not None:
            raise ValueError(f"run {panel.run_id!r} is already in {store.path}")
        store.create_run(
            panel.run_id,
            "simulated panel",
            None,
            config,
            tools=[(t.id, fingerprints[t.id], t.model_dump(mode="json")) for t in tools],
            personas=[(p.id, p.version, p.model_dump(mode="json")) for p in chosen],
        )
        store.group_commits(True)
        for row in panel.rows:
            _save(store, panel.run_id, row, available[row["persona"]], fingerprints[row["tool"]])
        if head_to_head is not None:
            head_to_head.save(store)
        store.group_commits(False)
        store.finish_run(panel.run_id, "done")
    return panel.run_id


def _tools(panel: SimulatedPanel, votes: int, right: float) -> list[Tool]:
    rng = np.random.default_rng([panel.seed, 1])
    out = []
    for tool, truth in zip(panel.tools, panel.truth, strict=True):
        community = None
        if votes > 0:
            n = int(rng.binomial(2 * votes, 0.5))
            agree = int(rng.binomial(n, right))
            ship = agree if truth == "ship" else n - agree
            community = Community(ship=ship, skip=n - ship)
        out.append(
            Tool(
                id=tool,
                name=tool.replace("-", " ").title(),
                category="Simulated",
                tagline=f"A simulated tool ({tool})",
                description="A tool of a simulated panel; its reviews were drawn, not written.",
                pricing=Pricing(model="unknown"),
                community=community,
                maker=panel.tool_makers.get(tool),
            )
        )
    return out


def _save(store: Store, run_id: str, row: Mapping[str, Any], persona: Persona, fingerprint: str) -> None:
    key = CellKey(row["tool"], row["persona"], row["member"], 0)
    verdict = row["verdict"]
    data = None
    if verdict is not None:
        data = {
            "answers": {q.key: f"(simulated answer to {q.key})" for q in persona.questions},
            "review": f"Simulated review of {row['tool']} by {persona.id}.",
            "verdict_note": f"Simulated: {verdict}.",
            "verdict": verdict,
        }
    raw = json.dumps(data) if data is not None else "{"
    request_id = store.begin_request(
        run_id, key, row["backend"], row["model"], 1, [], "review", {}, reserved_usd=row["cost_usd"]
    )
    reply = Reply(raw, Usage(row["input_tokens"], row["output_tokens"]), row["latency_s"], "stop")
    store.finish_request(request_id, reply, 1, cost_usd=row["cost_usd"])
    store.save_review(
        run_id, key, row["backend"], row["model"],
        data=data, error=None if data else "simulated failure: the reply is not valid JSON",
        raw_reply=raw, request_id=request_id, asks=1, fingerprint=fingerprint,
    )  # fmt: skip


def write_labels(
    path: Path,
    panel: SimulatedPanel,
    n_raters: int = 1,
    rater_accuracy: float = 1.0,
    *,
    seed: int | None = None,
) -> Path:
    """Write ``tool,verdict,rater`` labels: each of ``n_raters`` people labels every tool,
    saying its true verdict with probability ``rater_accuracy`` (seeded by the panel's seed
    unless ``seed`` is given). Returns ``path``."""
    if n_raters < 1 or not 0.0 <= rater_accuracy <= 1.0:
        raise ValueError("n_raters must be at least 1 and rater_accuracy in [0, 1]")
    rng = np.random.default_rng([panel.seed if seed is None else seed, 2])
    right = rng.random((len(panel.tools), n_raters)) < rater_accuracy
    other = {"ship": "skip", "skip": "ship"}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tool", "verdict", "rater"])
        for i, (tool, truth) in enumerate(zip(panel.tools, panel.truth, strict=True)):
            for r in range(n_raters):
                writer.writerow([tool, truth if right[i, r] else other[truth], f"rater-{r + 1}"])
    return path


def editor_labels(
    panel: SimulatedPanel, n: int, accuracy: float = 1.0, *, seed: int | None = None
) -> dict[str, str]:
    """An editor's labels on ``n`` of the panel's tools drawn at random without replacement:
    each the tool's true verdict with probability ``accuracy``, else the other one. Seeded
    by the panel's seed unless ``seed`` is given; tools in the panel's order."""
    if not 0 <= n <= len(panel.tools) or not 0.0 <= accuracy <= 1.0:
        raise ValueError(
            f"n must be in [0, {len(panel.tools)}] and accuracy in [0, 1], got {n} and {accuracy}"
        )
    rng = np.random.default_rng([panel.seed if seed is None else seed, 3])
    chosen = np.sort(rng.choice(len(panel.tools), size=n, replace=False))
    right = rng.random(n) < accuracy
    other = {"ship": "skip", "skip": "ship"}
    return {
        panel.tools[i]: panel.truth[i] if ok else other[panel.truth[i]]
        for i, ok in zip(chosen.tolist(), right.tolist(), strict=True)
    }


def write_editor_labels(path: Path, labels: Mapping[str, str], editor: str = "editor") -> Path:
    """Write ``labels`` (tool -> verdict) as a labels file ``tool,verdict,rater``; returns ``path``."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tool", "verdict", "rater"])
        writer.writerows([tool, verdict, editor] for tool, verdict in labels.items())
    return path
