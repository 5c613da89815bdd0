"""OpenAI's Batch API for the openai backend: a JSONL file of chat completion requests.

Through the member's SDK client: upload the file (`files.create`, purpose `batch`), create the
batch on it (`batches.create`, 24-hour window, our batch key and run id in `metadata`), poll
`batches.retrieve`, page through `batches.list` to find a batch again, read the output and
error files (`files.content`). Every reply is taken raw and read by the lenient models below,
so a hostile batch object costs its batch a reason, never our bug. Each line carries the same
body the live route sends, and each answer is read by the same code as a live reply. On Azure
the lines and the batch name the endpoint `/chat/completions`, as Azure's Batch API asks.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from ..errors import BackendError, FatalError, TransientError, shown
from .batch import (
    BatchAPI,
    BatchEntry,
    BatchOutcome,
    BatchStatus,
    Count,
    Metadata,
    ResultLine,
    Time,
    batch_state,
    error_text,
    read_line,
    result_error,
)
from .envelope import Envelope, Lenient, Text
from .structured import Form

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from .openai import OpenAIBackend

__all__ = ["OpenAIBatchAPI"]

#: how many pages of the batch list `find` reads, newest first
_PAGES = 20


class OpenAIBatchAPI(BatchAPI):
    max_requests = 50_000
    max_bytes = 200 * 1024 * 1024

    def __init__(self, backend: OpenAIBackend, client: AsyncOpenAI) -> None:
        self.backend = backend
        self.client = client
        # Azure names the endpoint without the version prefix.
        self.endpoint = "/chat/completions" if backend.azure else "/v1/chat/completions"
        self.where = f"{backend.where} batch"

    @property
    def form(self) -> Form:
        # A batch cannot probe: it uses the form the member settled on, else its first.
        return self.backend.negotiator.current

    def line(self, entry: BatchEntry) -> bytes:
        body = self.backend.body(entry.request, self.form)
        item = {"custom_id": entry.custom_id, "method": "POST", "url": self.endpoint, "body": body}
        return json.dumps(item, ensure_ascii=False).encode() + b"\n"

    def size(self, entry: BatchEntry) -> int:
        return len(self.line(entry))

    async def _object(self, call: Any) -> dict[str, Any]:
        """One SDK call's reply as the JSON object it came as (read leniently, not typed)."""
        return self.backend.read_json(await self.backend.send(call), self.where)

    async def submit(self, entries: list[BatchEntry], metadata: dict[str, str]) -> BatchStatus:
        jsonl = b"".join(self.line(e) for e in entries)
        name = f"{metadata.get('panel_batch', 'panel')}.jsonl"
        files = self.client.files.with_raw_response
        uploaded = await self._object(files.create(file=(name, jsonl, "application/jsonl"), purpose="batch"))
        file_id = uploaded.get("id")
        if not isinstance(file_id, str):
            # Nothing was created on it: a resume submits the batch again.
            raise TransientError(f"{self.where}: the file upload's reply names no file: {shown(uploaded)}")
        batches = self.client.batches.with_raw_response
        endpoint: Any = self.endpoint
        created = await self._object(
            batches.create(
                input_file_id=file_id, endpoint=endpoint, completion_window="24h", metadata=metadata
            )
        )
        return _status(created)

    async def status(self, provider_batch_id: str) -> BatchStatus:
        return _status(await self._object(self.client.batches.with_raw_response.retrieve(provider_batch_id)))

    async def find(
        self, metadata: dict[str, str], custom_ids: list[str], since: float | None = None
    ) -> BatchStatus | None:
        from openai import omit

        after: Any = omit  # the first page: no cursor
        for _ in range(_PAGES):
            data = await self._object(self.client.batches.with_raw_response.list(limit=100, after=after))
            page = _Page.model_validate(data)
            items = [b for b in page.data or [] if b is not None and b.id]
            for item in items:
                if all(item.metadata.get(k) == v for k, v in metadata.items()):
                    return _status(item)
            if not page.has_more or not items:
                return None
            after = items[-1].id
        return None

    async def results(self, status: BatchStatus) -> AsyncIterator[BatchOutcome]:
        retrieved = self.client.batches.with_raw_response.retrieve(status.provider_batch_id)
        batch = _Batch.model_validate(await self._object(retrieved))
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = await self.backend.send(self.client.files.with_raw_response.content(file_id))
            for line in content.content.splitlines():
                outcome = self._outcome(line)
                if outcome is not None:
                    yield outcome

    def _outcome(self, line: bytes) -> BatchOutcome | None:
        item = read_line(line, ResultLine, "openai batch")
        if not isinstance(item, ResultLine):
            return item
        return item.outcome(
            lambda body, request_id: self.backend.reply(body, self.form, request_id), _line_error
        )

    async def cancel(self, provider_batch_id: str) -> BatchStatus:
        return _status(await self._object(self.client.batches.with_raw_response.cancel(provider_batch_id)))


def _line_error(status: int | None, body: Any, error: Any, request_id: str | None) -> BackendError:
    if isinstance(error, dict):
        code, message = error.get("code"), error.get("message") or "no message"
        if code == "batch_expired":
            return TransientError(f"openai batch: the request expired: {message}", request_id=request_id)
        return FatalError(f"openai batch: {code}: {message}", request_id=request_id)
    return result_error("openai batch", status, body, error, request_id)


class _Counts(Envelope):
    total: Count = None
    completed: Count = None
    failed: Count = None


class _Batch(Envelope):
    """A batch object as the API returns it, read leniently."""

    id: Text = None
    status: Text = None
    request_counts: Annotated[_Counts | None, Lenient] = None
    #: `{"object": "list", "data": [{"code", "message", "line"}]}`; anything else is shown as it is
    errors: Any = None
    metadata: Metadata = Field(default_factory=dict)
    created_at: Time = None
    output_file_id: Text = None
    error_file_id: Text = None


class _Page(Envelope):
    data: Annotated[list[Annotated[_Batch | None, Lenient]] | None, Lenient] = None
    has_more: Annotated[bool | None, Lenient] = None


def _status(data: Any) -> BatchStatus:
    batch = (
        data if isinstance(data, _Batch) else _Batch.model_validate(data if isinstance(data, dict) else {})
    )
    if not batch.id:
        raise FatalError(f"openai batch: the batch object has no id: {shown(data)}")
    counts = batch.request_counts or _Counts()
    completed, failed = counts.completed or 0, counts.failed or 0
    return BatchStatus(
        provider_batch_id=batch.id,
        state=batch_state("openai batch", batch.status),
        counts={"total": counts.total or 0, "done": completed + failed, "errored": failed},
        error=error_text(batch.errors),
        metadata=batch.metadata,
        created_at=batch.created_at,
    )
