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
import json
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BeforeValidator, Field

from .. import jsontext
from ..errors import BackendError, FatalError, TransientError, shown
from ._provider import error_for_status
from .base import Reply, Request
from .envelope import MAX_BODY_BYTES, Envelope, Lenient, Text, error_detail

__all__ = [
    "LATEST",
    "MAX_COUNT",
    "METADATA_KEY",
    "METADATA_RUN",
    "BatchAPI",
    "BatchEntry",
    "BatchOutcome",
    "BatchStatus",
    "Count",
    "Metadata",
    "ResultLine",
    "Time",
    "batch_state",
    "error_text",
    "read_line",
    "result_error",
]

E = TypeVar("E", bound=Envelope)

#: more requests than any provider takes in one batch
MAX_COUNT = 10**9
#: a count in a provider's batch object; anything but a whole number from 0 to `MAX_COUNT`
#: reads as absent (a progress line's ETA divides by it)
Count = Annotated[Annotated[int, Field(ge=0, le=MAX_COUNT)] | None, Lenient]
#: a batch's creation in seconds since the epoch, up to the year 5138; anything else (a
#: negative, infinite or later time, which made the progress line's ETA infinite) reads as absent
LATEST = 1e11
Time = Annotated[Annotated[float, Field(ge=0, le=LATEST, allow_inf_nan=False)] | None, Lenient]


def _strings(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


#: a batch's metadata as the runner compares it: keys and values as text, anything that is
#: not an object read as none
Metadata = Annotated[dict[str, str], BeforeValidator(_strings)]
#: the custom_id of a line too broken to parse (cut short, nested too deep), to fail its request
_CUSTOM_ID = re.compile(rb'"custom_id"\s*:\s*"([A-Za-z0-9_-]{1,128})"')

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


class _LineResponse(Envelope):
    status_code: Annotated[int | None, Lenient] = None
    request_id: Text = None
    body: Any = None


class ResultLine(Envelope):
    """A line of an OpenAI or Mistral results file:
    `{"custom_id", "response": {"status_code", "request_id", "body"}, "error"}`."""

    custom_id: Text = None
    response: Annotated[_LineResponse | None, Lenient] = None
    error: Any = None

    def outcome(
        self,
        read: Callable[[dict[str, Any], str | None], Reply],
        failure: Callable[[int | None, Any, Any, str | None], BackendError],
    ) -> BatchOutcome:
        """The line's answer, read by `read` (a chat completion body and its request id), or
        what `failure` makes of its status, body and error when it carries none."""
        assert self.custom_id is not None
        response = self.response or _LineResponse()
        status, body, request_id = response.status_code, response.body, response.request_id
        if status == 200 and isinstance(body, dict) and not self.error:
            try:
                return BatchOutcome(self.custom_id, reply=read(body, request_id))
            except BackendError as exc:
                return BatchOutcome(self.custom_id, error=exc)
        return BatchOutcome(self.custom_id, error=failure(status, body, self.error, request_id))


def read_line(line: bytes, model: type[E], provider: str) -> E | BatchOutcome | None:
    """One results line, read on its own through its envelope `model`.

    A line that is not JSON, or is nested too deep or too long to read, fails the request
    whose custom_id it still shows, with the reason (transient: a follow-up batch asks
    again); a line that shows none (blank, or cut before its custom_id) is None, and its
    request counts as unanswered. The lines around it are read as usual.
    """
    line = line.strip()
    if not line:
        return None
    try:
        data = jsontext.loads(line, max_chars=MAX_BODY_BYTES)
    except ValueError as exc:
        found = _CUSTOM_ID.search(line[:4096])
        if found is None:
            return None
        why = exc if isinstance(exc, jsontext.JSONRefused) else "it is not JSON (cut short?)"
        error = TransientError(f"{provider}: its result line could not be read: {why}")
        return BatchOutcome(found.group(1).decode(), error=error)
    if not isinstance(data, dict):
        return None
    item = model.model_validate(data)
    return item if getattr(item, "custom_id", None) else None


def result_error(
    provider: str, status: int | None, body: Any, error: Any, request_id: str | None
) -> BackendError:
    """The failure a results line (OpenAI's or Mistral's shape) gives for its request, when it
    carries no chat completion: the status and error body as a live call's, or what is amiss."""
    if status is None:
        said = f" (its error: {shown(error)})" if error is not None else ""
        return FatalError(f"{provider}: the result line carries no response{said}", request_id=request_id)
    if status == 200 and not error:
        return FatalError(
            f"{provider}: the result is not a chat completion: {shown(body)}", request_id=request_id
        )
    if body is not None:
        detail = error_detail(json.dumps(body).encode())
    else:
        detail = str(error.get("message") if isinstance(error, dict) else shown(error))
    return error_for_status(provider, status, detail, request_id=request_id)


def batch_state(provider: str, said: str | None) -> str:
    """A provider's batch state in our names (`panel.store.normal_state`). One no provider
    documents is a `TransientError` naming it: the look at the batch fails (the next may
    read it), and a run of them stops the run, to be resumed."""
    from ..store import normal_state

    try:
        return normal_state(said or "")
    except ValueError:
        raise TransientError(
            f"{provider}: the batch is in a state panel does not know: {shown(said)}"
        ) from None


def error_text(errors: Any) -> str | None:
    """What a batch's errors say, as one line: each error's line and message (OpenAI's
    `{"data": [{"line", "message"}]}`, Mistral's `[{"message", "count"}]`, or whatever came)."""
    if isinstance(errors, dict):
        errors = errors.get("data")
    if errors is None:
        return None
    items = errors if isinstance(errors, list) else [errors]
    said = []
    for e in items[:5]:
        if isinstance(e, dict):
            line, message = e.get("line"), e.get("message")
            said.append(f"line {line}: {message}" if line is not None else str(message))
        else:
            said.append(shown(e, 120))
    return "; ".join(said) or None
