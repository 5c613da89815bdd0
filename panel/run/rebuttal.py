"""The rebuttal round (`--rebuttal`): after round 1, each reviewer reads the others and keeps
or changes its verdict.

Each persona on each member (repeat 0) whose round-1 review is valid reads the other valid
round-1 reviews of the same tool. They come relabelled Reviewer A, B, ... in an order drawn
from a hash of the reading cell, with no persona or model name: only each review's verdict,
verdict note, prose and answers (joined into one text, without the question keys or their
count, which would name the persona), each fenced as data like the tool's facts. It answers
keep or change, one sentence why, and its verdict after. A reply whose decision and verdict
disagree with its round-1 verdict is invalid and re-asked once with the error, as a round-1
review is.

Round-2 requests go through the engine (`Engine.send`): the same store (written before a
request is sent, so `--resume` sends only what has no stored reply), cache, budget, rate
limiter and retries. They run live, whatever route a member takes in round 1.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..backends.base import Request, Sampling
from ..catalog import Tool
from ..depth import Depth
from ..personas import Persona
from ..prompts import Message, PromptSet
from ..store import CellKey, ReviewRow
from .cells import Cell, Member
from .engine import Engine
from .events import RebuttalBegun, RebuttalMade
from .later_rounds import Workers, ask_twice
from .stats import RoundStats
from .validate import InvalidReply, parse_review

__all__ = [
    "REBUTTAL_MAX_TOKENS",
    "RebuttalCell",
    "RebuttalResult",
    "parse_rebuttal",
    "planned_rebuttals",
    "reading_order_key",
    "rebuttal_messages",
    "rebuttal_schema",
    "review_as_read",
    "reviewer_label",
    "run_rebuttals",
]

#: a keep-or-change answer is three short fields: no need for round 1's token budget
REBUTTAL_MAX_TOKENS = 300


@lru_cache(maxsize=64)
def _rebuttal_model(verdicts: tuple[str, ...]) -> type[BaseModel]:
    verdict_type: Any = Literal[verdicts]
    decision_type: Any = Literal["keep", "change"]
    model: type[BaseModel] = create_model(
        "Rebuttal",
        __config__=ConfigDict(extra="forbid"),
        decision=(decision_type, Field(description="Keep the first verdict, or change it.")),
        why=(str, Field(min_length=1, max_length=400, description="One sentence on what decided it.")),
        verdict=(verdict_type, Field(description="Your verdict after this round.")),
    )
    return model


def rebuttal_schema(persona: Persona) -> dict[str, Any]:
    """JSON Schema of a round-2 answer: decision (keep|change), why, verdict."""
    return _rebuttal_model(persona.verdicts).model_json_schema()


def reviewer_label(k: int) -> str:
    """Reviewer A, B, ... Z, AA, AB, ..."""
    letters = ""
    k += 1
    while k:
        k, rest = divmod(k - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return f"Reviewer {letters}"


def _as_read(review: ReviewRow) -> dict[str, Any]:
    """What another reviewer (or the author) reads of a review: no persona, no model, no keys.

    The answers go in as one text: a list would show how many questions the persona asks,
    and so which persona wrote it."""
    data = review.data or {}
    answers = data.get("answers") or {}
    return {
        "verdict": review.verdict,
        "verdict_note": review.verdict_note,
        "review": data.get("review"),
        "points": " ".join(str(v).strip() for v in answers.values()),
    }


def reading_order_key(reader: CellKey, other: ReviewRow) -> str:
    """The key the others' reviews are sorted by for one reader: its order of reading."""
    material = json.dumps([list(reader), other.persona_id, other.member], ensure_ascii=False)
    return hashlib.sha256(material.encode()).hexdigest()


@dataclass(frozen=True)
class RebuttalCell(Cell):
    """Round 2 of one cell: its round-1 review, and the other valid reviews of its tool."""

    own: ReviewRow | None = None
    others: tuple[ReviewRow, ...] = ()
    ROUND: ClassVar[int] = 2

    @property
    def before(self) -> str:
        assert self.own is not None and self.own.verdict is not None
        return self.own.verdict

    def ordered_others(self) -> list[ReviewRow]:
        """The other reviews in the order this cell reads them (a hash of the cell and each)."""
        return sorted(self.others, key=lambda r: reading_order_key(self.key, r))

    def request(self, prompts: PromptSet, sampling: Sampling, depth: Depth = "brief") -> Request:
        """The round-2 ask: the same short answer at either depth (its reply is a sentence)."""
        return Request(
            messages=rebuttal_messages(prompts, self),
            schema=rebuttal_schema(self.persona),
            schema_name=f"{self.persona.id}_rebuttal",
            sampling=replace(sampling, max_tokens=min(sampling.max_tokens, REBUTTAL_MAX_TOKENS)),
        )


def _dump(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def review_as_read(review: ReviewRow) -> str:
    """A round-1 review as the rebuttal prompt shows it to another reviewer (inside its fence)."""
    return _dump(_as_read(review))


def rebuttal_messages(prompts: PromptSet, cell: RebuttalCell) -> list[Message]:
    """The system and user messages of a cell's round-2 request."""
    assert cell.own is not None
    others = [
        {"label": reviewer_label(k), "json": review_as_read(r)} for k, r in enumerate(cell.ordered_others())
    ]
    context = {
        "persona": cell.persona,
        "tool_json": _dump(cell.tool.facts_for_review()),
        "own_json": _dump(_as_read(cell.own)),
        "others": others,
        "verdict": cell.before,
        "changes": [v for v in cell.persona.verdicts if v != cell.before],
    }
    return [
        {"role": "system", "content": prompts.env.get_template("rebuttal_system.j2").render(context)},
        {"role": "user", "content": prompts.env.get_template("rebuttal.j2").render(context)},
    ]


def parse_rebuttal(cell: RebuttalCell, text: str, finish_reason: str | None = None) -> dict[str, Any]:
    """A reply as a valid answer, or InvalidReply saying what to fix (also when its decision
    and verdict disagree with the round-1 verdict)."""
    data = parse_review(_rebuttal_model(cell.persona.verdicts), text, finish_reason).model_dump(mode="json")
    before, after = json.dumps(cell.before), json.dumps(data["verdict"])
    if data["decision"] == "keep" and data["verdict"] != cell.before:
        raise InvalidReply(
            f'"decision" is "keep" but "verdict" is {after}, not your first-round verdict {before}: '
            f'give "verdict": {before} to keep it, or "decision": "change" to change it'
        )
    if data["decision"] == "change" and data["verdict"] == cell.before:
        raise InvalidReply(
            f'"decision" is "change" but "verdict" is still your first-round verdict {before}: '
            f'give another verdict to change it, or "decision": "keep" to keep it'
        )
    return data


@dataclass(frozen=True)
class RebuttalResult:
    cell: RebuttalCell
    valid: bool
    changed: bool
    error: str | None
    asks: int


def _cells(
    engine: Engine, tools: Sequence[Tool], personas: Sequence[Persona], member: Member
) -> Iterator[RebuttalCell]:
    backend = member.backend
    for tool in tools:
        panel = [r for r in engine.store.reviews(engine.run_id, tool.id) if r.repeat == 0 and r.valid]
        for persona in personas:
            own = next((r for r in panel if r.persona_id == persona.id and r.member == backend.label), None)
            others = tuple(r for r in panel if r is not own)
            if own is not None and others:
                yield RebuttalCell(tool, persona, backend, 0, own=own, others=others)


def planned_rebuttals(engine: Engine, members: Sequence[Member], personas: Sequence[Persona]) -> int:
    """Cells with a valid round-1 review (repeat 0) on a tool with another valid one."""
    labels = {m.backend.label for m in members}
    ids = {p.id for p in personas}
    per_tool: dict[str, int] = {}
    for key, verdict in engine.store.cell_verdicts(engine.run_id).items():
        if key.repeat == 0 and verdict is not None and key.member in labels and key.persona_id in ids:
            per_tool[key.tool_id] = per_tool.get(key.tool_id, 0) + 1
    return sum(n for n in per_tool.values() if n >= 2)


async def run_rebuttals(
    engine: Engine,
    tools: Sequence[Tool],
    personas: Sequence[Persona],
) -> RoundStats:
    """Run the rebuttal round of the engine's run (after round 1), finishing what an earlier
    process left; its counts also go to `engine.stats.rebuttal`. The engine's sink is told
    the round's counts before its first request (`RebuttalBegun`), and each answer stored
    (`RebuttalMade`)."""
    store, run_id = engine.store, engine.run_id
    valid, failed = store.rebuttal_counts(run_id)
    changed = sum(r.changed for r in store.rebuttals(run_id))
    stats = RoundStats(
        planned_rebuttals(engine, engine.members, personas), valid + failed, valid, failed, changed
    )
    engine.stats.rebuttal = stats
    engine.tell(RebuttalBegun(copy.copy(stats)))

    def made(result: RebuttalResult) -> None:
        stats.done += 1
        stats.valid += result.valid
        stats.failed += not result.valid
        stats.changed += result.changed
        engine.tell(RebuttalMade(result, copy.copy(stats)))

    workers: Workers[RebuttalCell, RebuttalResult] = Workers(
        engine, lambda cell: store.has_rebuttal(run_id, cell.key), rebut, made
    )
    await workers.run(lambda member: _cells(engine, tools, personas, member))
    return stats


async def rebut(engine: Engine, cell: RebuttalCell, member: Member) -> RebuttalResult:
    """One cell's round-2 answer: ask, validate, re-ask once with the error, store the outcome."""
    # the member's own reply limit (its depth's, or its max_tokens), under the round's cap
    sampling = replace(member.sampling(engine.sampling), seed=engine.sampling.seed + cell.repeat)
    asked = await ask_twice(
        engine, cell, member, cell.request(engine.prompts, sampling), partial(parse_rebuttal, cell)
    )
    return _save(engine, cell, asked.data, asked.error, asked.raw, asked.request_id, asked.asks)


def _save(
    engine: Engine,
    cell: RebuttalCell,
    data: dict[str, Any] | None,
    error: str | None,
    raw: str | None,
    request_id: int | None,
    asks: int,
) -> RebuttalResult:
    engine.store.save_rebuttal(
        engine.run_id,
        cell.key,
        cell.backend.name,
        cell.backend.model,
        verdict_before=cell.before,
        others=len(cell.others),
        data=data,
        error=error,
        raw_reply=raw,
        request_id=request_id,
        asks=asks,
    )
    changed = data is not None and data["verdict"] != cell.before
    return RebuttalResult(cell, data is not None, changed, error, asks)
