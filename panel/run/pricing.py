"""What a call costs: prices per million tokens from an editable TOML file, and the arithmetic.

The same file gives each provider's batch discount: on the batch route a member pays its
price less that share (see `Price.for_route`).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..backends.base import MemberOptions, Usage
from ..errors import ConfigError, shown
from ..loaders import load_toml
from ..memo import ByIdentity
from ..resources import data_path
from .head_to_head import HeadToHeadAsk, member_asks

if TYPE_CHECKING:
    from ..prompts import Message
    from .cells import Member
    from .plan import Plan

__all__ = [
    "DEFAULT_PRICES",
    "ROUTES",
    "Estimate",
    "Price",
    "Prices",
    "charges",
    "estimate_cost",
    "head_to_head_cost",
    "input_tokens",
    "load_prices",
    "price_for",
    "schema_chars",
    "utf8_length",
]

DEFAULT_PRICES = data_path("prices.toml")

#: The ways a member's requests can go: one at a time, or through the provider's Batch API.
ROUTES = ("live", "batch")


@dataclass(frozen=True)
class Price:
    """USD per million tokens, and the share taken off on the batch route."""

    input: float
    output: float
    #: 0.5: the batch route costs half; 0: no discount known, the batch route costs the same
    batch_discount: float = 0.0

    def for_route(self, route: str) -> Price:
        """The price on a route: this one live; less the batch discount on the batch route
        (the price returned has no discount left to take)."""
        if route == "live":
            return self
        if route == "batch":
            keep = 1.0 - self.batch_discount
            return Price(self.input * keep, self.output * keep)
        raise ValueError(f"unknown route {route!r} (one of {', '.join(ROUTES)})")

    def cost(self, usage: Usage) -> float:
        return (usage.input_tokens * self.input + usage.output_tokens * self.output) / 1e6

    def worst_case(self, input_tokens: float, max_output_tokens: int) -> float:
        return (input_tokens * self.input + max_output_tokens * self.output) / 1e6


class _PriceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    input: float = Field(ge=0, allow_inf_nan=False, description="USD per million input tokens.")
    output: float = Field(ge=0, allow_inf_nan=False, description="USD per million output tokens.")


_Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class _BatchTable(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    discount: dict[str, _Share] = Field(
        default_factory=dict,
        description='The share of the price taken off on the batch route, by "backend:model" or "backend".',
    )


class _PriceFile(BaseModel):
    """The whole file: one table of entries keyed "backend:model" or "backend", and the
    batch discounts keyed the same way."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prices: dict[str, _PriceEntry] = Field(default_factory=dict)
    batch: _BatchTable = Field(default_factory=_BatchTable)


class Prices(dict[str, Price]):
    """The file's prices by key, each with its batch discount, and the discounts themselves
    (a member with its own price in panel.toml takes its backend's discount)."""

    def __init__(
        self, prices: Mapping[str, Price] | None = None, discounts: Mapping[str, float] | None = None
    ) -> None:
        self.discounts = dict(discounts or {})
        found = prices or {}
        super().__init__(
            {key: Price(p.input, p.output, self.discount(*_split(key))) for key, p in found.items()}
        )

    def discount(self, backend: str, model: str | None) -> float:
        """The batch discount for backend:model, else for the backend, else none."""
        if model is not None and f"{backend}:{model}" in self.discounts:
            return self.discounts[f"{backend}:{model}"]
        return self.discounts.get(backend, 0.0)


def _split(key: str) -> tuple[str, str | None]:
    backend, _, model = key.partition(":")
    return backend, model or None


def load_prices(path: str | Path | None = None) -> Prices:
    """Prices by key; a file of the wrong shape raises ConfigError naming the file and the field."""
    path = Path(path) if path else DEFAULT_PRICES
    data = load_toml(path, ConfigError, "price file")
    try:
        parsed = _PriceFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise ConfigError(f"{path}: {_field(first['loc'])}: {_problem(first)}") from None
    entries = {key: Price(entry.input, entry.output) for key, entry in parsed.prices.items()}
    return Prices(entries, parsed.batch.discount)


def _field(loc: tuple[int | str, ...]) -> str:
    """The field as written in TOML: prices."openai:gpt-4o".input, each part cut to a readable length."""
    parts = []
    keyed = 1 if loc[:1] == ("prices",) else -1  # a price's key is quoted as the file writes it
    for i, part in enumerate(loc):
        bare = i != keyed and re.fullmatch(r"[A-Za-z0-9_-]+", str(part))
        text = str(part) if bare else json.dumps(str(part), ensure_ascii=False)
        parts.append(text if len(text) <= 60 else text[:60] + "…")
    return ".".join(parts) or "(file)"


def _problem(error: Any) -> str:
    if error["type"] == "extra_forbidden" and len(error["loc"]) == 1:
        return 'unknown key (a price file holds only [prices."backend:model"] tables and [batch])'
    if error["loc"][:1] == ("batch",):
        if error["type"] == "extra_forbidden":
            return "unknown key ([batch] holds only 'discount', a table of shares by backend)"
        if error["type"] in {"less_than_equal", "greater_than_equal", "finite_number"}:
            got = shown(error["input"])
            return f"must be a share from 0 to 1 (0.5: half price on the batch route; got {got})"
    if error["type"] == "extra_forbidden":
        return "unknown key (an entry has only 'input' and 'output', in USD per million tokens)"
    if error["type"] == "missing":
        return "missing (an entry needs 'input' and 'output', in USD per million tokens)"
    given = error.get("input")
    if error["type"] in {"dict_type", "model_type"}:
        return f"must be a table (got {shown(given)})"
    got = "" if isinstance(given, dict | list) else f" (got {shown(given)})"
    return f"{error['msg']}{got}"


def price_for(backend: str, model: str, options: MemberOptions, prices: Prices) -> Price | None:
    """The member's own configured price, else the file's for backend:model, else for backend;
    with the file's batch discount for backend:model, else for backend."""
    discount = prices.discount(backend, model)
    if options.price_input is not None or options.price_output is not None:
        return Price(options.price_input or 0.0, options.price_output or 0.0, discount)
    found = prices.get(f"{backend}:{model}") or prices.get(backend)
    return None if found is None else Price(found.input, found.output, discount)


@dataclass(frozen=True)
class Estimate:
    """A plan's cost before it runs, at the prices of each member's route."""

    requests: int
    expected_usd: float
    worst_usd: float
    priced: bool
    #: what the same plan would cost with every member on the live route
    live_expected_usd: float = 0.0
    live_worst_usd: float = 0.0
    #: how many of the requests go on the batch route
    batch_requests: int = 0
    #: how many of the requests are head-to-head asks (`panel.run.head_to_head`; always live)
    head_to_head: int = 0


#: a request's schema as characters of ASCII JSON (its bytes too); a persona's schema is the
#: same object in each of its requests
schema_chars: ByIdentity[int] = ByIdentity(lambda schema: len(json.dumps(schema)))


def input_tokens(messages: Sequence[Message], schema: dict[str, Any]) -> int:
    """A cautious count of a request's input tokens before any tokenizer has seen it.

    About three bytes of UTF-8 a token, the schema included (it travels with every request),
    plus a little for the messages' framing. English runs near four characters a token; a
    script written in several bytes a character (Chinese, Japanese, Cyrillic) runs near one
    or two characters a token, which bytes still cover where characters would not. The
    budget guard reserves on this count and the plan's estimate is printed from it, so
    "at most $X" and the guard agree.
    """
    size = sum(utf8_length(m["content"]) for m in messages) + schema_chars(schema)
    return size // 3 + 16


def utf8_length(text: str) -> int:
    """The text's size in UTF-8 (half a surrogate pair counted as the 3 bytes it would take)."""
    # Most prompts are ASCII, whose length is their size: the encode is for the others.
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def charges(members: Sequence[Member]) -> bool:
    """Whether a cost means anything: some member has a price above zero (a local model, or
    one with no price known, costs nothing that can be reported)."""
    return any(m.price is not None and (m.price.input > 0 or m.price.output > 0) for m in members)


def estimate_cost(
    plan: Plan,
    sample: int = 24,
    routes: Mapping[str, str] | None = None,
    done: Mapping[str, int] | None = None,
) -> Estimate:
    """Cost of a plan before it runs, from a sample of its rendered prompts; `done` gives the
    reviews already stored by member label (a resumed run): only the rest is estimated. The
    plan's head-to-head asks are counted and priced too (all of them, even on a resume).

    Expected: replies of half each member's token limit (which follows its depth). At most:
    every reply at the limit, which is what the budget guard reserves for each request (a
    re-ask adds a request). `routes` gives a member's route by its label (default live); the
    live figures price every member on the live route.
    """
    expected = worst = live_expected = live_worst = 0.0
    batch_requests = 0
    priced = charges(plan.members)
    done = done or {}
    planned = {m.backend.label: plan.planned_for(m.backend) for m in plan.members}
    for member in plan.members:
        per_member = max(0, planned[member.backend.label] - done.get(member.backend.label, 0))
        if member.price is None:
            continue
        cells = list(itertools.islice(plan.cells_for(member.backend), sample))
        if not cells:
            continue
        # Each member's own depth and token limit: a full review is asked for, and paid, longer.
        max_out = member.sampling(plan.sampling).max_tokens
        requests = (member.request(c, plan.prompts, plan.sampling) for c in cells)
        counts = [input_tokens(r.messages, r.schema) for r in requests]
        mean_in = sum(counts) / len(counts)
        route = (routes or {}).get(member.backend.label, "live")
        price = member.price.for_route(route)
        batch_requests += per_member if route == "batch" else 0
        expected += per_member * price.worst_case(mean_in, max_out // 2)
        worst += per_member * price.worst_case(mean_in, max_out)
        live_expected += per_member * member.price.worst_case(mean_in, max_out // 2)
        live_worst += per_member * member.price.worst_case(mean_in, max_out)
    asks = 0
    pairs = plan.judged_pairs
    for member in plan.members:
        if pairs == []:
            break
        n = sum(1 for _ in member_asks(plan.personas, member.backend, plan.tools, pairs))
        shown = itertools.islice(member_asks(plan.personas, member.backend, plan.tools, pairs), sample)
        more, most = head_to_head_cost(plan, member, shown, n)
        asks += n
        expected, worst = expected + more, worst + most
        live_expected, live_worst = live_expected + more, live_worst + most
    reviews = plan.total - sum(min(n, done.get(label, 0)) for label, n in planned.items())
    return Estimate(reviews + asks, expected, worst, priced, live_expected, live_worst, batch_requests, asks)


def head_to_head_cost(
    plan: Plan, member: Member, shown: Iterable[HeadToHeadAsk], n: int
) -> tuple[float, float]:
    """The expected and worst-case USD of `n` head-to-head asks of a member, from the mean input
    tokens of the asks `shown` (a sample) and their reply limit: replies of half the limit
    expected, all of it at worst. They go live whatever the member's route (as the rebuttal
    round); (0, 0) for a member without a price, or no ask."""
    run = member.sampling(plan.sampling)
    requests = [a.request(plan.prompts, run) for a in shown]
    if member.price is None or not requests or not n:
        return 0.0, 0.0
    mean_in = sum(input_tokens(r.messages, r.schema) for r in requests) / len(requests)
    max_out = requests[0].sampling.max_tokens
    return n * member.price.worst_case(mean_in, max_out // 2), n * member.price.worst_case(mean_in, max_out)
