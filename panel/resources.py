"""Where the project's data is: beside the package in a checkout, inside it when installed.

A checkout keeps personas/, prompts/, schema/, examples/ and prices.toml at its top, where
people edit them; the wheel carries the same files under panel/_data/. Everything that reads
them finds them here, one way.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["data_dir", "data_path"]

_PACKAGE = Path(__file__).resolve().parent


def data_path(name: str) -> Path:
    """The data file or folder `name` (personas, prompts, schema, examples, prices.toml)."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"panel's data '{name}' is missing from {_PACKAGE}")


def data_dir(name: str) -> Path:
    """The data folder `name` of this installation."""
    return data_path(name)
