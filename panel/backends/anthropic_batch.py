"""Anthropic's Message Batches for the anthropic backend, through the SDK.

`messages.batches.create(requests=[{custom_id, params}])` with each request's `params` built
by the live route's own builder (`AnthropicBackend.body`, in the form the member settled on:
native structured output unless it is set to, or has switched to, the tool), polled with
`retrieve`, read with `results` (the SDK fetches the batch's `results_url`), each succeeded
message read by the live route's `AnthropicBackend.reply`.

Anthropic keeps no metadata on a batch, so `find` cannot ask for our batch key. It reads the
recent batches (newest first, at most `_SCAN`) and keeps those with as many requests as ours:
- an ended one is ours when its results carry only our custom_ids (`req-<request id>`, unique
  in our store; another store on the same account that made the very same batch would match
  too, which is why the request count and, when known, the time must agree as well);
- one not yet ended cannot show its custom_ids, so it is taken for ours only when the ledger
  says when our batch was recorded (`since`): the earliest batch of our size created after
  that moment (less `_SKEW` for clock drift), none created before it. Another client of the
  same account submitting a batch of the same size in that window could be taken for ours;
  its results then match none of our custom_ids and the runner sends ours again in a
  follow-up batch: a wasted wait, never a cell stored twice.
Without `since`, a batch not yet ended is never matched: the runner submits again.

Result lines: `succeeded` is the reply; `errored` the API's error by its type (`api_error`,
`overloaded_error` are transient, `invalid_request_error` fatal, as live); `expired` and
`canceled` transient, so the runner sends them again within the retry policy. A results stream
cut mid-line ends the reading there: the requests it did not reach count as unanswered.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel

from ..errors import BackendError, FatalError, TransientError, shown
from . import _provider as p
from .batch import LATEST, BatchAPI, BatchEntry, BatchOutcome, BatchStatus, Count, batch_state, read_line
from .envelope import Envelope, Lenient, Text

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic

    from .anthropic import AnthropicBackend

__all__ = ["AnthropicBatchAPI"]

#: how many of the newest batches `find` looks through
_SCAN = 2000
#: how far before the ledger's record of a batch the provider's clock may date it
_SKEW = 5.0
#: the HTTP status each error type of the API comes with, to read it as a live error
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
_NAME = "anthropic batch"
#: the results that carry no answer, sent again within the retry policy
_GONE = {
    "expired": "the request expired before it was processed",
    "canceled": "the request was canceled with its batch",
}
_COUNTS = ("processing", "succeeded", "errored", "canceled", "expired")


class AnthropicBatchAPI(BatchAPI):
    max_requests = 100_000
    max_bytes = 256 * 1024 * 1024
    keeps_metadata = False

    def __init__(self, backend: AnthropicBackend, client: AsyncAnthropic) -> None:
        self.backend = backend
        self.client = client

    def _request(self, entry: BatchEntry) -> dict[str, Any]:
        params = self.backend.body(entry.request, self.backend.negotiator.current)
        return {"custom_id": entry.custom_id, "params": params}

    def size(self, entry: BatchEntry) -> int:
        # one element of the `requests` array, and its comma
        return len(json.dumps(self._request(entry), ensure_ascii=False).encode()) + 1

    async def _call(self, send: Any) -> Any:
        import anthropic

        return await p.call(_NAME, self.backend._secrets, send, p.stainless(anthropic))

    async def submit(self, entries: list[BatchEntry], metadata: dict[str, str]) -> BatchStatus:
        requests = [self._request(e) for e in entries]
        return _status(await self._call(self.client.messages.batches.create(requests=requests)))  # type: ignore[arg-type]

    async def status(self, provider_batch_id: str) -> BatchStatus:
        return _status(await self._call(self.client.messages.batches.retrieve(provider_batch_id)))

    async def find(
        self, metadata: dict[str, str], custom_ids: list[str], since: float | None = None
    ) -> BatchStatus | None:
        wanted = set(custom_ids)
        waiting: list[BatchStatus] = []
        async for batch in self._recent():
            try:
                status = _status(batch)
            except FatalError:
                continue  # a listed batch with no id is none we could collect
            if since is not None and (status.created_at or 0.0) < since - _SKEW:
                break  # newest first: the rest are older still
            if status.counts["total"] != len(wanted):
                continue
            if status.finished:
                if await self._carries(status.provider_batch_id, wanted):
                    return status
            elif since is not None:
                waiting.append(status)
        if since is None or not waiting:
            return None
        # Only one made after the ledger recorded ours (allowing for clock skew) can be ours.
        after = [s for s in waiting if (s.created_at or 0.0) >= since - _SKEW]
        return min(after, key=lambda s: s.created_at or 0.0) if after else None

    async def _recent(self) -> AsyncIterator[Any]:
        """The account's batches, newest first, at most `_SCAN` of them."""
        after: dict[str, str] = {}
        scanned = 0
        while scanned < _SCAN:
            page = await self._call(self.client.messages.batches.list(limit=100, **after))  # type: ignore[arg-type]
            for batch in page.data:
                scanned += 1
                yield batch
            if not page.has_more or not page.data:
                return
            after = {"after_id": page.last_id}

    async def _carries(self, batch_id: str, wanted: set[str]) -> bool:
        """Whether an ended batch's results carry our custom_ids and no other."""
        seen = False
        async for line in self._lines(batch_id):
            if line.custom_id not in wanted:
                return False
            seen = True
        return seen

    async def _lines(self, batch_id: str) -> AsyncIterator[_Line | BatchOutcome]:
        """The results file's lines, each read on its own from the bytes as they came (the
        SDK's decoder would stop at the first line it cannot parse)."""
        stream = await self._call(self.client.messages.batches.results(batch_id))
        pending = b""
        try:
            async for chunk in stream.http_response.aiter_bytes():
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    read = read_line(line, _Line, _NAME)
                    if read is not None:
                        yield read
        except Exception as exc:
            if not p.is_transport_error(exc):
                raise
            return  # the stream broke off: the requests it did not reach count as unanswered
        finally:
            await stream.close()
        # A last line without its line break was cut short, unless it reads whole.
        read = read_line(pending, _Line, _NAME) if pending.strip() else None
        if isinstance(read, _Line):
            yield read

    async def results(self, status: BatchStatus) -> AsyncIterator[BatchOutcome]:
        async for line in self._lines(status.provider_batch_id):
            yield self._outcome(line) if isinstance(line, _Line) else line

    def _outcome(self, line: _Line) -> BatchOutcome:
        assert line.custom_id is not None
        custom_id, result = line.custom_id, line.result
        kind = result.type if result else None
        if result is not None and kind == "succeeded":
            try:
                reply = self.backend.reply(result.message, self.backend.negotiator.current, None)
            except BackendError as exc:
                return BatchOutcome(custom_id, error=exc)
            return BatchOutcome(custom_id, reply=reply)
        if result is not None and kind == "errored":
            return BatchOutcome(custom_id, error=_error(result.error))
        if kind in _GONE:
            return BatchOutcome(custom_id, error=TransientError(f"{_NAME}: {_GONE[kind]}"))
        said = f"unknown result type {kind!r}" if kind else "the result line carries no result"
        return BatchOutcome(custom_id, error=FatalError(f"{_NAME}: {said}"))

    async def cancel(self, provider_batch_id: str) -> BatchStatus:
        return _status(await self._call(self.client.messages.batches.cancel(provider_batch_id)))


def _error(response: _ErrorResponse | None) -> BackendError:
    """An `errored` line's error (`{"type": "error", "error": {"type", "message"}}`) as live."""
    inner = response.error if response else None
    kind = (inner.type if inner else None) or "api_error"
    message = (inner.message if inner else None) or "no message"
    request_id = response.request_id if response else None
    return p.error_for_status(_NAME, _ERROR_STATUS.get(kind), f"{kind}: {message}", request_id=request_id)


class _ErrorBody(Envelope):
    type: Text = None
    message: Text = None


class _ErrorResponse(Envelope):
    error: Annotated[_ErrorBody | None, Lenient] = None
    request_id: Text = None


class _Result(Envelope):
    type: Text = None
    message: Any = None
    error: Annotated[_ErrorResponse | None, Lenient] = None


class _Line(Envelope):
    """A line of a batch's results: `{"custom_id", "result": {"type", "message" | "error"}}`."""

    custom_id: Text = None
    result: Annotated[_Result | None, Lenient] = None


class _Counts(Envelope):
    processing: Count = None
    succeeded: Count = None
    errored: Count = None
    canceled: Count = None
    expired: Count = None


class _Batch(Envelope):
    """A message batch as the API returns it, read leniently."""

    id: Text = None
    processing_status: Text = None
    request_counts: Annotated[_Counts | None, Lenient] = None
    cancel_initiated_at: Any = None
    created_at: Annotated[datetime | None, Lenient] = None


def _status(data: Any) -> BatchStatus:
    if isinstance(data, BaseModel):  # the SDK's object, built without checks: read its fields
        data = data.model_dump(mode="json", warnings=False)
    batch = _Batch.model_validate(data if isinstance(data, dict) else {})
    if not batch.id:
        raise FatalError(f"{_NAME}: the batch object has no id: {shown(data)}")
    c = batch.request_counts or _Counts()
    counts = {k: getattr(c, k) or 0 for k in _COUNTS}
    total = sum(counts.values())
    state = batch_state(_NAME, batch.processing_status)
    if state == "ended" and batch.cancel_initiated_at is not None:
        state = "cancelled"
    elif state == "ended" and counts["expired"]:
        state = "expired"
    return BatchStatus(
        provider_batch_id=batch.id,
        state=state,
        counts={
            "total": total,
            "done": total - counts["processing"],
            "errored": counts["errored"],
            "expired": counts["expired"],
        },
        created_at=_time(batch.created_at),
    )


def _time(when: datetime | None) -> float | None:
    """A creation time as seconds since the epoch, within the bounds of `batch.Time`."""
    seconds = when.timestamp() if when is not None else None
    return seconds if seconds is not None and 0 <= seconds <= LATEST else None
