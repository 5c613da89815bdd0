"""What the batch route needs from a backend: its provider's Batch API behind one interface.

OpenAI Batch, Anthropic Message Batches and Mistral batch jobs all take many requests at
once, each under a `custom_id`, at half price and with a day to answer. A backend that has
one returns a `BatchAPI` from `Backend.batch_api()`; the runner (`panel.run.batch`) does the
rest: the ledger, the budget, polling, matching results by custom_id, follow-up batches.

Each request goes out exactly as the live route would send it (same body, same schema form),
and each result comes back as the `Reply` (or the `BackendError`) the live route would give.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import ClassVar

from ..errors import BackendError
from .base import Reply, Request

__all__ = ["METADATA_KEY", "METADATA_RUN", "BatchAPI", "BatchEntry", "BatchOutcome", "BatchStatus"]

#: the metadata fields a batch carries at providers that keep metadata (OpenAI, Mistral), so
#: a batch submitted by a process that died before recording its id can be found again
METADATA_KEY = "panel_batch"
METADATA_RUN = "panel_run"


@dataclass(frozen=True)
class BatchEntry:
    """One request of a batch: what to ask, under the id its result comes back with."""

    custom_id: str
    request: Request


@dataclass(frozen=True)
class BatchStatus:
    """A batch as the provider last described it."""

    provider_batch_id: str
    #: normalised (`panel.store.normal_state`): validating, in_progress, finalizing, ended,
    #: failed, expired, cancelling, cancelled
    state: str
    #: total, done (answered, well or not), errored, expired, as far as the provider says
    counts: dict[str, int] = field(default_factory=dict)
    #: why the provider failed the whole batch (validation), if it did
    error: str | None = None
    #: the metadata the provider keeps for it (empty where it keeps none)
    metadata: dict[str, str] = field(default_factory=dict)
    created_at: float | None = None

    @property
    def finished(self) -> bool:
        """Whether the provider is done with it: its results can be read."""
        return self.state in ("ended", "failed", "expired", "cancelled")


@dataclass(frozen=True)
class BatchOutcome:
    """One result line: a reply, or the error the provider gave for that request."""

    custom_id: str
    reply: Reply | None = None
    error: BackendError | None = None


class BatchAPI(abc.ABC):
    """One provider's Batch API, for one backend (its model, key and schema form)."""

    #: the provider's limits on one batch
    max_requests: ClassVar[int]
    max_bytes: ClassVar[int]
    #: whether batches carry metadata the runner can find them by
    keeps_metadata: ClassVar[bool] = True

    @abc.abstractmethod
    def size(self, entry: BatchEntry) -> int:
        """Bytes this entry takes in the provider's upload (counted against `max_bytes`)."""

    @abc.abstractmethod
    async def submit(self, entries: list[BatchEntry], metadata: dict[str, str]) -> BatchStatus:
        """Send one batch; returns as soon as the provider has accepted it."""

    @abc.abstractmethod
    async def status(self, provider_batch_id: str) -> BatchStatus:
        """The batch's state and counts now."""

    @abc.abstractmethod
    async def find(
        self, metadata: dict[str, str], custom_ids: list[str], since: float | None = None
    ) -> BatchStatus | None:
        """A batch submitted earlier with this metadata (or, where the provider keeps none,
        carrying these custom_ids, submitted after `since`, when the ledger recorded it), if
        the provider has one."""

    @abc.abstractmethod
    def results(self, status: BatchStatus) -> AsyncIterator[BatchOutcome]:
        """The batch's result lines, in the provider's order (match them by custom_id)."""

    @abc.abstractmethod
    async def cancel(self, provider_batch_id: str) -> BatchStatus:
        """Ask the provider to stop the batch; what was done stays readable."""

    async def aclose(self) -> None:  # noqa: B027 - most hold nothing of their own
        """Release clients."""
