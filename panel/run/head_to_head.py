"""Head-to-head asks: one persona on one member reads two tools' catalog entries and names the
one to ship with, with a reason; every pair is asked in both orders (A-then-B, B-then-A), so a
judge that picks by position shows as one (`panel.report.head_to_head` combines the two).

The reply names a position ("A" or "B"), never a tool id: the ids are the catalog's text and
stay inside the fenced data. :func:`answer` turns a position back into the tool it stood for.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import combinations
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..backends.base import Backend, Request, Sampling
from ..catalog import Catalog, Tool
from ..errors import UnknownToolError, UserError, shown
from ..personas import Persona
from ..prompts import Message, PromptSet
from ..report.head_to_head import Answer
from .validate import parse_review

if TYPE_CHECKING:  # a type only: the plan runs the head-to-head round
    from .plan import Plan

__all__ = [
    "HEAD_TO_HEAD_MAX_TOKENS",
    "HeadToHeadAsk",
    "answer",
    "asks",
    "head_to_head_asks",
    "head_to_head_messages",
    "head_to_head_schema",
    "judges_pair",
    "member_asks",
    "named_pairs",
    "parse_head_to_head",
]

#: the longest reason a reply may give
REASON_MAX_LENGTH = 400
#: the reply limit of a head-to-head ask: a letter and a sentence
HEAD_TO_HEAD_MAX_TOKENS = 300


@dataclass(frozen=True)
class HeadToHeadAsk:
    """One request of a head-to-head: a persona on a member, `first` shown as Tool A."""

    persona: Persona
    member: str
    first: Tool
    second: Tool

    def messages(self, prompts: PromptSet) -> list[Message]:
        return head_to_head_messages(prompts, self.persona, self.first, self.second)

    @property
    def schema_name(self) -> str:
        return f"{self.persona.id}_head_to_head"

    def request(self, prompts: PromptSet, sampling: Sampling) -> Request:
        """The ask as sent, at any depth: its reply held to :data:`HEAD_TO_HEAD_MAX_TOKENS`."""
        return Request(
            messages=self.messages(prompts),
            schema=head_to_head_schema(),
            schema_name=self.schema_name,
            sampling=replace(sampling, max_tokens=min(sampling.max_tokens, HEAD_TO_HEAD_MAX_TOKENS)),
        )


def asks(
    personas: Sequence[Persona],
    members: Sequence[str],
    tools: Sequence[Tool],
    pairs: Iterable[tuple[str, str]] | None = None,
) -> Iterator[HeadToHeadAsk]:
    """Every ask of a head-to-head: for each (persona, member, pair) A-then-B then B-then-A.

    `pairs` (tool ids) default to every pair of `tools`, in the tools' order."""
    by_id = {t.id: t for t in tools}
    chosen = list(pairs) if pairs is not None else [(a.id, b.id) for a, b in combinations(tools, 2)]
    for a_id, b_id in chosen:
        if a_id == b_id:
            raise ValueError(f"a head-to-head pair needs two tools, got {a_id!r} twice")
        a, b = by_id[a_id], by_id[b_id]
        for persona in personas:
            for member in members:
                yield HeadToHeadAsk(persona, member, a, b)
                yield HeadToHeadAsk(persona, member, b, a)


def member_asks(
    personas: Sequence[Persona],
    backend: Backend,
    tools: Sequence[Tool],
    pairs: Iterable[tuple[str, str]] | None = None,
) -> Iterator[HeadToHeadAsk]:
    """One member's asks (:func:`asks`), none of a pair in which it recuses from either tool
    (`recuse = "maker"`): it neither judges its maker's tool nor judges against it."""
    for ask in asks(personas, [backend.label], tools, pairs):
        if judges_pair(backend, ask.first, ask.second):
            yield ask


def judges_pair(backend: Backend, first: Tool, second: Tool) -> bool:
    """Whether a member may judge this pair: it recuses from neither tool's maker."""
    return not (backend.recuses_from(first.maker) or backend.recuses_from(second.maker))


def head_to_head_asks(plan: Plan, pairs: Iterable[tuple[str, str]] | None = None) -> int:
    """How many head-to-head asks a plan sends: pairs x 2 orders x personas x members, less
    the pairs a member recuses from; 0 when the plan asks none (`pairs`: tool ids, default
    the plan's own: every pair of its tools, or the pairs it names)."""
    chosen = list(pairs) if pairs is not None else plan.judged_pairs
    if chosen == []:
        return 0
    return sum(1 for m in plan.members for _ in member_asks(plan.personas, m.backend, plan.tools, chosen))


def named_pairs(texts: Iterable[str], catalog: Catalog, tool_ids: Sequence[str]) -> list[tuple[str, str]]:
    """Pairs named "TOOL_A:TOOL_B" (`panel review --head-to-head`), checked against the run's
    tools: each a UserError naming the pair when it is not two different tools of the run, or
    is named twice (in either order)."""
    ids = set(tool_ids)
    pairs: list[tuple[str, str]] = []
    for text in texts:
        where = f"--head-to-head {shown(text)}"
        a, colon, b = text.strip().partition(":")
        a, b = a.strip(), b.strip()
        if not colon or not a or not b or ":" in b:
            raise UserError(f"{where}: name a pair as TOOL_A:TOOL_B")
        for tid in (a, b):
            if tid in ids:
                continue
            try:
                found = catalog.get(tid)
            except UnknownToolError as exc:  # the catalog's own line, with close ids
                raise UserError(f"{where}: {exc}") from None
            if found.id != tid:
                raise UserError(f"{where}: name the tool by its id, {shown(found.id)}")
            raise UserError(f"{where}: {shown(tid)} is not among the tools this run reviews (--tools)")
        if a == b:
            raise UserError(f"{where}: a tool cannot be judged against itself; name two tools")
        if (a, b) in pairs or (b, a) in pairs:
            raise UserError(f"{where}: this pair is named twice (both orders are asked anyway)")
        pairs.append((a, b))
    return pairs


def _dump(tool: Tool) -> str:
    return json.dumps(tool.facts_for_review(), indent=2, ensure_ascii=False)


def head_to_head_messages(prompts: PromptSet, persona: Persona, first: Tool, second: Tool) -> list[Message]:
    """The system and user messages of one order: `first` as Tool A, `second` as Tool B, each
    entry fenced as data."""
    context = {"persona": persona, "first_json": _dump(first), "second_json": _dump(second)}
    return [
        {"role": "system", "content": prompts.env.get_template("head_to_head_system.j2").render(context)},
        {"role": "user", "content": prompts.env.get_template("head_to_head.j2").render(context)},
    ]


@lru_cache(maxsize=1)
def _model() -> type[BaseModel]:
    pick: Any = Literal["A", "B"]
    model: type[BaseModel] = create_model(
        "HeadToHead",
        __config__=ConfigDict(extra="forbid"),
        ship_with=(pick, Field(description="The tool to ship with: A or B.")),
        reason=(
            str,
            Field(
                min_length=1,
                max_length=REASON_MAX_LENGTH,
                description="One sentence on the fact that decides it.",
            ),
        ),
    )
    return model


def head_to_head_schema() -> dict[str, Any]:
    """JSON Schema of a head-to-head reply: ship_with ("A" or "B") and reason."""
    return _model().model_json_schema()


def parse_head_to_head(text: str, finish_reason: str | None = None) -> dict[str, Any]:
    """A reply as {"ship_with", "reason"}, or InvalidReply saying what to fix."""
    return parse_review(_model(), text, finish_reason, "head-to-head reply").model_dump(mode="json")


def answer(ask: HeadToHeadAsk, data: dict[str, Any] | None, error: str | None = None) -> Answer:
    """The ask's answer as the report reads it: the tool picked (None when `data` is None)."""
    picked = None
    if data is not None:
        picked = ask.first.id if data["ship_with"] == "A" else ask.second.id
    return Answer(
        ask.persona.id,
        ask.member,
        ask.first.id,
        ask.second.id,
        picked,
        reason=data["reason"] if data is not None else None,
        error=error,
    )
