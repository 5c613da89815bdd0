"""What the reviews analysed cost, and which runs paid for them.

A review copied from an earlier run (`panel review --since`) made no request in the run that
holds it, so the store gives it no spend there. Its verdict still cost what the review it
copies cost: :class:`Origins` follows ``copied_from`` back (a copy of a copy too) to the run
whose requests paid, and the long table carries that spend and that run (``paid_by``).
:func:`spend` sums the reviews analysed, each paid review once, by the run that paid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..store import CellKey, ReviewRow, Store

__all__ = ["Origins", "Paid", "Spend", "spend"]


@dataclass(frozen=True)
class Paid:
    """What one review cost, and the run whose requests paid it."""

    usd: float
    run: str


class Origins:
    """Each review's spend and paying run, reading each run a copy comes from once."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._runs: dict[str, dict[CellKey, Paid]] = {}

    def paid(self, run_id: str, review: ReviewRow) -> Paid:
        """``review`` of ``run_id``: its own spend, or that of the review it was copied from."""
        source = review.copied_from
        if source is None:
            return Paid(review.cost_usd, run_id)
        # A copy whose source is gone from the store is shown as paid by nothing known.
        return self._of(source, set()).get(review.key, Paid(review.cost_usd, run_id))

    def _of(self, run_id: str, seen: set[str]) -> dict[CellKey, Paid]:
        if run_id not in self._runs:
            seen = seen | {run_id}
            found: dict[CellKey, Paid] = {}
            for r in self._store.iter_reviews(run_id):
                if r.copied_from is None or r.copied_from in seen:
                    found[r.key] = Paid(r.cost_usd, run_id)
                else:
                    found[r.key] = self._of(r.copied_from, seen).get(r.key, Paid(r.cost_usd, run_id))
            self._runs[run_id] = found
        return self._runs[run_id]


@dataclass(frozen=True)
class Spend:
    """The reviews analysed: what they cost in all, and how much of it each run paid."""

    usd: float
    reviews: int
    #: run id -> {"usd": spend, "reviews": how many}, the runs analysed first, then by spend
    paid_by: dict[str, dict[str, Any]]
    sentence: str


def spend(rows: Iterable[Mapping[str, Any]], runs: Iterable[str]) -> Spend:
    """The spend of long-table ``rows`` (each paid review once), by the run that paid it."""
    counted: dict[tuple[Any, ...], tuple[str, float]] = {}
    for row in rows:
        payer = str(row.get("paid_by") or row["run"])
        key = (payer, row["tool"], row["persona"], row["member"], row["repeat"])
        counted.setdefault(key, (payer, float(row.get("cost_usd") or 0.0)))
    by: dict[str, dict[str, Any]] = {}
    for payer, usd in counted.values():
        entry = by.setdefault(payer, {"usd": 0.0, "reviews": 0})
        entry["usd"] += usd
        entry["reviews"] += 1
    analysed = list(runs)
    order = sorted(by, key=lambda r: (r not in analysed, -by[r]["usd"], r))
    paid_by = {r: {"usd": round(by[r]["usd"], 10), "reviews": by[r]["reviews"]} for r in order}
    total = round(sum(e["usd"] for e in paid_by.values()), 10)
    return Spend(total, len(counted), paid_by, _sentence(total, paid_by, analysed))


def _sentence(total: float, paid_by: Mapping[str, Mapping[str, Any]], analysed: list[str]) -> str:
    text = f"{_usd(total)} for the reviews analysed"
    earlier = [(r, e) for r, e in paid_by.items() if r not in analysed]
    if not earlier:
        return text + "."
    parts = [f"{_usd(e['usd'])} of it paid by run {r} ({e['reviews']} reviews copied with --since)"
             for r, e in earlier]  # fmt: skip
    return f"{text}, {'; '.join(parts)}."


def _usd(value: float) -> str:
    return f"${value:.2f}" if value >= 1 else f"${value:.4f}"
