"""The openai backend sends plain JSON over aiohttp; the official SDK is the reference.

For every structured-output form, with sampling extras and both token parameters, the body
the fake provider receives from the backend must equal the body it receives from the OpenAI
SDK called with the same arguments, and the key must arrive the same way. The SDK's reading
of an error (status, request id) and the backend's must agree as well.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from panel.backends.base import Request
from panel.backends.openai import OpenAIBackend
from panel.backends.structured import FORMS
from panel.errors import BackendError, CapabilityError, RateLimitError
from panel.personas import load_persona
from panel.resources import data_dir
from panel.testing.fake_provider import FakeProvider

openai = pytest.importorskip("openai")

PERSONA = load_persona(data_dir("personas") / "skeptic.yaml")
KEY = "sk-wire-test-4c1e9b7a2d"
REQUEST = Request(
    messages=[
        {"role": "system", "content": "You are the skeptic. Answer in JSON only."},
        {"role": "user", "content": 'Review Quillpad ```json\n{"name": "Quillpad ✓"}\n```'},
    ],
    schema=PERSONA.review_schema,
    schema_name="skeptic_review",
)


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as server:
        yield server


def _backend(fake: FakeProvider, **options: Any) -> OpenAIBackend:
    return OpenAIBackend("gpt-wire", api_key=KEY, base_url=fake.base_url("openai"), timeout=5, **options)


async def _through_backend(backend: OpenAIBackend, form: str) -> None:
    try:
        await backend._call(REQUEST, form)  # type: ignore[arg-type]
    finally:
        await backend.aclose()


async def _through_sdk(fake: FakeProvider, params: dict[str, Any]) -> None:
    async with openai.AsyncOpenAI(api_key=KEY, base_url=fake.base_url("openai"), max_retries=0) as client:
        await client.chat.completions.create(**params)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    "options",
    [
        {},
        {
            "sampling": {"repeat_penalty": 1.1, "frequency_penalty": 0.2},
            "token_param": "max_completion_tokens",
        },
    ],
    ids=["plain", "extras"],
)
def test_body_and_key_match_the_sdk(fake: FakeProvider, form: str, options: dict[str, Any]) -> None:
    backend = _backend(fake, **options)
    params = backend._params(REQUEST, form)  # type: ignore[arg-type]
    asyncio.run(_through_backend(backend, form))
    ours = fake.stats()["recent"][-1]
    asyncio.run(_through_sdk(fake, params))
    theirs = fake.stats()["recent"][-1]

    assert ours["body"] == theirs["body"]
    assert ours["form"] == theirs["form"]
    key_hash = hashlib.sha256(KEY.encode()).hexdigest()
    assert (ours["auth_scheme"], ours["auth_key_sha256"]) == ("bearer", key_hash)
    assert (theirs["auth_scheme"], theirs["auth_key_sha256"]) == ("bearer", key_hash)


def test_reply_read_like_the_sdk_reads_it(fake: FakeProvider) -> None:
    backend = _backend(fake)

    async def both() -> tuple[Any, Any]:
        try:
            ours = await backend._call(REQUEST, "json_schema")
        finally:
            await backend.aclose()
        params = backend._params(REQUEST, "json_schema")
        async with openai.AsyncOpenAI(api_key=KEY, base_url=fake.base_url("openai"), max_retries=0) as client:
            theirs = await client.chat.completions.create(**params)
        return ours, theirs

    ours, theirs = asyncio.run(both())
    # The fake answers identical requests identically, so the two replies are one reply.
    assert ours.text == theirs.choices[0].message.content
    assert ours.usage.input_tokens == theirs.usage.prompt_tokens
    assert ours.usage.output_tokens == theirs.usage.completion_tokens
    assert ours.finish_reason == theirs.choices[0].finish_reason == "stop"
    assert ours.meta["model"] == theirs.model


@pytest.mark.parametrize(
    ("knobs", "expected"),
    [
        ({"rpm": 1}, RateLimitError),  # the first request takes the minute's one
        ({"refuse_forms": ["json_schema"]}, CapabilityError),
    ],
    ids=["429", "refused-form"],
)
def test_errors_read_like_the_sdk_reads_them(
    fake: FakeProvider, knobs: dict[str, Any], expected: type[BackendError]
) -> None:
    fake.configure(**knobs)
    if expected is RateLimitError:
        asyncio.run(_through_backend(_backend(fake), "json_schema"))
    backend = _backend(fake, structured="json_schema")
    with pytest.raises(expected) as ours:
        asyncio.run(_through_backend(backend, "json_schema"))
    params = backend._params(REQUEST, "json_schema")
    with pytest.raises(openai.APIStatusError) as theirs:
        asyncio.run(_through_sdk(fake, params))
    assert ours.value.status == theirs.value.status_code
    # Both read the request id from the same header (ids differ from request to request).
    assert ours.value.request_id and theirs.value.request_id
    assert ours.value.request_id.startswith("req_") and theirs.value.request_id.startswith("req_")
    if expected is RateLimitError:
        assert ours.value.retry_after is not None and ours.value.retry_after > 0
    # The server's own words reach the message, the key never does.
    assert KEY not in str(ours.value)


def test_proxy_from_the_environment_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from panel.backends._http import env_proxy

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert env_proxy("https://api.openai.com/v1") == "http://proxy.example:3128"
    assert env_proxy("http://127.0.0.1:8080/v1") is None
    backend = OpenAIBackend("gpt-wire", api_key=KEY, timeout=5)
    assert backend._client.proxy == "http://proxy.example:3128"


def test_a_named_key_variable_that_is_unset_is_an_error_even_for_a_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from panel.backends.registry import create_backend, parse_member
    from panel.errors import MissingKeyError

    monkeypatch.delenv("PROXY_KEY", raising=False)
    options = {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "PROXY_KEY"}
    with pytest.raises(MissingKeyError, match="PROXY_KEY"):
        create_backend(parse_member("openai:smollm2", options))
    # Without a named variable a local server still gets the placeholder.
    assert create_backend(parse_member("openai:smollm2", {"base_url": "http://127.0.0.1:9/v1"}))


def test_errors_from_another_server_name_it(fake: FakeProvider) -> None:
    fake.configure(fault_rate=1.0, faults=["500"])
    with pytest.raises(BackendError) as failed:
        asyncio.run(_through_backend(_backend(fake), "json_schema"))
    assert str(failed.value).startswith(f"openai at 127.0.0.1:{fake.port} HTTP 500")
