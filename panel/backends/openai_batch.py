"""OpenAI's Batch API for the openai backend: a JSONL file of chat completion requests.

Upload the file (`POST /files`, purpose `batch`), create the batch on it (`POST /batches`,
24-hour window, our batch key and run id in `metadata`), poll `GET /batches/{id}`, read the
output and error files (`GET /files/{id}/content`). Each line carries the same body the live
route sends, and each answer is read by the same code as a live reply.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ..errors import BackendError, FatalError, TransientError
from ._http import JSONClient, error_detail
from ._provider import error_for_status
from .batch import BatchAPI, BatchEntry, BatchOutcome, BatchStatus
from .structured import Form

if TYPE_CHECKING:
    from .openai import OpenAIBackend

__all__ = ["OpenAIBatchAPI"]

#: how many pages of the batch list `find` reads, newest first
_PAGES = 20


class OpenAIBatchAPI(BatchAPI):
    max_requests = 50_000
    max_bytes = 200 * 1024 * 1024

    def __init__(self, backend: OpenAIBackend, client: JSONClient) -> None:
        self.backend = backend
        self.client = client

    @property
    def form(self) -> Form:
        # A batch cannot probe: it uses the form the member settled on, else its first.
        negotiator = self.backend.negotiator
        return negotiator.form or negotiator.order[0]

    def line(self, entry: BatchEntry) -> bytes:
        body = self.backend.body(entry.request, self.form)
        item = {"custom_id": entry.custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}
        return json.dumps(item, ensure_ascii=False).encode() + b"\n"

    def size(self, entry: BatchEntry) -> int:
        return len(self.line(entry))

    async def submit(self, entries: list[BatchEntry], metadata: dict[str, str]) -> BatchStatus:
        import aiohttp

        upload = aiohttp.FormData()
        upload.add_field("purpose", "batch")
        jsonl = b"".join(self.line(e) for e in entries)
        name = f"{metadata.get('panel_batch', 'panel')}.jsonl"
        upload.add_field("file", jsonl, filename=name, content_type="application/jsonl")
        _, _, raw = await self.client.send("POST", "/files", upload)
        file_id = json.loads(raw)["id"]
        created = await self.client.post(
            "/batches",
            {
                "input_file_id": file_id,
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
                "metadata": metadata,
            },
        )
        return _status(created.data)

    async def status(self, provider_batch_id: str) -> BatchStatus:
        return _status((await self.client.get(f"/batches/{provider_batch_id}")).data)

    async def find(
        self, metadata: dict[str, str], custom_ids: list[str], since: float | None = None
    ) -> BatchStatus | None:
        after = ""
        for _ in range(_PAGES):
            page = (await self.client.get(f"/batches?limit=100{after}")).data
            for item in page.get("data") or []:
                if all((item.get("metadata") or {}).get(k) == v for k, v in metadata.items()):
                    return _status(item)
            if not page.get("has_more") or not page.get("data"):
                return None
            after = f"&after={page['data'][-1]['id']}"
        return None

    async def results(self, status: BatchStatus) -> AsyncIterator[BatchOutcome]:
        batch = (await self.client.get(f"/batches/{status.provider_batch_id}")).data
        for key in ("output_file_id", "error_file_id"):
            file_id = batch.get(key)
            if not file_id:
                continue
            _, _, raw = await self.client.send("GET", f"/files/{file_id}/content")
            for line in raw.splitlines():
                outcome = self._outcome(line)
                if outcome is not None:
                    yield outcome

    def _outcome(self, line: bytes) -> BatchOutcome | None:
        try:
            item = json.loads(line)
        except ValueError:
            return None  # a cut line: its request counts as unanswered
        if not isinstance(item, dict) or not isinstance(item.get("custom_id"), str):
            return None
        custom_id = item["custom_id"]
        response = item.get("response") or {}
        error = item.get("error")
        status = response.get("status_code")
        body = response.get("body")
        request_id = response.get("request_id")
        if status == 200 and isinstance(body, dict) and not error:
            try:
                return BatchOutcome(custom_id, reply=self.backend.reply(body, self.form, request_id))
            except BackendError as exc:
                return BatchOutcome(custom_id, error=exc)
        return BatchOutcome(custom_id, error=_line_error(status, body, error, request_id))

    async def cancel(self, provider_batch_id: str) -> BatchStatus:
        return _status((await self.client.post(f"/batches/{provider_batch_id}/cancel", {})).data)


def _line_error(status: Any, body: Any, error: Any, request_id: str | None) -> BackendError:
    if isinstance(error, dict):
        code, message = error.get("code"), error.get("message") or "no message"
        if code == "batch_expired":
            return TransientError(f"openai batch: the request expired: {message}", request_id=request_id)
        return FatalError(f"openai batch: {code}: {message}", request_id=request_id)
    detail = error_detail(json.dumps(body).encode()) if body is not None else "no body"
    code = status if isinstance(status, int) else None
    return error_for_status("openai batch", code, detail, request_id=request_id)


def _status(batch: dict[str, Any]) -> BatchStatus:
    from ..store import normal_state

    counts = batch.get("request_counts") or {}
    errors = (batch.get("errors") or {}).get("data") or []
    error = "; ".join(
        f"line {e.get('line')}: {e.get('message')}" if e.get("line") is not None else str(e.get("message"))
        for e in errors[:5]
    )
    return BatchStatus(
        provider_batch_id=batch["id"],
        state=normal_state(str(batch.get("status", ""))),
        counts={
            "total": int(counts.get("total") or 0),
            "done": int(counts.get("completed") or 0) + int(counts.get("failed") or 0),
            "errored": int(counts.get("failed") or 0),
        },
        error=error or None,
        metadata=dict(batch.get("metadata") or {}),
        created_at=batch.get("created_at"),
    )
