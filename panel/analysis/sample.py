"""How many tools a figure rests on, and the fewest the report will read a model's figure from.

Below :data:`MIN_TOOLS` tools, the estimates of a model fitted to the tools (the latent-truth
model's accuracy of each judge, the variance split, accuracy with a reference and the pooled
verdicts) are not given: the JSON holds ``null`` for them and a :class:`Sample` saying why,
and on how many tools the figure would have rested. The headline agreement statistics stay
(they describe the tools at hand exactly), with the same warning beside them.

An interval whose two ends are equal is one point: resampling so few tools never moved the
figure, which says nothing about how far it could move. :func:`collapsed` finds them, and
the page and the terminal say so beside them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["COLLAPSED", "MIN_TOOLS", "Sample", "collapsed", "flag_collapsed", "sample"]

#: the fewest tools a model's figure is read from (see the module docstring)
MIN_TOOLS = 20
#: what the page and the terminal say beside an interval that is one point
COLLAPSED = "one point: not a meaningful interval"


@dataclass(frozen=True)
class Sample:
    """Why a section's figures are not given (or not to be read): the tools it rests on."""

    n_tools: int
    minimum: int
    reason: str


def sample(n_tools: int, what: str, minimum: int = MIN_TOOLS) -> Sample | None:
    """A :class:`Sample` when ``n_tools`` is below ``minimum``, else None; ``what`` names the figures."""
    if n_tools >= minimum:
        return None
    tools = "tool" if n_tools == 1 else "tools"
    return Sample(
        n_tools, minimum, f"{n_tools} {tools} is too small a sample to read {what} (the minimum is {minimum})"
    )


def collapsed(estimate: Any) -> bool:
    """Whether an estimate (as a dict of the JSON) has an interval whose two ends are equal."""
    if not isinstance(estimate, Mapping):
        return False
    low, high = estimate.get("low"), estimate.get("high")
    if not isinstance(low, int | float) or not isinstance(high, int | float):
        return False
    return not math.isnan(float(low)) and float(low) == float(high)


def flag_collapsed(data: Any) -> Any:
    """``data`` (plain JSON values) with a ``note`` (:data:`COLLAPSED`) in every estimate whose
    interval is one point; the rest unchanged."""
    if isinstance(data, list):
        return [flag_collapsed(v) for v in data]
    if not isinstance(data, dict):
        return data
    out = {k: flag_collapsed(v) for k, v in data.items()}
    if "point" in out and collapsed(out):
        out["note"] = COLLAPSED
    return out
