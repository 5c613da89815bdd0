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
from typing import TYPE_CHECKING, Any, Final

from ..errors import BackendError, FatalError
from . import _provider as p
from ._http import error_detail
from .batch import BatchAPI, BatchEntry, BatchOutcome, BatchStatus

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
        from .mistral import _describe

        return await p.call(_NAME, [self.backend._secret], send, _describe)

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
        job = await self._call(
            self.client.batch.jobs.create_async(
                endpoint=ENDPOINT, model=self.backend.model, metadata=metadata, timeout_hours=24, **source
            )
        )
        return _status(job)

    async def status(self, provider_batch_id: str) -> BatchStatus:
        return _status(await self._call(self.client.batch.jobs.get_async(job_id=provider_batch_id)))

    async def find(
        self, metadata: dict[str, str], custom_ids: list[str], since: float | None = None
    ) -> BatchStatus | None:
        for page in range(_PAGES):
            listed = await self._call(
                self.client.batch.jobs.list_async(metadata=metadata, page=page, page_size=100)
            )
            jobs = list(listed.data or [])
            for job in jobs:
                if all((job.metadata or {}).get(k) == v for k, v in metadata.items()):
                    return _status(job)
            if not jobs or (page + 1) * 100 >= (listed.total or 0):
                return None
        return None

    async def results(self, status: BatchStatus) -> AsyncIterator[BatchOutcome]:
        job = await self._call(self.client.batch.jobs.get_async(job_id=status.provider_batch_id))
        files = [f for f in (job.output_file, job.error_file) if f]
        if not files:
            inline = await self._call(
                self.client.batch.jobs.get_async(job_id=status.provider_batch_id, inline=True)
            )
            for item in getattr(inline, "outputs", None) or []:
                outcome = self._outcome(item)
                if outcome is not None:
                    yield outcome
            return
        for file_id in files:
            response = await self._call(self.client.files.download_async(file_id=file_id))
            try:
                raw = await response.aread()
            finally:
                await response.aclose()
            for line in raw.splitlines():
                try:
                    item = json.loads(line)
                except ValueError:
                    continue  # a cut line: its request counts as unanswered
                outcome = self._outcome(item)
                if outcome is not None:
                    yield outcome

    def _outcome(self, item: Any) -> BatchOutcome | None:
        if not isinstance(item, dict) or not isinstance(item.get("custom_id"), str):
            return None
        custom_id = item["custom_id"]
        response = item.get("response") or {}
        status = response.get("status_code")
        body = response.get("body")
        error = item.get("error")
        if status == 200 and isinstance(body, dict) and not error:
            from mistralai.client.models import ChatCompletionResponse
            from pydantic import ValidationError

            try:
                completion = ChatCompletionResponse.model_validate(body)
                return BatchOutcome(custom_id, reply=self.backend.reply(completion, None))
            except ValidationError as exc:
                detail = f"{_NAME}: the answer is not a chat completion: {exc.errors()[0]['msg']}"
                return BatchOutcome(custom_id, error=FatalError(detail))
            except BackendError as exc:
                return BatchOutcome(custom_id, error=exc)
        return BatchOutcome(custom_id, error=_line_error(status, body, error))

    async def cancel(self, provider_batch_id: str) -> BatchStatus:
        return _status(await self._call(self.client.batch.jobs.cancel_async(job_id=provider_batch_id)))


def _line_error(status: Any, body: Any, error: Any) -> BackendError:
    if body is not None:
        detail = error_detail(json.dumps(body).encode())
    else:
        detail = str(error.get("message") if isinstance(error, dict) else error or "no answer")
    return p.error_for_status(_NAME, status if isinstance(status, int) else None, detail)


def _status(job: Any) -> BatchStatus:
    from ..store import normal_state

    errors = [str(getattr(e, "message", e)) for e in (job.errors or [])[:5]]
    return BatchStatus(
        provider_batch_id=job.id,
        state=normal_state(str(job.status)),
        counts={
            "total": int(job.total_requests or 0),
            "done": int(job.completed_requests or 0),
            "errored": int(job.failed_requests or 0),
        },
        error="; ".join(errors) or None,
        metadata={str(k): str(v) for k, v in (job.metadata or {}).items()},
        created_at=float(job.created_at) if job.created_at is not None else None,
    )
