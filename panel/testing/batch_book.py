"""The fake provider's batches and files: their lifecycle on the server's clock, and the books.

Provider-neutral: a batch moves through OpenAI's phase names (`validating`, `in_progress`,
`finalizing`, then `completed`, `expired`, `failed`, or `cancelling` → `cancelled`), and
`batch_shapes` spells them each provider's way. Every method runs under `State.lock`.
See `batches` for the behaviour as a client sees it.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from panel.testing.wire import Provider

__all__ = ["TERMINAL", "Batch", "Book", "FileRec", "Item"]

Outcome = Literal["ok", "errored", "expired"]
TERMINAL = frozenset({"completed", "expired", "failed", "cancelled"})
# Shares of `batch_seconds` spent validating and finalizing; the rest is processing.
VALIDATING, FINALIZING = 0.1, 0.9


@dataclass
class Item:
    """One request of a batch and the answer the live endpoint gives its body."""

    custom_id: str
    outcome: Outcome
    status: int = 0  # HTTP status of the answer; 0 for an expired request (never answered)
    body: Any = None  # the answer's JSON body
    faulted: bool = False  # a content fault (malformed, schema_violation, length) was drawn
    poisoned: bool = False  # its results line is written poisoned (`batch_poison`)


@dataclass
class FileRec:
    id: str
    provider: Provider
    purpose: str  # "batch" for uploads; "batch_output" / "batch_error" for results
    filename: str
    data: bytes
    created_at: int


@dataclass
class Batch:
    id: str
    provider: Provider
    items: list[Item]
    order: list[int]  # the order output lines are written in (shuffled: match by custom_id)
    endpoint: str
    metadata: dict[str, Any] | None
    model: str | None
    input_file_ids: list[str]
    seconds: float  # `batch_seconds` when it was created
    partial: bool  # `batch_partial` when it was created
    errors: list[dict[str, Any]]  # validation errors: {code, message, line}; non-empty fails it
    created_clock: float
    created_at: float  # wall time, for the timestamps the client sees
    shift: float = 0.0  # seconds added by `advance`
    phase: str = "validating"
    done: int = 0  # requests processed so far (errored ones included), in input order
    stamps: dict[str, int] = field(default_factory=dict)  # phase -> when it began (epoch s)
    output_file_id: str | None = None
    error_file_id: str | None = None
    results: bytes | None = None  # Anthropic's results JSONL
    outputs: list[dict[str, Any]] | None = None  # Mistral's inline outputs
    delivered: set[str] = field(default_factory=set)  # custom_ids whose good answer arrived whole
    poison: str = ""  # `batch_poison` when it was created (see `hostile`)
    rotate: bool = False  # `batch_rotate` when it was created

    @property
    def processable(self) -> list[Item]:
        return [it for it in self.items if it.outcome != "expired"]

    def counts(self) -> dict[str, int]:
        """Provider-neutral request counts."""
        processed = self.processable[: self.done]
        ended = self.phase in TERMINAL
        return {
            "total": len(self.items),
            "succeeded": sum(1 for it in processed if it.status == 200),
            "errored": sum(1 for it in processed if it.status != 200),
            "expired": sum(1 for it in self.items if it.outcome == "expired")
            if self.phase == "expired"
            else 0,
            "canceled": len(self.items) - self.done if self.phase == "cancelled" else 0,
            "processing": 0 if ended else len(self.items) - self.done,
        }


class Book:
    """Files, batches and the batch counters of one server."""

    def __init__(self) -> None:
        self.files: dict[str, FileRec] = {}
        self.batches: dict[str, Batch] = {}  # in creation order
        self.created: Counter[str] = Counter()
        self.submitted: Counter[str] = Counter()
        self.api_calls: Counter[str] = Counter()
        self.custom_ids: dict[str, Counter[str]] = {}
        self.redundant = 0

    def add_file(self, rec: FileRec) -> FileRec:
        self.files[rec.id] = rec
        return rec

    def add_batch(self, batch: Batch, now: float) -> None:
        """Register a new batch; its requests count as submitted once it passes validation."""
        self.created[batch.provider] += 1
        if not batch.errors:
            seen = self.custom_ids.setdefault(batch.provider, Counter())
            busy = self._answered_or_pending(batch.provider, now)
            for it in batch.items:
                seen[it.custom_id] += 1
                self.redundant += it.custom_id in busy
            self.submitted[batch.provider] += len(batch.items)
        self.batches[batch.id] = batch

    def _answered_or_pending(self, provider: str, now: float) -> set[str]:
        ids: set[str] = set()
        for b in self.batches.values():
            if b.provider != provider or b.errors:
                continue
            self.refresh(b, now)
            ids |= b.delivered if b.phase in TERMINAL else {it.custom_id for it in b.items}
        return ids

    def elapsed(self, b: Batch, now: float) -> float:
        return now - b.created_clock + b.shift

    def _stamp(self, b: Batch, phase: str, elapsed: float) -> None:
        b.stamps.setdefault(phase, int(b.created_at + elapsed))

    def refresh(self, b: Batch, now: float) -> bool:
        """Move `b` on to where the clock says it is; True when it has just ended."""
        if b.phase in TERMINAL:
            return False
        elapsed = self.elapsed(b, now)
        if b.phase == "cancelling":
            self._end(b, "cancelled", elapsed)
            return True
        frac = 1.0 if b.seconds == 0 else elapsed / b.seconds
        if frac < VALIDATING:
            return False
        if b.errors:
            self._end(b, "failed", elapsed)
            return True
        self._stamp(b, "in_progress", elapsed)
        work = len(b.processable)
        progress = min(1.0, (frac - VALIDATING) / (FINALIZING - VALIDATING))
        b.done = work if frac >= 1.0 else max(b.done, math.floor(progress * work))
        if frac >= 1.0:
            expired = any(it.outcome == "expired" for it in b.items)
            self._end(b, "expired" if expired else "completed", elapsed)
            return True
        b.phase = "finalizing" if frac >= FINALIZING else "in_progress"
        if b.phase == "finalizing":
            self._stamp(b, "finalizing", elapsed)
        return False

    def cancel(self, b: Batch, now: float) -> None:
        """Stop processing `b`: `cancelling` now, `cancelled` at the next look; no-op once ended."""
        self.refresh(b, now)
        if b.phase not in TERMINAL:
            b.phase = "cancelling"
            self._stamp(b, "cancelling", self.elapsed(b, now))

    def advance(self, seconds: float | None, batch_id: str | None, now: float) -> list[Batch]:
        """Move batches on by `seconds` (None: to their end); returns the batches touched."""
        touched = [b for b in self.batches.values() if batch_id in (None, b.id)]
        for b in touched:
            if b.phase in TERMINAL:
                continue
            b.shift += seconds if seconds is not None else max(0.0, b.seconds - self.elapsed(b, now))
            self.refresh(b, now)
            if seconds is None and b.phase == "cancelling":
                self.refresh(b, now)
        return touched

    def _end(self, b: Batch, phase: str, elapsed: float) -> None:
        # Imported here: the shapes module builds on this one's types.
        from panel.testing.batch_shapes import write_results

        b.phase = phase
        self._stamp(b, phase, elapsed)
        write_results(self, b)

    def snapshot(self, now: float) -> dict[str, Any]:
        rows = []
        for b in self.batches.values():
            self.refresh(b, now)
            rows.append(
                {
                    "id": b.id,
                    "provider": b.provider,
                    "phase": b.phase,
                    "metadata": b.metadata,
                    "counts": b.counts(),
                    "errors": list(b.errors),
                }
            )
        dupes = {p: sum(1 for n in seen.values() if n > 1) for p, seen in self.custom_ids.items()}
        return {
            "created": dict(self.created),
            "requests": dict(self.submitted),
            "api_calls": dict(self.api_calls),
            "duplicates": dupes,
            "redundant": self.redundant,
            "list": rows,
        }

    @staticmethod
    def wall() -> float:
        return time.time()
