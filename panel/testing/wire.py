"""Per-provider wire shapes for the fake provider: routing, request parsing, bodies, headers.

Everything here is pure (no sockets, no clocks except where a timestamp is the
payload) so the server module only decides *what* to answer and this one decides
how each provider spells it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from panel.backends.planted import planted_head_to_head
from panel.testing.schema_fill import fill, violate

Provider = Literal["openai", "anthropic", "mistral", "hf"]
PROVIDERS: tuple[Provider, ...] = ("openai", "anthropic", "mistral", "hf")
Route = Literal["chat", "messages"]
# How the request asked for structured output; `json_object` is llama.cpp's
# `{"type":"json_object","schema":...}` (or a bare JSON-mode request).
Form = Literal["json_schema", "tool", "output_config", "tgi_grammar", "json_object", "none"]
ContentFault = Literal["malformed", "schema_violation", "length"] | None

_PREFIXES: dict[str, Provider] = {
    "/openai": "openai",
    "/anthropic": "anthropic",
    "/mistral": "mistral",
    "/hf": "hf",
}

#: Azure OpenAI's chat path under `/openai` (the deployment stands for the model)
_AZURE_CHAT = re.compile(r"/deployments/[^/]+/chat/completions")
#: headers that carry a key: the fake keeps only their hash (`auth_of`), never the value
SECRET_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "proxy-authorization"})

# Used when JSON mode is requested without a schema: some object is the contract.
BARE_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string", "maxLength": 80}},
    "required": ["answer"],
}


class BadRequest(ValueError):
    """The request cannot be answered; the message goes back in a 400 body."""


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def attribute(path: str, headers: Mapping[str, str]) -> tuple[Provider | None, Route | None]:
    """Which provider a request belongs to, and which endpoint it hit.

    A path prefix (`/mistral/v1/...`) wins; otherwise Anthropic has its own path and
    the three OpenAI-shaped SDKs, which share `/v1/chat/completions`, are told
    apart by their User-Agent.
    """
    path = path.split("?", 1)[0].rstrip("/")
    forced: Provider | None = None
    for prefix, provider in _PREFIXES.items():
        if path.startswith(prefix + "/"):
            forced, path = provider, path[len(prefix) :]
            break
    if path == "/v1/messages":
        return forced or "anthropic", "messages"
    if forced == "openai" and _AZURE_CHAT.fullmatch(path):
        # Azure OpenAI: `/openai/deployments/{deployment}/chat/completions?api-version=...`
        return "openai", "chat"
    if path in ("/v1/chat/completions", "/chat/completions"):
        if forced:
            return forced, "chat"
        agent = headers.get("user-agent", "").lower()
        if agent.startswith("mistral-client-python") or "mistralai" in agent:
            return "mistral", "chat"
        if "hf_hub/" in agent or "huggingface" in agent:
            return "hf", "chat"
        return "openai", "chat"
    return forced, None


def auth_of(headers: Mapping[str, str]) -> tuple[str, str | None]:
    """(scheme, sha256 of the key); the key itself is never kept."""
    bearer = headers.get("authorization", "")
    if bearer.lower().startswith("bearer "):
        return "bearer", sha256_hex(bearer[7:].strip())
    if headers.get("x-api-key"):
        return "x-api-key", sha256_hex(headers["x-api-key"])
    if headers.get("api-key"):  # Azure OpenAI's key header
        return "api-key", sha256_hex(headers["api-key"])
    if bearer:
        return "other", sha256_hex(bearer)
    return "none", None


@dataclass(frozen=True)
class ParsedRequest:
    provider: Provider
    model: str
    form: Form
    schema: dict[str, Any] | None
    tool_name: str | None
    prompt_tokens: int
    seed: str
    #: a head-to-head ask's planted answer (`panel.backends.planted`); None for other asks
    planted: dict[str, Any] | None = None


def parse(provider: Provider, route: Route, body: Any) -> ParsedRequest:
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    if body.get("stream"):
        raise BadRequest("streaming is not supported by the fake provider")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("`messages` must be a non-empty list")
    model = str(body.get("model") or "")
    if route == "messages":
        form, schema, tool = _anthropic_structure(body)
    else:
        form, schema, tool = _chat_structure(body)
    chars = sum(_chars(m.get("content")) for m in messages if isinstance(m, dict))
    chars += _chars(body.get("system"))
    # Like a real model, a sampled reply depends on the sampling seed; a greedy one does not.
    temperature = body.get("temperature", 1.0)
    sampling_seed = body.get("seed", body.get("random_seed")) if temperature else None
    seed = sha256_hex(
        canonical(
            {
                "model": model,
                "messages": messages,
                "system": body.get("system"),
                "schema": schema,
                "tool": tool,
                "sampling_seed": sampling_seed,
            }
        )
    )
    planted = planted_head_to_head(schema, messages, seed)
    return ParsedRequest(provider, model, form, schema, tool, math.ceil(chars / 4), seed, planted)


def _chars(node: Any) -> int:
    if isinstance(node, str):
        return len(node)
    if isinstance(node, list):
        return sum(_chars(x) for x in node)
    if isinstance(node, dict):
        return sum(_chars(v) for k, v in node.items() if k in ("text", "content"))
    return 0


def _anthropic_structure(body: dict[str, Any]) -> tuple[Form, dict[str, Any] | None, str | None]:
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and "name" in t]
    choice = body.get("tool_choice") or {}
    if tools and isinstance(choice, dict) and choice.get("type") in ("tool", "any"):
        name = choice.get("name") if choice["type"] == "tool" else tools[0]["name"]
        tool = next((t for t in tools if t["name"] == name), None)
        if tool is None:
            raise BadRequest(f"tool_choice names unknown tool {name!r}")
        return "tool", tool.get("input_schema") or {"type": "object"}, name
    # `output_format` is the pre-GA beta spelling of the same thing.
    fmt = (body.get("output_config") or {}).get("format") or body.get("output_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return "output_config", fmt.get("schema") or {}, None
    return "none", None, None


def _chat_structure(body: dict[str, Any]) -> tuple[Form, dict[str, Any] | None, str | None]:
    functions = [
        t["function"]
        for t in body.get("tools") or []
        if isinstance(t, dict) and isinstance(t.get("function"), dict)
    ]
    choice = body.get("tool_choice")
    name: str | None = None
    if functions and isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
    elif functions and choice in ("required", "any"):
        name = functions[0].get("name")
    if name is not None:
        fn = next((f for f in functions if f.get("name") == name), None)
        if fn is None:
            raise BadRequest(f"tool_choice names unknown function {name!r}")
        return "tool", fn.get("parameters") or {"type": "object"}, name
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return "none", None, None
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        return "json_schema", spec.get("schema") or {}, None
    # llama.cpp reads `schema`, TGI `value`: a request that sends both is read as llama.cpp does.
    if fmt.get("type") in ("json_object", "json") and "value" in fmt and "schema" not in fmt:
        return "tgi_grammar", fmt["value"] or {}, None
    if fmt.get("type") == "json_object":
        return "json_object", fmt.get("schema") or BARE_JSON_SCHEMA, None
    return "none", None, None


@dataclass(frozen=True)
class Reply:
    """The model's answer before it is wrapped in a provider's envelope."""

    text: str  # message text, or a tool call's arguments as JSON text
    tool_input: dict[str, Any] | None  # set when the answer is a tool call
    truncated: bool  # finish_reason `length` / stop_reason `max_tokens`

    @property
    def completion_tokens(self) -> int:
        return math.ceil(len(self.text) / 4)


def make_reply(req: ParsedRequest, fault: ContentFault) -> Reply:
    if req.schema is None:
        text = str(fill({"type": "string", "minLength": 30, "maxLength": 160}, req.seed))
        if fault in ("malformed", "length"):
            text = text[: len(text) // 2]
        return Reply(text, None, fault in ("malformed", "length"))
    value = req.planted if req.planted is not None else fill(req.schema, req.seed)
    if fault == "schema_violation":
        value = violate(req.schema, value, req.seed)
    text = json.dumps(value, ensure_ascii=False)
    if fault in ("malformed", "length"):
        text = _truncated_json(text)
        # Anthropic tool input is an object on the wire: a broken call shows up as
        # the model answering in text instead (malformed) or an empty input (length).
        if req.form == "tool":
            return Reply(text, None if fault == "malformed" else {}, fault == "length")
        return Reply(text, None, fault == "length")
    if req.form == "tool":
        return Reply(text, value if isinstance(value, dict) else {"value": value}, False)
    return Reply(text, None, False)


def _truncated_json(text: str) -> str:
    cut = text[: max(1, len(text) // 2)]
    try:
        json.loads(cut)
    except ValueError:
        return cut
    return '{"' + cut  # a prefix of a scalar can still parse; make sure it doesn't


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def success_body(req: ParsedRequest, reply: Reply, request_id: str) -> dict[str, Any]:
    if req.provider == "anthropic":
        return _anthropic_body(req, reply)
    usage: dict[str, Any] = {
        "prompt_tokens": req.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": req.prompt_tokens + reply.completion_tokens,
    }
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    finish = "length" if reply.truncated else "stop"
    if req.form == "tool":
        # Broken arguments stay inside the tool call: that is how OpenAI-style APIs
        # deliver a model's malformed or cut-off call.
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": new_id("call_"),
                    "type": "function",
                    "function": {"name": req.tool_name, "arguments": reply.text},
                }
            ],
        }
        finish = "length" if reply.truncated else "tool_calls"
    if req.provider == "openai":
        usage["prompt_tokens_details"] = {"cached_tokens": 0}
        message["refusal"] = None
    return {
        "id": "chatcmpl-" + request_id.removeprefix("req_"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req.model or "fake-model",
        "choices": [{"index": 0, "finish_reason": finish, "message": message, "logprobs": None}],
        "usage": usage,
    }


def _anthropic_body(req: ParsedRequest, reply: Reply) -> dict[str, Any]:
    block: dict[str, Any]
    if req.form == "tool" and reply.tool_input is not None:
        block = {"type": "tool_use", "id": new_id("toolu_"), "name": req.tool_name, "input": reply.tool_input}
        stop = "max_tokens" if reply.truncated else "tool_use"
    else:
        block = {"type": "text", "text": reply.text}
        stop = "max_tokens" if reply.truncated else "end_turn"
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": req.model or "fake-model",
        "content": [block],
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": req.prompt_tokens,
            "output_tokens": reply.completion_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}
_OPENAI_ERRORS = {
    400: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    503: "server_error",
}


def error_body(provider: Provider | None, status: int, message: str, request_id: str) -> dict[str, Any]:
    if provider == "anthropic":
        kind = _ANTHROPIC_ERRORS.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}
    kind = _OPENAI_ERRORS.get(status, "server_error")
    if provider == "mistral":
        return {"object": "error", "message": message, "type": kind, "param": None, "code": str(status)}
    if provider == "hf":
        return {"error": message, "error_type": kind}
    return {
        "error": {"message": message, "type": kind, "param": None, "code": kind if status == 429 else None}
    }


def refusal_body(form: Form) -> dict[str, Any]:
    """llama-cpp-python's answer to a structured-output form it does not take: a request
    validation error, sent as HTTP 500."""
    field, given = ("tool_choice", "function") if form == "tool" else ("response_format", form)
    detail = (
        f"1 validation error:\n  {{'type': 'literal_error', 'loc': ('body', '{field}', 'type'), "
        f"'msg': \"Input should be 'text' or 'json_object'\", 'input': '{given}'}}"
    )
    return {"error": {"message": detail, "type": "internal_server_error", "param": None, "code": None}}


def request_id_header(provider: Provider | None) -> str:
    return "request-id" if provider == "anthropic" else "x-request-id"


@dataclass(frozen=True)
class RateState:
    """What the limiter knows after deciding on one request (limits may be nominal)."""

    limit_requests: int
    remaining_requests: int
    reset_requests: float  # seconds until a request slot frees up
    limit_tokens: int
    remaining_tokens: int
    reset_tokens: float
    retry_after: float | None  # set on a 429


def rate_headers(provider: Provider | None, rs: RateState, *, limits: bool = True) -> dict[str, str]:
    """The rate-limit headers of a reply; `limits=False` leaves only the 429's wait hint."""
    headers: dict[str, str] = {}
    if limits and provider == "anthropic":
        headers = {
            "anthropic-ratelimit-requests-limit": str(rs.limit_requests),
            "anthropic-ratelimit-requests-remaining": str(rs.remaining_requests),
            "anthropic-ratelimit-requests-reset": _rfc3339_in(rs.reset_requests),
            "anthropic-ratelimit-tokens-limit": str(rs.limit_tokens),
            "anthropic-ratelimit-tokens-remaining": str(rs.remaining_tokens),
            "anthropic-ratelimit-tokens-reset": _rfc3339_in(rs.reset_tokens),
        }
    elif limits:
        # Mistral's and HF's own header names are unconfirmed; OpenAI's are a
        # reasonable stand-in and clients must not depend on them anyway.
        headers = {
            "x-ratelimit-limit-requests": str(rs.limit_requests),
            "x-ratelimit-remaining-requests": str(rs.remaining_requests),
            "x-ratelimit-reset-requests": _go_duration(rs.reset_requests),
            "x-ratelimit-limit-tokens": str(rs.limit_tokens),
            "x-ratelimit-remaining-tokens": str(rs.remaining_tokens),
            "x-ratelimit-reset-tokens": _go_duration(rs.reset_tokens),
        }
    if rs.retry_after is not None:
        headers["retry-after"] = str(max(1, math.ceil(rs.retry_after)))
        headers["retry-after-ms"] = str(max(1, math.ceil(rs.retry_after * 1000)))
    return headers


def _go_duration(seconds: float) -> str:
    """OpenAI's reset format: `12ms`, `1.5s`, `6m0s`."""
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    secs = f"{rest:.3f}".rstrip("0").rstrip(".")
    return f"{int(minutes)}m{secs}s" if minutes else f"{secs}s"


def _rfc3339_in(seconds: float) -> str:
    # Rounded up: a client that waits until the stamp must find the slot free.
    at = datetime.now(UTC) + timedelta(seconds=math.ceil(seconds))
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")
