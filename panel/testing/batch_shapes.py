"""How each provider spells a batch, a file and a result line; pure functions over `batch_book`.

See `batches` for the behaviour these shapes carry.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from panel.testing import hostile, wire
from panel.testing.batch_book import TERMINAL, Batch, Book, FileRec, Item

__all__ = [
    "MISTRAL_STATUS",
    "anthropic_batch",
    "file_object",
    "mistral_job",
    "new_file_id",
    "openai_batch",
    "write_results",
]

_DAY = 24 * 3600
_EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."
_ANTHROPIC_PHASE = {"cancelling": "canceling", **{p: "ended" for p in TERMINAL}}
MISTRAL_STATUS = {
    "validating": "QUEUED",
    "in_progress": "RUNNING",
    "finalizing": "RUNNING",
    "completed": "SUCCESS",
    "failed": "FAILED",
    "expired": "TIMEOUT_EXCEEDED",
    "cancelling": "CANCELLATION_REQUESTED",
    "cancelled": "CANCELLED",
}


def new_file_id(provider: str) -> str:
    return str(uuid.uuid4()) if provider == "mistral" else wire.new_id("file-")


def _cut(data: bytes) -> bytes:
    """Cut `data` mid-line near its middle: the lines before stay whole, one is left broken."""
    if not data:
        return data
    at = max(1, len(data) // 2)
    if data[at - 1 : at] == b"\n":
        at += 1  # a cut on a line boundary would leave only whole lines
    return data[: min(at, len(data) - 1)]


def _whole_ids(data: bytes) -> set[str]:
    ids: set[str] = set()
    for raw in data.split(b"\n"):
        try:
            ids.add(str(json.loads(raw)["custom_id"]))
        except (ValueError, KeyError, TypeError, RecursionError):
            continue  # a line poisoned or cut: its answer did not arrive whole
    return ids


def _answer_line(b: Batch, it: Item) -> dict[str, Any]:
    if b.provider == "anthropic":
        if it.status == 200:
            return {"custom_id": it.custom_id, "result": {"type": "succeeded", "message": it.body}}
        return {"custom_id": it.custom_id, "result": {"type": "errored", "error": it.body}}
    response: dict[str, Any] = {"status_code": it.status, "body": it.body}
    if b.provider == "openai":
        response["request_id"] = wire.new_id("req_")
        line_id = wire.new_id("batch_req_")
    else:
        line_id = "batch-" + str(uuid.uuid4())
    return {"id": line_id, "custom_id": it.custom_id, "response": response, "error": None}


def write_results(book: Book, b: Batch) -> None:
    """Write the files of a batch that has just ended (see `batches` for what goes where)."""
    if b.phase == "failed":
        return
    processed = {id(it) for it in b.processable[: b.done]}
    # (a good answer?, line, the item it answers, if any), in output order
    lines: list[tuple[bool, dict[str, Any], Item | None]] = []
    for it in (b.items[i] for i in b.order):
        if id(it) in processed:
            lines.append((it.status == 200, _answer_line(b, it), it))
        elif b.provider == "anthropic" and b.phase in ("expired", "cancelled"):
            kind = "expired" if b.phase == "expired" and it.outcome == "expired" else "canceled"
            lines.append((False, {"custom_id": it.custom_id, "result": {"type": kind}}, None))
        elif b.provider == "openai" and b.phase == "expired" and it.outcome == "expired":
            error = {"code": "batch_expired", "message": _EXPIRED_MESSAGE}
            line_id = wire.new_id("batch_req_")
            line = {"id": line_id, "custom_id": it.custom_id, "response": None, "error": error}
            lines.append((False, line, None))
    if b.rotate:
        _rotate(lines)
    clean = {it.custom_id for it in b.processable[: b.done] if it.status == 200 and not it.faulted}
    if b.provider == "mistral":
        b.outputs = [_inline(b, line, it) for _, line, it in lines]
    if b.provider == "anthropic":
        # One results file: succeeded, errored, expired and canceled lines mixed.
        results = _encode(b, lines)
        b.results = _cut(results) if b.partial else results
        b.delivered = _whole_ids(b.results) & clean
        return
    output = _encode(b, [x for x in lines if x[0]])
    if b.partial:
        output = _cut(output)
    b.delivered = _whole_ids(output) & clean
    now = int(book.wall())
    errors = _encode(b, [x for x in lines if not x[0]])
    for data, purpose in ((output, "batch_output"), (errors, "batch_error")):
        if data:
            name = f"{b.id}_{purpose}.jsonl"
            rec = book.add_file(FileRec(new_file_id(b.provider), b.provider, purpose, name, data, now))
            if purpose == "batch_output":
                b.output_file_id = rec.id
            else:
                b.error_file_id = rec.id


def _rotate(lines: list[tuple[bool, dict[str, Any], Item | None]]) -> None:
    """Give each answer line the custom_id of the next one (the last takes the first's)."""
    answered = [line for _, line, it in lines if it is not None]
    ids = [line["custom_id"] for line in answered]
    for line, custom_id in zip(answered, ids[1:] + ids[:1], strict=True):
        line["custom_id"] = custom_id


def _encode(b: Batch, lines: Iterable[tuple[bool, dict[str, Any], Item | None]]) -> bytes:
    """The lines as JSONL, each answer to a poisoned request poisoned (`hostile`)."""
    out = []
    for _, line, it in lines:
        poisoned = b.poison and it is not None and it.poisoned
        data = hostile.poison_line(b.poison, b.provider, line) if poisoned else None
        out.append((data if data is not None else json.dumps(line, ensure_ascii=False).encode()) + b"\n")
    return b"".join(out)


def _inline(b: Batch, line: dict[str, Any], it: Item | None) -> Any:
    """A Mistral inline output: the line, poisoned where the poison is still JSON."""
    if not (b.poison and it is not None and it.poisoned):
        return line
    try:
        return json.loads(hostile.poison_line(b.poison, b.provider, line))
    except (ValueError, RecursionError):
        return line


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def openai_batch(b: Batch) -> dict[str, Any]:
    c = b.counts()
    st = b.stamps
    failed = c["errored"] + c["expired"]
    return {
        "id": b.id,
        "object": "batch",
        "endpoint": b.endpoint,
        "model": b.model,
        "errors": {"object": "list", "data": b.errors} if b.errors and b.phase == "failed" else None,
        "input_file_id": b.input_file_ids[0] if b.input_file_ids else "",
        "completion_window": "24h",
        "status": b.phase,
        "output_file_id": b.output_file_id,
        "error_file_id": b.error_file_id,
        "created_at": int(b.created_at),
        "in_progress_at": st.get("in_progress"),
        "expires_at": int(b.created_at) + _DAY,
        "finalizing_at": st.get("finalizing"),
        "completed_at": st.get("completed"),
        "failed_at": st.get("failed"),
        "expired_at": st.get("expired"),
        "cancelling_at": st.get("cancelling"),
        "cancelled_at": st.get("cancelled"),
        "request_counts": {"total": c["total"], "completed": c["succeeded"], "failed": failed},
        "metadata": b.metadata,
    }


def anthropic_batch(b: Batch, base_url: str) -> dict[str, Any]:
    c = b.counts()
    ended = b.phase in TERMINAL
    ended_at = b.stamps.get(b.phase) if ended else None
    return {
        "id": b.id,
        "type": "message_batch",
        "processing_status": _ANTHROPIC_PHASE.get(b.phase, "in_progress"),
        "request_counts": {k: c[k] for k in ("processing", "succeeded", "errored", "canceled", "expired")},
        "created_at": _iso(b.created_at),
        "expires_at": _iso(b.created_at + _DAY),
        "ended_at": _iso(ended_at),
        "cancel_initiated_at": _iso(b.stamps.get("cancelling")),
        "archived_at": None,
        "results_url": f"{base_url}/v1/messages/batches/{b.id}/results" if ended else None,
    }


def mistral_job(b: Batch, inline: bool) -> dict[str, Any]:
    c = b.counts()
    job: dict[str, Any] = {
        "id": b.id,
        "object": "batch",
        "input_files": list(b.input_file_ids),
        "metadata": b.metadata,
        "endpoint": b.endpoint,
        "model": b.model,
        "agent_id": None,
        "output_file": b.output_file_id,
        "error_file": b.error_file_id,
        "errors": [{"message": _where(e) + e["message"], "count": 1} for e in b.errors]
        if b.phase == "failed"
        else [],
        "status": MISTRAL_STATUS[b.phase],
        "created_at": int(b.created_at),
        "total_requests": c["total"],
        "completed_requests": c["succeeded"] + c["errored"],
        "succeeded_requests": c["succeeded"],
        "failed_requests": c["errored"],
        "started_at": b.stamps.get("in_progress"),
        "completed_at": b.stamps.get(b.phase) if b.phase in TERMINAL else None,
    }
    if inline and b.outputs is not None:
        job["outputs"] = b.outputs
    return job


def _where(error: dict[str, Any]) -> str:
    return f"line {error['line']}: " if error.get("line") else ""


def file_object(rec: FileRec, asker: str) -> dict[str, Any]:
    lines = rec.data.count(b"\n") + (0 if rec.data.endswith(b"\n") or not rec.data else 1)
    if asker == "mistral":
        kind = {"batch": "batch_request", "batch_output": "batch_result", "batch_error": "batch_error"}
        return {
            "id": rec.id,
            "object": "file",
            "bytes": len(rec.data),
            "created_at": rec.created_at,
            "filename": rec.filename,
            "purpose": "batch",
            "sample_type": kind.get(rec.purpose, "batch_request"),
            "source": "upload" if rec.purpose == "batch" else "mistral",
            "num_lines": lines,
            "mimetype": "application/jsonl",
            "deleted": False,
        }
    return {
        "id": rec.id,
        "object": "file",
        "bytes": len(rec.data),
        "created_at": rec.created_at,
        "filename": rec.filename,
        "purpose": "batch_output" if rec.purpose == "batch_error" else rec.purpose,
        "status": "processed",
        "expires_at": rec.created_at + 30 * _DAY,
        "status_details": None,
    }
