"""What a call costs: prices per million tokens from an editable TOML file, and the arithmetic."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backends.base import Usage
from .errors import ConfigError

__all__ = ["DEFAULT_PRICES", "Price", "load_prices", "price_for"]

DEFAULT_PRICES = Path(__file__).parent / "data" / "prices.toml"


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float

    def cost(self, usage: Usage) -> float:
        return (usage.input_tokens * self.input + usage.output_tokens * self.output) / 1e6

    def worst_case(self, input_tokens: int, max_output_tokens: int) -> float:
        return (input_tokens * self.input + max_output_tokens * self.output) / 1e6


def load_prices(path: str | Path | None = None) -> dict[str, Price]:
    path = Path(path) if path else DEFAULT_PRICES
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the price file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    prices = {}
    for key, entry in data.get("prices", {}).items():
        try:
            prices[key] = Price(float(entry["input"]), float(entry["output"]))
        except (KeyError, TypeError, ValueError):
            raise ConfigError(
                f"{path}: prices.\"{key}\" needs numeric 'input' and 'output' (USD per million tokens)"
            ) from None
    return prices


def price_for(backend: str, model: str, options: dict[str, Any], prices: dict[str, Price]) -> Price | None:
    """The member's own configured price, else the file's for backend:model, else for backend."""
    if options.get("price_input") is not None or options.get("price_output") is not None:
        return Price(float(options.get("price_input") or 0), float(options.get("price_output") or 0))
    return prices.get(f"{backend}:{model}") or prices.get(backend)
