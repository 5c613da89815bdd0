"""Render a comparison record as Markdown (and, later, other formats) from Jinja2 templates."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

from .record import ComparisonRecord

__all__ = ["render_markdown"]

_TEMPLATES = Path(__file__).parent / "templates"


def _cell(value: object) -> str:
    """Make text safe inside a Markdown table cell."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _quote(value: object) -> str:
    """Keep multi-line text inside one Markdown block quote."""
    return "\n> ".join(str(value).splitlines()) or ""


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # Markdown; the HTML page escapes on its own
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
    )
    env.filters["cell"] = _cell
    env.filters["quote"] = _quote
    return env


def render_markdown(record: ComparisonRecord) -> str:
    return _env().get_template("comparison.md.j2").render(record=record)
