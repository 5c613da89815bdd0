"""Mistral batch jobs for the mistral backend, through the SDK.

Each line is `{custom_id, body}` with the body the live route builds (`MistralBackend.body`;
live, the SDK adds `stream: false`, which a batch does not take). A batch of at most
`INLINE_REQUESTS` requests and `INLINE_BYTES` goes inline in `batch.jobs.create(requests=...)`;
a larger one is uploaded first (`files.upload`, purpose `batch`) and named in `input_files`.
The job carries our batch key and run id in `metadata`, by which `find` lists it again
(`batch.jobs.list(metadata=...)`, checked again on our side). Results are read from the job's
`output_file` and `error_file` (`files.download`), or, for a job that has neither, from its
inline `outputs`; each answer goes through the live route's `MistralBackend.reply`.

Requests that expired (`TIMEOUT_EXCEEDED`) are in neither file: the runner notices the
custom_ids that never came back. A line cut short (a truncated file) is skipped the same way.

Limits: Mistral's notes we have (`PROVIDERS.md`) state none, so a batch holds at most 100,000
requests and 200 MB, as OpenAI's nearly does. The SDK states no limit for inline requests
either; 10,000 requests and 10 MB inline is our own cautious choice, not Mistral's.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Final

from pydantic import Field

from ..errors import FatalError, shown
from . import _provider as p
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
from .mistral_calls import as_data, describe

if TYPE_CHECKING:
    from mistralai.client import Mistral

    from .mistral import MistralBackend

__all__ = ["INLINE_BYTES", "INLINE_REQUESTS", "MistralBatchAPI"]

INLINE_REQUESTS = 10_000
INLINE_BYTES = 10 * 1024 * 1024
ENDPOINT: Final = "/v1/chat/completions"
#: how many pages of 100 jobs `find` reads, newest first
_PAGES = 20
_NAME = "mistral batch"


class MistralBatchAPI(BatchAPI):
    max_requests = 100_000
    max_bytes = 200 * 1024 * 1024

    def __init__(self, backend: MistralBackend, client: Mistral) -> None:
        self.backend = backend
        self.client = client

    def _line(self, entry: BatchEntry) -> dict[str, Any]:
        return {"custom_id": entry.custom_id, "body": self.backend.body(entry.request)}

    def size(self, entry: BatchEntry) -> int:
        return len(json.dumps(self._line(entry), ensure_ascii=False).encode()) + 1

    async def _call(self, send: Any) -> Any:
        return await p.call(_NAME, [self.backend._secret], send, describe)

    async def _read(self, send: Any) -> Any:
        """What a jobs call answered, as data (read leniently by `_Job`)."""
        return await self._call(as_data(send, _NAME, [self.backend._secret]))

    async def submit(self, entries: list[BatchEntry], metadata: dict[str, str]) -> BatchStatus:
        lines = [self._line(e) for e in entries]
        jsonl = b"".join(json.dumps(x, ensure_ascii=False).encode() + b"\n" for x in lines)
        source: dict[str, Any]
        if len(lines) <= INLINE_REQUESTS and len(jsonl) <= INLINE_BYTES:
            source = {"requests": lines}
        else:
            name = f"{metadata.get('panel_batch', 'panel')}.jsonl"
            upload = await self._call(
                self.client.files.upload_async(file={"file_name": name, "content": jsonl}, purpose="batch")
            )
            source = {"input_files": [upload.id]}
        job = await self._read(
            self.client.batch.jobs.create_async(
                endpoint=ENDPOINT, model=self.backend.model, metadata=metadata, timeout_hours=24, **source
            )
        )
        return _status(job)

    async def status(self, provider_batch_id: str) -> BatchStatus:
        return _status(await self._read(self.client.batch.jobs.get_async(job_id=provider_batch_id)))

    async def find(
        self, metadata: dict[str, str], custom_ids: list[str], since: float | None = None
    ) -> BatchStatus | None:
        for page in range(_PAGES):
            listed = _Page.model_validate(
                await self._read(
                    self.client.batch.jobs.list_async(metadata=metadata, page=page, page_size=100)
                )
            )
            jobs = [j for j in listed.data or [] if j is not None and j.id]
            for job in jobs:
                if all(job.metadata.get(k) == v for k, v in metadata.items()):
                    return _status(job)
            if not jobs or (page + 1) * 100 >= (listed.total or 0):
                return None
        return None

    async def results(self, status: BatchStatus) -> AsyncIterator[BatchOutcome]:
        job = _Job.model_validate(
            await self._read(self.client.batch.jobs.get_async(job_id=status.provider_batch_id))
        )
        files = [f for f in (job.output_file, job.error_file) if f]
        if not files:
            inline = _Job.model_validate(
                await self._read(
                    self.client.batch.jobs.get_async(job_id=status.provider_batch_id, inline=True)
                )
            )
            for item in inline.outputs or []:
                line = ResultLine.model_validate(item) if isinstance(item, dict) else None
                if line is not None and line.custom_id:
                    yield self._outcome(line)
            return
        for file_id in files:
            response = await self._call(self.client.files.download_async(file_id=file_id))
            try:
                raw = await response.aread()
            finally:
                await response.aclose()
            for text in raw.splitlines():
                read = read_line(text, ResultLine, _NAME)
                if read is not None:
                    yield self._outcome(read) if isinstance(read, ResultLine) else read

    def _outcome(self, item: ResultLine) -> BatchOutcome:
        return item.outcome(self.backend.reply, partial(result_error, _NAME))

    async def cancel(self, provider_batch_id: str) -> BatchStatus:
        return _status(await self._read(self.client.batch.jobs.cancel_async(job_id=provider_batch_id)))


class _Job(Envelope):
    """A batch job as the API returns it, read leniently."""

    id: Text = None
    status: Text = None
    total_requests: Count = None
    completed_requests: Count = None
    failed_requests: Count = None
    errors: Any = None
    metadata: Metadata = Field(default_factory=dict)
    created_at: Time = None
    output_file: Text = None
    error_file: Text = None
    outputs: Annotated[list[Any] | None, Lenient] = None


class _Page(Envelope):
    data: Annotated[list[Annotated[_Job | None, Lenient]] | None, Lenient] = None
    total: Count = None


def _status(data: Any) -> BatchStatus:
    job = data if isinstance(data, _Job) else _Job.model_validate(data if isinstance(data, dict) else {})
    if not job.id:
        raise FatalError(f"{_NAME}: the job object has no id: {shown(data)}")
    return BatchStatus(
        provider_batch_id=job.id,
        state=batch_state(_NAME, job.status),
        counts={
            "total": job.total_requests or 0,
            "done": job.completed_requests or 0,
            "errored": job.failed_requests or 0,
        },
        error=error_text(job.errors),
        metadata=job.metadata,
        created_at=job.created_at,
    )
