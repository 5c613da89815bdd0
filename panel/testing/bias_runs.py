"""Runs with planted biases for the Biases section (`panel.analysis.biases`), written straight
into a store: entries of varied length, reviews of varied length, and a rebuttal round whose
stored prompts are the ones the engine would send (`panel.run.rebuttal.rebuttal_messages`), so
what a reader was shown can be read back.

The planted model, seeded:
- round 1: each judge says ship with probability sigmoid(entry_effect * (log2 of the entry's
  length - its mean)): `entry_effect` is in log-odds per doubling of the entry's length;
- a review's length varies (1 to 24 sentences), independently of everything else;
- round 2: a reader with at least one other review against it changes its verdict with
  probability base + first_effect (when the review shown first is against it) + length_effect *
  (mean log2 length of the reviews against it - the mean over all reviews), clipped to [0, 1].
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..backends.fake import FakeBackend
from ..catalog import Pricing, Tool
from ..personas import Persona, load_personas
from ..prompts import PromptSet
from ..resources import data_dir
from ..run.rebuttal import RebuttalCell, rebuttal_messages, review_as_read
from ..store import CellKey, Store

PERSONAS = ("builder", "skeptic", "futurist")
MODELS = ("alpha", "beta")


@dataclass(frozen=True)
class Planted:
    tools: int = 60
    entry_effect: float = 0.0
    first_effect: float = 0.0
    length_effect: float = 0.0
    base: float = 0.1
    seed: int = 0
    #: how the round-2 prompt is stored: "as sent", "reversed" (the others shown in the reverse of
    #: the round's rule, the planted effect following what was shown), "none" (no request
    #: stored), "old" (a prompt in which the reviews are not written as they are today)
    prompts: str = "as sent"
    rebuttal: bool = True


def _tool(k: int, words: int) -> Tool:
    return Tool(
        id=f"tool-{k:03d}",
        name=f"Tool {k}",
        category="Testing",
        tagline="A tool for the tests of biases",
        description=" ".join(["word"] * words),
        pricing=Pricing(model="free"),
    )


def write_run(out: Path, planted: Planted, run_id: str = "bias") -> str:
    rng = np.random.default_rng(planted.seed)
    personas = load_personas(data_dir("personas"))
    backends = [FakeBackend(model=m) for m in MODELS]
    tools = [_tool(k, int(2 ** rng.uniform(2, 8))) for k in range(planted.tools)]
    prompts = PromptSet()
    doubling = [math.log2(len(json.dumps(t.facts_for_review(), indent=2, ensure_ascii=False))) for t in tools]
    centre = sum(doubling) / len(doubling)
    with Store(out) as store:
        store.create_run(
            run_id, "panel review --rebuttal", None, {"members": [b.label for b in backends]},
            tools=[(t.id, t.fingerprint(), t.model_dump(mode="json")) for t in tools],
            personas=[(p, personas[p].version, personas[p].model_dump(mode="json")) for p in PERSONAS],
        )  # fmt: skip
        for tool, x in zip(tools, doubling, strict=True):
            p_ship = 1 / (1 + math.exp(-planted.entry_effect * (x - centre)))
            for persona in PERSONAS:
                for b in backends:
                    verdict = "ship" if rng.random() < p_ship else "skip"
                    sentences = int(rng.integers(1, 25))
                    data = {
                        "answers": {q.key: "A point." for q in personas[persona].questions},
                        "review": " ".join([f"Sentence on {tool.id} by {persona} on {b.model}."] * sentences),
                        "verdict_note": f"{verdict}, says {persona}",
                        "verdict": verdict,
                    }
                    store.save_review(
                        run_id, CellKey(tool.id, persona, b.label), "fake", b.model,
                        data=data, error=None, raw_reply=None, request_id=None, asks=1,
                    )  # fmt: skip
        if planted.rebuttal:
            _rebuttals(store, run_id, planted, rng, tools, personas, backends, prompts)
        store.finish_run(run_id, "done")
    return run_id


def _rebuttals(
    store: Store, run_id: str, planted: Planted, rng: np.random.Generator, tools: list[Tool],
    personas: Mapping[str, Persona],
    backends: list[FakeBackend], prompts: PromptSet,
) -> None:  # fmt: skip
    every = [math.log2(len(review_as_read(r))) for r in store.reviews(run_id)]
    centre = sum(every) / len(every)
    for tool in tools:
        reviews = store.reviews(run_id, tool.id)
        for own in reviews:
            backend = next(b for b in backends if b.label == own.member)
            others = tuple(r for r in reviews if r is not own)
            cell = RebuttalCell(tool, personas[own.persona_id], backend, 0, own=own, others=others)
            order = cell.ordered_others()
            if planted.prompts == "reversed":
                order = order[::-1]
            against = [r for r in order if r.verdict != own.verdict]
            p = 0.0
            if against:
                lengths = [math.log2(len(review_as_read(r))) for r in against]
                p = planted.base + planted.first_effect * (order[0] in against)
                p += planted.length_effect * (sum(lengths) / len(lengths) - centre)
            change = rng.random() < min(max(p, 0.0), 1.0)
            after = ("skip" if own.verdict == "ship" else "ship") if change else own.verdict
            request_id = None
            if planted.prompts != "none":
                # "reversed": shown as `order`, whatever the round's rule says
                messages = _as_ordered(prompts, cell, order) if planted.prompts == "reversed" else (
                    rebuttal_messages(prompts, cell)
                )  # fmt: skip
                if planted.prompts == "old":
                    messages = [
                        {**m, "content": m["content"].replace('"points"', '"answers"')} for m in messages
                    ]
                request_id = store.begin_request(
                    run_id, own.key, "fake", backend.model, 1, messages, f"{own.persona_id}_rebuttal", {},
                    round_=2,
                )  # fmt: skip
            store.save_rebuttal(
                run_id, own.key, "fake", backend.model, verdict_before=own.verdict, others=len(others),
                data={"decision": "change" if change else "keep", "why": "Read them.", "verdict": after},
                error=None, raw_reply=None, request_id=request_id, asks=1,
            )  # fmt: skip


def _as_ordered(prompts: PromptSet, cell: RebuttalCell, order: list[Any]) -> list[dict[str, str]]:
    """The round-2 messages with the others in `order` (not the round's drawing rule)."""

    class Fixed(RebuttalCell):
        def ordered_others(self) -> list[Any]:
            return list(order)

    fixed = Fixed(cell.tool, cell.persona, cell.backend, 0, own=cell.own, others=cell.others)
    return rebuttal_messages(prompts, fixed)
