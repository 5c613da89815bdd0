"""What a call costs: prices per million tokens from an editable TOML file, and the arithmetic."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..backends.base import Usage
from ..errors import ConfigError, shown
from ..loaders import load_toml
from ..memo import ByIdentity
from ..resources import data_path

if TYPE_CHECKING:
    from ..prompts import Message
    from .plan import Plan

__all__ = ["DEFAULT_PRICES", "Estimate", "Price", "estimate_cost", "input_tokens", "load_prices", "price_for"]

DEFAULT_PRICES = data_path("prices.toml")


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float

    def cost(self, usage: Usage) -> float:
        return (usage.input_tokens * self.input + usage.output_tokens * self.output) / 1e6

    def worst_case(self, input_tokens: float, max_output_tokens: int) -> float:
        return (input_tokens * self.input + max_output_tokens * self.output) / 1e6


class _PriceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    input: float = Field(ge=0, allow_inf_nan=False, description="USD per million input tokens.")
    output: float = Field(ge=0, allow_inf_nan=False, description="USD per million output tokens.")


class _PriceFile(BaseModel):
    """The whole file: one table of entries keyed "backend:model" or "backend"."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prices: dict[str, _PriceEntry] = Field(default_factory=dict)


def load_prices(path: str | Path | None = None) -> dict[str, Price]:
    """Prices by key; a file of the wrong shape raises ConfigError naming the file and the field."""
    path = Path(path) if path else DEFAULT_PRICES
    data = load_toml(path, ConfigError, "price file")
    try:
        parsed = _PriceFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise ConfigError(f"{path}: {_field(first['loc'])}: {_problem(first)}") from None
    return {key: Price(entry.input, entry.output) for key, entry in parsed.prices.items()}


def _field(loc: tuple[int | str, ...]) -> str:
    """The field as written in TOML: prices."openai:gpt-4o".input, each part cut to a readable length."""
    parts = []
    for i, part in enumerate(loc):
        bare = i != 1 and re.fullmatch(r"[A-Za-z0-9_-]+", str(part))
        text = str(part) if bare else json.dumps(str(part), ensure_ascii=False)
        parts.append(text if len(text) <= 60 else text[:60] + "…")
    return ".".join(parts) or "(file)"


def _problem(error: Any) -> str:
    if error["type"] == "extra_forbidden" and len(error["loc"]) == 1:
        return 'unknown key (a price file holds only [prices."backend:model"] tables)'
    if error["type"] == "extra_forbidden":
        return "unknown key (an entry has only 'input' and 'output', in USD per million tokens)"
    if error["type"] == "missing":
        return "missing (an entry needs 'input' and 'output', in USD per million tokens)"
    given = error.get("input")
    if error["type"] in {"dict_type", "model_type"}:
        return f"must be a table (got {shown(given)})"
    got = "" if isinstance(given, dict | list) else f" (got {shown(given)})"
    return f"{error['msg']}{got}"


def price_for(backend: str, model: str, options: dict[str, Any], prices: dict[str, Price]) -> Price | None:
    """The member's own configured price, else the file's for backend:model, else for backend."""
    if options.get("price_input") is not None or options.get("price_output") is not None:
        return Price(float(options.get("price_input") or 0), float(options.get("price_output") or 0))
    return prices.get(f"{backend}:{model}") or prices.get(backend)


@dataclass(frozen=True)
class Estimate:
    requests: int
    expected_usd: float
    worst_usd: float
    priced: bool


#: a persona's schema is the same object in each of its requests
_schema_chars: ByIdentity[int] = ByIdentity(lambda schema: len(json.dumps(schema)))


def input_tokens(messages: Sequence[Message], schema: dict[str, Any]) -> int:
    """A cautious count of a request's input tokens before any tokenizer has seen it.

    About three characters a token, the schema included (it travels with every request),
    plus a little for the messages' framing. The budget guard reserves on this count and
    the plan's estimate is printed from it, so "at most $X" and the guard agree.
    """
    chars = sum(len(m["content"]) for m in messages) + _schema_chars(schema)
    return chars // 3 + 16


def estimate_cost(plan: Plan, sample: int = 24) -> Estimate:
    """Cost of a plan before it runs, from a sample of its rendered prompts.

    Expected: replies of half the token limit. At most: every reply at the limit, which is
    what the budget guard reserves for each request (a re-ask adds a request).
    """
    expected = worst = 0.0
    priced = False
    per_member = plan.total // max(1, len(plan.members))
    max_out = plan.sampling.max_tokens
    for member in plan.members:
        if member.price is None:
            continue
        priced = priced or member.price.input > 0 or member.price.output > 0
        cells = list(itertools.islice(plan.cells_for(member.backend), sample))
        if not cells:
            continue
        requests = (c.request(plan.prompts, plan.sampling) for c in cells)
        counts = [input_tokens(r.messages, r.schema) for r in requests]
        mean_in = sum(counts) / len(counts)
        expected += per_member * member.price.worst_case(mean_in, max_out // 2)
        worst += per_member * member.price.worst_case(mean_in, max_out)
    return Estimate(plan.total, expected, worst, priced)
