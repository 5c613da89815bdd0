"""The parsers of provider headers and error bodies, against the providers' own examples.

The loopback provider was written here from the same reading of the docs as the parsers,
so agreeing with it alone proves little. Each example below names the page it stands for;
error bodies are served as written from a one-answer server on 127.0.0.1 to the real SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from panel.backends import _provider as p
from panel.backends.base import Request
from panel.backends.registry import create_backend, parse_member
from panel.errors import BackendError

pytest.importorskip("openai")
pytest.importorskip("anthropic")
pytest.importorskip("mistralai")
pytest.importorskip("huggingface_hub")

KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "hf": "HF_TOKEN",
}
REQUEST = Request(
    messages=[
        {"role": "system", "content": "Answer in JSON."},
        {"role": "user", "content": "Review a tool."},
    ],
    schema={"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]},
    schema_name="ping",
)


NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)

RATELIMIT_EXAMPLES = [
    pytest.param(
        {
            "x-ratelimit-limit-requests": "60",
            "x-ratelimit-limit-tokens": "150000",
            "x-ratelimit-remaining-requests": "59",
            "x-ratelimit-remaining-tokens": "149984",
            "x-ratelimit-reset-requests": "1s",
            "x-ratelimit-reset-tokens": "6m0s",
        },
        {
            "limit_requests": 60,
            "limit_tokens": 150000,
            "remaining_requests": 59,
            "remaining_tokens": 149984,
            "reset_requests_s": 1.0,
            "reset_tokens_s": 360.0,
        },
        id="https://platform.openai.com/docs/guides/rate-limits#rate-limits-in-headers",
    ),
    pytest.param(
        {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": "2024-06-01T12:00:30Z",
            "anthropic-ratelimit-tokens-limit": "40000",
            "anthropic-ratelimit-tokens-remaining": "38500",
            "anthropic-ratelimit-tokens-reset": "2024-06-01T12:00:01.5Z",
            "retry-after": "30",
        },
        {
            "limit_requests": 50,
            "remaining_requests": 0,
            "reset_requests_s": 30.0,
            "limit_tokens": 40000,
            "remaining_tokens": 38500,
            "reset_tokens_s": 1.5,
        },
        id="https://docs.anthropic.com/en/api/rate-limits#response-headers",
    ),
    pytest.param(
        {
            "anthropic-ratelimit-input-tokens-limit": "20000",
            "anthropic-ratelimit-input-tokens-remaining": "19000",
            "anthropic-ratelimit-input-tokens-reset": "2024-06-01T12:01:00Z",
        },
        {"limit_tokens": 20000, "remaining_tokens": 19000, "reset_tokens_s": 60.0},
        id="https://docs.anthropic.com/en/api/rate-limits#response-headers (input tokens only)",
    ),
    pytest.param(
        {"anthropic-ratelimit-requests-reset": "2024-06-01T11:59:00Z"},
        {"reset_requests_s": 0.0},
        id="a reset already past is no wait",
    ),
    pytest.param({"content-type": "application/json"}, {}, id="no rate-limit headers"),
]


@pytest.mark.parametrize(("headers", "state"), RATELIMIT_EXAMPLES)
def test_ratelimit_headers_as_the_providers_document_them(
    headers: dict[str, str], state: dict[str, float]
) -> None:
    assert p.ratelimit_state(headers, now=NOW) == state


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        pytest.param({"retry-after": "30"}, 30.0, id="https://docs.anthropic.com/en/api/rate-limits"),
        pytest.param(
            {"Retry-After": "120"}, 120.0, id="https://www.rfc-editor.org/rfc/rfc9110#field.retry-after"
        ),
        pytest.param(
            {"retry-after": "Fri, 31 Dec 1999 23:59:59 GMT"},
            120.0,
            id="https://www.rfc-editor.org/rfc/rfc9110#field.retry-after (HTTP date)",
        ),
        pytest.param(
            {"retry-after-ms": "1500", "retry-after": "2"},
            1.5,
            id="openai-python and anthropic-sdk-python _base_client: retry-after-ms first",
        ),
        pytest.param({"retry-after": "soon"}, None, id="not a number or a date"),
        pytest.param({}, None, id="no header"),
    ],
)
def test_retry_after_as_documented(headers: dict[str, str], seconds: float | None) -> None:
    now = datetime(1999, 12, 31, 23, 57, 59, tzinfo=UTC)
    assert p.retry_after(headers, now=now) == seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),  # the OpenAI rate-limit page's examples
        ("6m0s", 360.0),
        ("300ms", 0.3),  # https://pkg.go.dev/time#ParseDuration: OpenAI writes Go durations
        ("2h45m", 9900.0),
        ("1h2m3.5s", 3723.5),
        ("later", None),
        ("-1.5h", None),  # a negative reset means nothing to wait for
    ],
)
def test_durations_as_go_writes_them(text: str, seconds: float | None) -> None:
    assert p.duration_seconds(text) == (None if seconds is None else pytest.approx(seconds))


@dataclass(frozen=True)
class Documented:
    backend: str
    status: int
    body: dict[str, Any]
    kind: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: float | None = None


ERROR_EXAMPLES = [
    pytest.param(
        Documented(
            "openai",
            429,
            {
                "error": {
                    "message": "Rate limit reached for requests",
                    "type": "requests",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            },
            "rate_limit",
            "Rate limit reached for requests",
        ),
        id="openai 429: https://platform.openai.com/docs/guides/error-codes#api-errors",
    ),
    pytest.param(
        Documented(
            "openai",
            429,
            {
                "error": {
                    "message": "You exceeded your current quota, please check your plan and billing details.",
                    "type": "insufficient_quota",
                    "param": None,
                    "code": "insufficient_quota",
                }
            },
            "fatal",
            "You exceeded your current quota",
        ),
        id="openai 429 quota: https://platform.openai.com/docs/guides/error-codes#api-errors",
    ),
    pytest.param(
        Documented(
            "openai",
            500,
            {
                "error": {
                    "message": "The server had an error while processing your request.",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            },
            "transient",
            "The server had an error while processing your request.",
        ),
        id="openai 500: https://platform.openai.com/docs/guides/error-codes#api-errors",
    ),
    pytest.param(
        Documented(
            "anthropic",
            429,
            {
                "type": "error",
                "error": {"type": "rate_limit_error", "message": "Your account has hit a rate limit."},
            },
            "rate_limit",
            "Your account has hit a rate limit.",
            headers={"retry-after": "30"},
            retry_after=30.0,
        ),
        id="anthropic 429: https://docs.anthropic.com/en/api/errors#http-errors",
    ),
    pytest.param(
        Documented(
            "anthropic",
            529,
            {
                "type": "error",
                "error": {
                    "type": "overloaded_error",
                    "message": "Anthropic's API is temporarily overloaded.",
                },
            },
            "transient",
            "Anthropic's API is temporarily overloaded.",
        ),
        id="anthropic 529: https://docs.anthropic.com/en/api/errors#http-errors",
    ),
    pytest.param(
        Documented(
            "mistral",
            429,
            {
                "object": "error",
                "message": "Rate limit exceeded",
                "type": "rate_limited",
                "param": None,
                "code": "1300",
            },
            "rate_limit",
            "Rate limit exceeded",
        ),
        # Mistral documents its limits but not the body; this is the body its API sends,
        # as quoted in https://github.com/cline/cline/issues/9085.
        id="mistral 429: https://docs.mistral.ai/deployment/laplateforme/tier/",
    ),
    pytest.param(
        Documented(
            "hf",
            422,
            {
                "error": "Input validation error: `inputs` must have less than 4096 tokens. Given: 5000",
                "error_type": "validation",
            },
            "fatal",
            "Input validation error",
        ),
        id="hf 422: https://huggingface.co/docs/text-generation-inference (ErrorResponse)",
    ),
    pytest.param(
        Documented(
            "hf",
            429,
            {"error": "Model is overloaded", "error_type": "overloaded"},
            "rate_limit",
            "Model is overloaded",
        ),
        id="hf 429: https://huggingface.co/docs/text-generation-inference (ErrorResponse)",
    ),
]


class _Canned(BaseHTTPRequestHandler):
    """Answers every POST with one status, headers and body, and counts the requests."""

    protocol_version = "HTTP/1.1"
    answer: ClassVar[tuple[int, dict[str, str], bytes]] = (500, {}, b"{}")
    seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        type(self).seen.append(self.path)
        status, headers, body = self.answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def canned(status: int, headers: dict[str, str], body: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    handler = type(
        "Handler", (_Canned,), {"answer": (status, headers, json.dumps(body).encode()), "seen": []}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("example", ERROR_EXAMPLES)
def test_documented_error_bodies_are_classified(example: Documented, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv(KEY_ENV[example.backend], "sk-documented-example")
    with canned(example.status, example.headers, example.body) as (url, seen):
        options = {"base_url": url + ("/v1" if example.backend == "openai" else ""), "timeout": 5}
        backend = create_backend(parse_member(f"{example.backend}:some-model", options))

        async def call() -> BackendError:
            try:
                with pytest.raises(BackendError) as info:
                    await backend.generate(REQUEST)
                return info.value
            finally:
                await backend.aclose()

        error = asyncio.run(call())
    assert (error.kind, error.status, error.retry_after) == (
        example.kind,
        example.status,
        example.retry_after,
    )
    assert example.message in str(error)
    assert len(seen) == 1  # the SDK did not retry


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, "rate_limit"),
        (408, "transient"),
        (409, "transient"),
        (500, "transient"),
        (502, "transient"),
        (529, "transient"),
        (400, "fatal"),
        (401, "fatal"),
        (403, "fatal"),
        (404, "fatal"),
        (422, "fatal"),
        (None, "fatal"),
    ],
)
def test_status_classification(status: int | None, kind: str) -> None:
    error = p.error_for_status("x", status, "detail", headers={"retry-after": "3"}, request_id="r1")
    assert (error.kind, error.status, error.retry_after, error.request_id) == (kind, status, 3.0, "r1")
