"""The long table: one row per stored review, the shape every analysis and export reads."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..store import Store
from .cost import Origins

__all__ = ["LONG_COLUMNS", "PhaseProgress", "Row", "iter_long", "long_table", "reading"]

LONG_COLUMNS = (
    "run", "tool", "persona", "backend", "model", "member", "repeat", "verdict", "valid",
    "cost_usd", "latency_s", "input_tokens", "output_tokens", "paid_by",
)  # fmt: skip
Row = dict[str, Any]
PhaseProgress = Callable[[str, int, int], None]
"""Told ``(phase, done, total)`` as the analysis goes: a label, and how far that phase is."""


def iter_long(store: Store, run_ids: Sequence[str]) -> Iterator[Row]:
    """One row per review, every run and repeat, read from the store a row at a time.

    ``cost_usd`` is what the review cost and ``paid_by`` the run whose requests paid it: a
    review copied with ``--since`` carries the spend of the review it copies (see
    :mod:`panel.analysis.cost`).
    """
    origins = Origins(store)
    for run_id in run_ids:
        for r in store.iter_reviews(run_id):
            paid = origins.paid(run_id, r)
            yield {
                "run": run_id, "tool": r.tool_id, "persona": r.persona_id, "backend": r.backend,
                "model": r.model, "member": r.member, "repeat": r.repeat,
                "verdict": r.verdict if r.valid else None, "valid": r.valid,
                "cost_usd": paid.usd, "latency_s": r.latency_s,
                "input_tokens": r.input_tokens, "output_tokens": r.output_tokens, "paid_by": paid.run,
            }  # fmt: skip


def long_table(store: Store, run_ids: Sequence[str]) -> list[Row]:
    """The long table (columns :data:`LONG_COLUMNS`) as a list; see :func:`iter_long`."""
    return list(iter_long(store, run_ids))


def reading(store: Store, run_ids: Sequence[str], tell: PhaseProgress) -> Iterator[Row]:
    total = sum(sum(store.review_counts(run_id)) for run_id in run_ids)
    done = 0
    tell("reading reviews", done, total)
    for done, row in enumerate(iter_long(store, run_ids), 1):
        yield row
        if done % 2000 == 0:
            tell("reading reviews", done, total)
    tell("reading reviews", done, total)
