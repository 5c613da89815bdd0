"""What a call costs: prices per million tokens from an editable TOML file, and the arithmetic."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..backends.base import Usage
from ..errors import ConfigError, shown
from ..loaders import load_toml
from ..resources import data_path

__all__ = ["DEFAULT_PRICES", "Price", "load_prices", "price_for"]

DEFAULT_PRICES = data_path("prices.toml")


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float

    def cost(self, usage: Usage) -> float:
        return (usage.input_tokens * self.input + usage.output_tokens * self.output) / 1e6

    def worst_case(self, input_tokens: int, max_output_tokens: int) -> float:
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
