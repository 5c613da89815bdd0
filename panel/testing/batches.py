"""The fake provider's Batch APIs: OpenAI batches + files, Anthropic message batches, Mistral jobs.

Point the SDKs at `FakeProvider.base_url(provider)` as for live calls; every path below also
works without the `/openai`, `/anthropic`, `/mistral` prefix (`/v1/files` then goes to Mistral
when the User-Agent is Mistral's SDK, else to OpenAI); under `/openai` they also work without
`/v1`, as Azure OpenAI's SDK client sends them (`/openai/files?api-version=...`).

OpenAI: `POST /v1/files` (multipart, `purpose=batch`), `GET /v1/files/{id}`, `GET
/v1/files/{id}/content`, `POST /v1/batches` (`endpoint` must be `/v1/chat/completions`, or
Azure's `/chat/completions`; `completion_window` `24h`, `metadata` echoed), `GET
/v1/batches/{id}`, `GET /v1/batches` (newest first, `after` + `limit` (default 20),
`has_more`), `POST /v1/batches/{id}/cancel`.
Anthropic: `POST /v1/messages/batches`, `GET /v1/messages/batches/{id}`, `GET
/v1/messages/batches` (newest first, `after_id`/`before_id` + `limit`, `first_id`, `last_id`,
`has_more`), `POST .../{id}/cancel`, and `results_url`, an absolute URL on this server (built
from the request's Host) at `.../{id}/results`. Anthropic batches have no metadata field: a
client can only find its batches again by id. Mistral: `POST /v1/files`, `GET /v1/files/{id}`,
`GET /v1/files/{id}/content`, `POST /v1/batch/jobs` (`input_files` and/or inline `requests`;
`model` fills in lines whose body has none; `metadata` echoed), `GET /v1/batch/jobs/{id}`
(`?inline=true` adds `outputs`, the result lines as a list), `GET /v1/batch/jobs` (`page`,
`page_size`, `status`, `model`, `order_by`; the SDK sends `metadata={...}` as bare query
parameters, so any other parameter filters on metadata), `POST /v1/batch/jobs/{id}/cancel`.

Each request of a batch is answered as the live endpoint answers the same body (same content,
same schema handling, `refuse_forms`/`ignore_forms` honoured, a bad body a 400), never rate
limited and never counted in the live counters. Content faults (`malformed`,
`schema_violation`, `length`, among `faults`) are drawn at `fault_rate`; transport faults are
not (see `batch_error_rate`). Output lines come in a shuffled order: match by `custom_id`.

Lifecycle, on the server's clock (`FakeProvider(clock=...)`): with `batch_seconds` = S, a
batch is `validating` for 0.1 S (Mistral `QUEUED`, Anthropic `in_progress`), then processes
its requests in input order, the counts rising in proportion to time until 0.9 S
(`in_progress`, Mistral `RUNNING`), is `finalizing` until S, then ends `completed` (Mistral
`SUCCESS`, Anthropic `ended`), or `expired` (Mistral `TIMEOUT_EXCEEDED`) when some requests
drew an expiry. A look is any call that shows the batch (get, list, cancel, stats). S = 0 (the
default): the create reply shows the first state, the first look after it the end. `POST
/_fake/batches/advance` with `{"seconds": x}` moves every batch (or `"id"`'s) on by x; with
`{}` to its end (`FakeProvider.advance_batches`); `GET /_fake/batches` shows the counters
below. A cancel answers `cancelling` (`canceling`, `CANCELLATION_REQUESTED`) and the next look
ends it `cancelled`: requests processed by then are in the output; Anthropic marks the rest
`canceled`, OpenAI and Mistral leave them out of both files. Cancelling an ended batch returns
it unchanged.

Results. OpenAI: good answers in `output_file_id` as `{"id","custom_id","response":
{"status_code":200,"request_id","body":<chat.completion>},"error":null}`; errored ones in
`error_file_id` with their 4xx/5xx status and the provider's error body; expired ones there too
as `"response":null,"error":{"code":"batch_expired","message"}`; a file with no lines is not
made (its id stays null). `request_counts.failed` counts errored plus expired. Anthropic: one
results JSONL with `succeeded` (`message`), `errored` (`error`: the API's error object),
`expired`, `canceled` lines. Mistral: `output_file` (status 200 lines `{"id","custom_id",
"response":{"status_code","body"},"error":null}`), `error_file` (the others); expired requests
are in neither: a client must notice the `custom_id`s that never came back.

Validation. OpenAI and Mistral fail a batch at the end of `validating` (`failed`, `FAILED`),
with OpenAI's `errors.data[{code,message,line}]` / Mistral's `errors[{message,count}]`, for a
line that is not a JSON object (`invalid_json_line`), lacks `custom_id` or `body`
(`missing_required_parameter`), repeats a `custom_id` (`duplicate_custom_id`) or, for OpenAI,
has another `url` or a method other than POST (`invalid_url`, `invalid_method`). Anthropic
answers 400 `invalid_request_error` at creation for the same faults and for a `custom_id` not
matching `^[a-zA-Z0-9_-]{1,64}$` (the real API's rule).

Knobs (`Knobs`, `configure()`, `--batch-*`): `batch_seconds`; `batch_error_rate` and
`batch_expire_rate`, the shares of requests answered 500 (`api_error` for Anthropic) and
expired, drawn at creation from an RNG seeded with `fault_seed`; `batch_partial`, the main
output file (OpenAI output, Anthropic results, Mistral output) cut mid-line near its middle;
`batch_fail_validation`, every new batch fails validation (Anthropic: a 400 at creation).
Knobs apply to batches created after they change.

Counters in `stats()["batches"]`: `created` and `requests` (submitted, counted once a batch
passes validation) and `api_calls` per provider, `duplicates` per provider (`custom_id`s
submitted in more than one request), `redundant` (a `custom_id` submitted again while an earlier
submission was still in flight or had already come back whole and good: what a client must
never do, even in follow-up batches), and `list`, every batch with its phase and counts.
`stats()["batch_duplicates"]` is the sum of `duplicates`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs

from panel.testing import batch_shapes as shapes
from panel.testing import hostile, wire
from panel.testing.batch_book import Batch, FileRec
from panel.testing.batch_requests import new_batch, read_lines
from panel.testing.wire import Provider

if TYPE_CHECKING:
    from panel.testing.state import State

__all__ = ["Response", "handle"]


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"


_ROUTES: tuple[tuple[str, str, str], ...] = (
    # (method, path pattern, action)
    ("POST", r"/v1/files", "upload"),
    ("GET", r"/v1/files/([^/]+)", "file"),
    ("GET", r"/v1/files/([^/]+)/content", "content"),
    ("POST", r"/v1/batches", "openai.create"),
    ("GET", r"/v1/batches", "openai.list"),
    ("GET", r"/v1/batches/([^/]+)", "openai.get"),
    ("POST", r"/v1/batches/([^/]+)/cancel", "openai.cancel"),
    ("POST", r"/v1/messages/batches", "anthropic.create"),
    ("GET", r"/v1/messages/batches", "anthropic.list"),
    ("GET", r"/v1/messages/batches/([^/]+)", "anthropic.get"),
    ("POST", r"/v1/messages/batches/([^/]+)/cancel", "anthropic.cancel"),
    ("GET", r"/v1/messages/batches/([^/]+)/results", "anthropic.results"),
    ("POST", r"/v1/batch/jobs", "mistral.create"),
    ("GET", r"/v1/batch/jobs", "mistral.list"),
    ("GET", r"/v1/batch/jobs/([^/]+)", "mistral.get"),
    ("POST", r"/v1/batch/jobs/([^/]+)/cancel", "mistral.cancel"),
)
_MISTRAL_LIST_PARAMS = {"page", "page_size", "model", "agent_id", "created_after", "created_by_me", "status"}
_MISTRAL_STATUS = {v: k for k, v in shapes.MISTRAL_STATUS.items() if k != "finalizing"}


class _Fail(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def handle(state: State, method: str, path: str, headers: dict[str, str], raw: bytes) -> Response | None:
    """Answer a Batch API or `/_fake/batches` call; None when `path` is none of them."""
    target, _, qs = path.partition("?")
    query = parse_qs(qs, keep_blank_values=True)
    prefix, rest = _split(target.rstrip("/") or "/")
    if prefix == "/openai" and not rest.startswith("/v1/"):
        rest = "/v1" + rest  # Azure OpenAI: `/openai/files?api-version=...`, no version prefix
    if rest.startswith("/_fake/batches"):
        return _control(state, method, rest, raw)
    found = next(
        (
            (m, action)
            for verb, pattern, action in _ROUTES
            if verb == method and (m := re.fullmatch(pattern, rest))
        ),
        None,
    )
    if found is None:
        return None
    match, action = found
    kind, _, op = action.partition(".")
    provider = cast(Provider, kind) if op else _files_provider(prefix, headers)
    ident = match.group(1) if match.groups() else ""
    with state.lock:
        state.batches.api_calls[provider] += 1
    try:
        if not op:
            return _files(state, action, provider, ident, headers, raw)
        base = f"http://{headers.get('host', '127.0.0.1')}{prefix}"
        return _batches(state, provider, op, ident, query, raw, base)
    except _Fail as exc:
        return _error(provider, exc.status, str(exc))
    except (ValueError, TypeError, AttributeError) as exc:
        return _error(provider, 400, f"invalid request body: {exc}")


def _split(path: str) -> tuple[str, str]:
    for prefix in ("/openai", "/anthropic", "/mistral", "/hf"):
        if path.startswith(prefix + "/"):
            return prefix, path[len(prefix) :]
    return "", path


def _files_provider(prefix: str, headers: dict[str, str]) -> Provider:
    if prefix:
        return cast(Provider, prefix[1:])
    agent = headers.get("user-agent", "").lower()
    return "mistral" if agent.startswith("mistral-client-python") or "mistralai" in agent else "openai"


def _json(obj: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(obj, ensure_ascii=False).encode())


def _error(provider: Provider, status: int, message: str) -> Response:
    return _json(wire.error_body(provider, status, message, wire.new_id("req_")), status)


def _control(state: State, method: str, rest: str, raw: bytes) -> Response:
    with state.lock:
        now = state.clock()
        if rest == "/_fake/batches/advance" and method == "POST":
            try:
                body = json.loads(raw or b"{}")
                seconds = body.get("seconds")
                touched = state.batches.advance(
                    None if seconds is None else float(seconds), body.get("id"), now
                )
            except (ValueError, TypeError, AttributeError) as exc:
                return _json({"error": f"advance takes {{seconds, id}}: {exc}"}, 400)
            return _json({"advanced": [b.id for b in touched], **state.batches.snapshot(now)})
        if rest == "/_fake/batches" and method == "GET":
            return _json(state.batches.snapshot(now))
    return _json({"error": f"unknown control endpoint {rest}"}, 404)


def _files(
    state: State, action: str, provider: Provider, ident: str, headers: dict[str, str], raw: bytes
) -> Response:
    book = state.batches
    if action == "upload":
        fields = _multipart(headers.get("content-type", ""), raw)
        if "file" not in fields:
            raise _Fail(400, "multipart field `file` is required")
        name, data = fields["file"]
        purpose = fields.get("purpose", ("", b"batch"))[1].decode()
        with state.lock:
            rec = book.add_file(
                FileRec(
                    shapes.new_file_id(provider),
                    provider,
                    purpose,
                    name or "upload.jsonl",
                    data,
                    int(book.wall()),
                )
            )
        return _json(shapes.file_object(rec, provider))
    with state.lock:
        found = book.files.get(ident)
    if found is None:
        raise _Fail(404, f"No such File object: {ident}")
    if action == "content":
        return Response(200, found.data, "application/octet-stream")
    return _json(shapes.file_object(found, provider))


def _multipart(content_type: str, raw: bytes) -> dict[str, tuple[str, bytes]]:
    """The parts of a multipart/form-data body: field name -> (filename, bytes)."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise _Fail(400, "file uploads must be multipart/form-data")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    msg = BytesParser(policy=policy.HTTP).parsebytes(head + raw)
    out: dict[str, tuple[str, bytes]] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            out[name] = (part.get_filename() or "", payload)
    return out


def _batches(
    state: State, provider: Provider, op: str, ident: str, query: dict[str, list[str]], raw: bytes, base: str
) -> Response:
    book = state.batches
    if op == "create":
        batch = _create(state, provider, json.loads(raw or b"null"))
        return _json(_shape(batch, base, False, state.knobs.batch_status_poison))
    if op == "list":
        return _json(_list(state, provider, query, base))
    with state.lock:
        found = book.batches.get(ident)
        if found is None or found.provider != provider:
            raise _Fail(404, f"batch {ident} not found")
        batch = found
        now = state.clock()
        if op == "cancel":
            book.cancel(batch, now)
        else:
            book.refresh(batch, now)
        if op == "results":
            if batch.results is None:
                raise _Fail(404, f"batch {ident} has no results yet: it is {batch.phase}")
            return Response(200, batch.results, "application/binary")
        inline = query.get("inline", ["false"])[0].lower() == "true"
        return _json(_shape(batch, base, inline, state.knobs.batch_status_poison))


def _shape(b: Batch, base: str, inline: bool, poison: str = "") -> dict[str, Any]:
    if b.provider == "anthropic":
        shown = shapes.anthropic_batch(b, base)
    elif b.provider == "mistral":
        shown = shapes.mistral_job(b, inline)
    else:
        shown = shapes.openai_batch(b)
    return hostile.poison_status(poison, b.provider, shown) if poison else shown


def _create(state: State, provider: Provider, body: Any) -> Batch:
    if not isinstance(body, dict):
        raise _Fail(400, "the request body must be a JSON object")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise _Fail(400, "`metadata` must be an object of strings")
    if provider == "anthropic":
        lines, errors = read_lines("anthropic", [body.get("requests")], "")
        if errors:
            raise _Fail(400, f"requests.{errors[0]['line'] - 1}: {errors[0]['message']}")
        with state.lock:
            fail = state.knobs.batch_fail_validation
        if fail:
            raise _Fail(400, "batch rejected at validation (fake provider: batch_fail_validation)")
        return new_batch(state, "anthropic", lines, [], "/v1/messages", None, None, [])
    endpoint = body.get("endpoint")
    # Azure's Batch API names the endpoint without the version prefix.
    if endpoint not in ("/v1/chat/completions", "/chat/completions"):
        raise _Fail(
            400, f"endpoint {endpoint!r} is not served by the fake provider: use /v1/chat/completions"
        )
    if provider == "openai":
        if body.get("completion_window") != "24h":
            raise _Fail(400, "completion_window must be '24h'")
        file_ids = [body.get("input_file_id")]
        model = None
    else:
        file_ids = list(body.get("input_files") or [])
        model = body.get("model")
    sources: list[Any] = []
    with state.lock:
        for fid in file_ids:
            rec = state.batches.files.get(str(fid))
            if rec is None:
                raise _Fail(404, f"No such File object: {fid}")
            sources.append(rec.data)
    if provider == "mistral" and body.get("requests") is not None:
        sources.append(body["requests"])
    if not sources:
        raise _Fail(400, "give `input_files` or `requests`")
    lines, errors = read_lines(provider, sources, endpoint)
    return new_batch(state, provider, lines, errors, endpoint, metadata, model, [str(f) for f in file_ids])


def _list(state: State, provider: Provider, query: dict[str, list[str]], base: str) -> dict[str, Any]:
    def one(name: str, default: str = "") -> str:
        return query.get(name, [default])[0]

    with state.lock:
        now = state.clock()
        rows = [b for b in reversed(state.batches.batches.values()) if b.provider == provider]
        for b in rows:
            state.batches.refresh(b, now)
        if provider == "mistral":
            wanted = {_MISTRAL_STATUS.get(s, s) for s in query.get("status", [])}
            meta = {k: v[0] for k, v in query.items() if k not in _MISTRAL_LIST_PARAMS | {"order_by"}}
            rows = [
                b
                for b in rows
                if (not wanted or b.phase in wanted or (b.phase == "finalizing" and "in_progress" in wanted))
                and (not one("model") or b.model == one("model"))
                and all(str((b.metadata or {}).get(k)) == v for k, v in meta.items())
            ]
            if one("order_by", "-created") == "created":
                rows.reverse()
            page, size = int(one("page", "0")), int(one("page_size", "100"))
            chosen = rows[page * size : (page + 1) * size]
            return {"object": "list", "total": len(rows), "data": [_shape(b, base, False) for b in chosen]}
        limit = max(1, int(one("limit", "20")))
        ids = [b.id for b in rows]
        after, before = one("after_id" if provider == "anthropic" else "after"), one("before_id")
        if after:
            start = ids.index(after) + 1 if after in ids else len(ids)
            chosen = rows[start : start + limit]
            more = start + limit < len(rows)
        elif before:
            end = ids.index(before) if before in ids else 0
            chosen = rows[max(0, end - limit) : end]
            more = end - limit > 0
        else:
            chosen, more = rows[:limit], limit < len(rows)
        data = [_shape(b, base, False) for b in chosen]
    page_ids = {"first_id": chosen[0].id if chosen else None, "last_id": chosen[-1].id if chosen else None}
    return {"object": "list", "data": data, "has_more": more, **page_ids}
