"""The four cloud backends against the loopback fake provider, each through its real SDK (the
openai body, sent by the SDK's generic POST, is held to its typed call's in `test_openai_wire.py`).

Backends are built the way the CLI builds them (`create_backend` with options and a key in
the environment), so construction, key handling and the SDK's own wire format are all under
test. Only the structured-output negotiation test injects a client, to make the server refuse.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from panel.backends.base import Backend, Reply, Request
from panel.backends.local import fit_schema
from panel.backends.registry import create_backend, parse_member
from panel.errors import (
    BackendError,
    BackendSpecError,
    FatalError,
    MissingKeyError,
    RateLimitError,
    TransientError,
)
from panel.personas import load_persona
from panel.resources import data_dir
from panel.run.validate import InvalidReply, parse_review
from panel.testing.fake_provider import FakeProvider
from panel.testing.wire import Provider

PERSONA = load_persona(data_dir("personas") / "builder.yaml")
SYSTEM = "You are the builder on a review panel. Answer in JSON only."
REQUEST = Request(
    messages=[
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Review the tool Quillpad, a shared notebook for prompts."},
    ],
    schema=PERSONA.review_schema,
    schema_name="builder_review",
)
ENV_VARS = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_CUSTOM_HEADERS",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_CUSTOM_HEADERS",
    "MISTRAL_API_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "PANEL_TEST_KEY",
)


@dataclass(frozen=True)
class Case:
    id: str
    backend: Provider  # the backends are named like the fake's providers
    key_env: str
    form: str  # how the fake saw the structured-output request
    model: str = "review-model-1"
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"sk-{self.id}-0b5e7c1d9a"


CASES = [
    Case("openai", "openai", "OPENAI_API_KEY", "json_schema"),
    Case("anthropic", "anthropic", "ANTHROPIC_API_KEY", "output_config"),
    Case("anthropic-tool", "anthropic", "ANTHROPIC_API_KEY", "tool", options={"structured": "tool"}),
    Case("mistral", "mistral", "MISTRAL_API_KEY", "json_schema"),
    Case("hf", "hf", "HF_TOKEN", "json_object", model="acme/review-model-1"),
]
IDS = [c.id for c in CASES]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as server:
        yield server


def build(case: Case, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch, **options: Any) -> Backend:
    monkeypatch.setenv(case.key_env, case.key)
    opts = {"base_url": fake.base_url(case.backend), "timeout": 5, **case.options, **options}
    return create_backend(parse_member(f"{case.backend}:{case.model}", opts))


def run(backend: Backend, request: Request = REQUEST) -> Reply:
    async def go() -> Reply:
        try:
            return await backend.generate(request)
        finally:
            await backend.aclose()

    return asyncio.run(go())


def fails(backend: Backend, request: Request = REQUEST) -> BackendError:
    with pytest.raises(BackendError) as info:
        run(backend, request)
    return info.value


def last(fake: FakeProvider) -> dict[str, Any]:
    record: dict[str, Any] = fake.stats()["recent"][-1]
    return record


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def assert_no_secret(case: Case, *things: object) -> None:
    for thing in things:
        assert case.key not in str(thing) and case.key not in repr(thing)


# --- the happy path, checked on the wire ----------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_review_round_trip_on_the_wire(
    case: Case, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = build(case, fake, monkeypatch)
    reply = run(backend)

    review = parse_review(PERSONA.review_model, reply.text, reply.finish_reason)
    assert review.model_dump()["verdict"] in ("ship", "skip")
    assert reply.finish_reason == "stop"
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0
    assert reply.request_id and reply.latency_s > 0
    assert backend.label == f"{case.backend}:{case.model}"
    assert_no_secret(case, backend, json.dumps(reply.meta))

    record = last(fake)
    body = record["body"]
    assert record["form"] == case.form and record["model"] == case.model
    assert (record["auth_scheme"], record["auth_key_sha256"]) == ("bearer", sha(case.key))
    schema = PERSONA.review_schema
    # A server behind a base_url compiles the schema to a grammar: free text is capped to fit.
    fitted = fit_schema(schema, 700)
    if case.backend in ("openai", "mistral"):
        sent = fitted if case.backend == "openai" else schema
        assert body["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "builder_review", "schema": sent, "strict": True},
        }
        assert reply.meta["ratelimit"]["remaining_requests"] == 999_999
        assert reply.meta["ratelimit"]["reset_requests_s"] > 0
    if case.backend == "openai":
        # A custom base URL means a compatible server: the older token parameter.
        assert (body["max_tokens"], body["seed"], body["top_p"]) == (700, 1234, 0.95)
    if case.backend == "mistral":
        assert (body["max_tokens"], body["random_seed"]) == (700, 1234)
    if case.backend == "anthropic":
        import anthropic

        assert body["system"] == SYSTEM
        assert [m["role"] for m in body["messages"]] == ["user"]
        assert body["max_tokens"] == 700
        assert reply.meta["ratelimit"]["limit_requests"] == 1_000_000
        if case.form == "output_config":
            native = {"type": "json_schema", "schema": anthropic.transform_schema(schema)}
            assert body["output_config"] == {"format": native}
            assert "tools" not in body
        else:
            assert body["tools"][0]["name"] == "builder_review"
            assert body["tools"][0]["input_schema"] == schema
            assert body["tool_choice"] == {"type": "tool", "name": "builder_review"}
            assert "output_config" not in body and record["tool_name"] == "builder_review"
    if case.backend == "hf":
        # Read by TGI (`value`) and by llama.cpp-style servers (`schema`) alike.
        assert body["response_format"] == {"type": "json_object", "schema": fitted, "value": fitted}
        assert (body["max_tokens"], body["seed"]) == (700, 1234)


def test_hf_endpoint_url_as_model_needs_no_key(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    url = fake.base_url("hf")
    backend = create_backend(parse_member(f"hf:{url}", {"timeout": 5}))
    assert backend.label == f"hf:{url}"
    reply = run(backend)
    parse_review(PERSONA.review_model, reply.text)
    record = last(fake)
    assert record["path"] == "/hf/v1/chat/completions"
    assert (record["form"], record["model"]) == ("json_object", "dummy")


def test_openai_compatible_server_without_key_gets_placeholder(
    fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url("openai"))
    reply = run(create_backend(parse_member("openai:llama-3", {"timeout": 5})))
    parse_review(PERSONA.review_model, reply.text)
    assert last(fake)["auth_key_sha256"] == sha("not-needed")


def test_openai_token_parameter_can_be_chosen(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = build(CASES[0], fake, monkeypatch, token_param="max_completion_tokens")
    run(backend)
    body = last(fake)["body"]
    assert body["max_completion_tokens"] == 700 and "max_tokens" not in body
    with pytest.raises(BackendSpecError):
        build(CASES[0], fake, monkeypatch, token_param="tokens")


# --- failures, classified --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["500", "503", "529"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_server_errors_are_transient(
    case: Case, kind: str, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.configure(fault_rate=1.0, faults=[kind])
    error = fails(build(case, fake, monkeypatch))
    expected = 503 if kind == "529" and case.backend != "anthropic" else int(kind)
    assert isinstance(error, TransientError) and error.kind == "transient"
    assert error.status == expected
    assert error.request_id and error.request_id.startswith("req_")
    assert_no_secret(case, error)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_rate_limit_reads_the_wait_hint(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeProvider(rpm=1, rate_window=30) as fake:
        backend = build(case, fake, monkeypatch)

        async def twice() -> BackendError:
            try:
                await backend.generate(REQUEST)
                with pytest.raises(BackendError) as info:
                    await backend.generate(REQUEST)
                return info.value
            finally:
                await backend.aclose()

        error = asyncio.run(twice())
    assert isinstance(error, RateLimitError) and error.status == 429
    # The fake sends `retry-after: 30` and `retry-after-ms` with what is left of the window
    # (which header wins is pinned against the SDKs' own order in test_provider_docs.py).
    assert error.retry_after is not None and 0 < error.retry_after <= 30
    assert_no_secret(case, error)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_dropped_connection_is_transient(
    case: Case, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.configure(fault_rate=1.0, faults=["reset"])
    error = fails(build(case, fake, monkeypatch))
    assert isinstance(error, TransientError) and error.status is None
    assert_no_secret(case, error)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_hang_times_out_as_transient(case: Case, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    # The server would answer after 60 s; only the client's own timeout ends the call sooner.
    fake.configure(fault_rate=1.0, faults=["hang"], hang_seconds=60)
    error = fails(build(case, fake, monkeypatch, timeout=0.5))
    assert isinstance(error, TransientError)
    assert re.search("timed out|timeout", str(error), re.IGNORECASE), error
    assert_no_secret(case, error)


@pytest.mark.parametrize("kind", ["malformed", "schema_violation", "length"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bad_content_is_a_reply_that_fails_validation(
    case: Case, kind: str, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.configure(fault_rate=1.0, faults=[kind])
    reply = run(build(case, fake, monkeypatch))
    assert reply.finish_reason == ("length" if kind == "length" else "stop")
    with pytest.raises(InvalidReply):
        parse_review(PERSONA.review_model, reply.text, reply.finish_reason)


ONE_PER_BACKEND = [c for c in CASES if c.id == c.backend]


@pytest.mark.parametrize("failure", ["500", "429", "reset"])
@pytest.mark.parametrize("case", ONE_PER_BACKEND, ids=[c.id for c in ONE_PER_BACKEND])
def test_one_failed_call_is_one_request_on_the_wire(
    case: Case, failure: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Retrying is the engine's job alone: an SDK retrying too would multiply every wait
    # and every request the engine counts.
    knobs: dict[str, Any] = {"rpm": 1, "rate_window": 30} if failure == "429" else {}
    with FakeProvider(**knobs) as fake:
        backend = build(case, fake, monkeypatch)

        async def failed_call() -> tuple[BackendError, int]:
            try:
                if failure == "429":
                    await backend.generate(REQUEST)  # takes the one request of the window
                else:
                    fake.configure(fault_rate=1.0, faults=[failure])
                before = fake.stats()["requests"]
                with pytest.raises(BackendError) as info:
                    await backend.generate(REQUEST)
                return info.value, fake.stats()["requests"] - before
            finally:
                await backend.aclose()

        error, requests = asyncio.run(failed_call())
    assert requests == 1
    assert error.kind == {"500": "transient", "429": "rate_limit", "reset": "transient"}[failure]


def test_mistral_safe_prompt_goes_from_panel_toml_to_the_wire(
    fake: FakeProvider, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from panel.config import load_config, resolve_members

    monkeypatch.setenv("MISTRAL_API_KEY", "sk-m")
    path = tmp_path / "panel.toml"
    url = fake.base_url("mistral")
    path.write_text(f'[[members]]\nspec = "mistral:m"\nbase_url = "{url}"\nsafe_prompt = true\n')
    (spec,) = resolve_members([], load_config(path))
    run(create_backend(spec))
    assert last(fake)["body"]["safe_prompt"] is True
    run(create_backend(parse_member("mistral:m", {"base_url": fake.base_url("mistral")})))
    assert "safe_prompt" not in last(fake)["body"]  # unset: the request is the one sent before


# --- keys ------------------------------------------------------------------------------------


def test_a_connection_names_its_key_variable_but_never_shows_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from panel.backends._provider import Connection
    from panel.backends.options import MemberOptions

    monkeypatch.setenv("PANEL_TEST_KEY", "sk-never-shown-55")
    where = Connection.of("openai", MemberOptions(api_key_env="PANEL_TEST_KEY"), ["OPENAI_API_KEY"])
    assert (where.variable, where.require_key()) == ("PANEL_TEST_KEY", "sk-never-shown-55")
    assert "sk-never-shown-55" not in repr(where) and "PANEL_TEST_KEY" in repr(where)


@pytest.mark.parametrize(
    ("backend", "variable"),
    [
        ("openai", "OPENAI_API_KEY"),
        ("anthropic", "ANTHROPIC_API_KEY"),
        ("mistral", "MISTRAL_API_KEY"),
        ("hf", "HF_TOKEN"),
    ],
)
def test_missing_key_names_the_variable(backend: str, variable: str) -> None:
    with pytest.raises(MissingKeyError, match=variable):
        create_backend(parse_member(f"{backend}:some/model"))
    with pytest.raises(MissingKeyError, match="PANEL_TEST_KEY"):
        create_backend(parse_member(f"{backend}:some/model", {"api_key_env": "PANEL_TEST_KEY"}))
    with pytest.raises(BackendSpecError, match="environment variable"):
        create_backend(parse_member(f"{backend}:some/model", {"api_key": "sk-literal"}))


def test_key_variable_override_and_auth_token_fallback(
    fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PANEL_TEST_KEY", "sk-override-77")
    run(
        create_backend(
            parse_member("mistral:m", {"base_url": fake.base_url("mistral"), "api_key_env": "PANEL_TEST_KEY"})
        )
    )
    assert last(fake)["auth_key_sha256"] == sha("sk-override-77")
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "tok-anthropic-88")
    run(create_backend(parse_member("anthropic:c", {"base_url": fake.base_url("anthropic")})))
    assert last(fake)["auth_key_sha256"] == sha("tok-anthropic-88")


class _EchoKey(BaseHTTPRequestHandler):
    """Answers 401 and repeats the caller's key, as a careless server might."""

    status = 401

    def body(self, text: str) -> bytes:
        return json.dumps(
            {"type": "error", "error": {"type": "authentication_error", "message": text}}
        ).encode()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        key = self.headers.get("authorization", "").removeprefix("Bearer ")
        body = self.body(f"Incorrect API key provided: {key}")
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _EchoKeyAsString(_EchoKey):
    """Answers 200 with a body that is JSON but no object: a string repeating the key."""

    status = 200

    def body(self, text: str) -> bytes:
        return json.dumps(text).encode()


def _echoed(case: Case, handler: type[_EchoKey], monkeypatch: pytest.MonkeyPatch) -> BackendError:
    """The error a member meets from a server `handler` answers for."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        monkeypatch.setenv(case.key_env, case.key)
        options = {**case.options, "base_url": url + ("/v1" if case.backend == "openai" else "")}
        return fails(create_backend(parse_member(f"{case.backend}:{case.model}", options)))
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_key_echoed_by_the_server_is_masked(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    error = _echoed(case, _EchoKey, monkeypatch)
    assert isinstance(error, FatalError) and error.status == 401
    assert_no_secret(case, error, error.__cause__, error.__context__)


class _EchoKeyPadded(_EchoKey):
    """Answers 200 with a body (a JSON string, or no JSON) whose quote in an error is cut in
    the middle of the key it repeats: `pad` characters stand before it."""

    status = 200
    pad = 0
    as_json = True

    def body(self, text: str) -> bytes:
        text = "x" * self.pad + text
        return json.dumps(text).encode() if self.as_json else text.encode()


#: quotes of a body are cut at 60, 80 or 300 characters (the envelope's, the openai reply's,
#: and a body that is no JSON): each pad puts the key across one of those cuts
_CUTS = [(cut - 10 - len("Incorrect API key provided: "), as_json) for cut in (60, 80) for as_json in (True,)]
_CUTS += [(300 - 10 - len("Incorrect API key provided: "), False)]


@pytest.mark.parametrize(("pad", "as_json"), _CUTS, ids=["cut-60", "cut-80", "cut-300"])
@pytest.mark.parametrize("case", [c for c in CASES if c.backend != "hf"], ids=[i for i in IDS if i != "hf"])
def test_a_key_cut_by_the_quote_of_a_body_shows_no_part_of_it(
    case: Case, pad: int, as_json: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = type("Padded", (_EchoKeyPadded,), {"pad": pad, "as_json": as_json})
    error = _echoed(case, handler, monkeypatch)
    assert "x" * 8 in str(error)  # the body is quoted
    assert case.key[:8] not in str(error)
    assert_no_secret(case, error, error.__cause__, error.__context__)


# hf's SDK refuses a body that is no object with its own ValueError, which quotes no body.
@pytest.mark.parametrize("case", [c for c in CASES if c.backend != "hf"], ids=[i for i in IDS if i != "hf"])
def test_key_echoed_in_a_reply_that_is_no_object_is_masked(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 200 whose body is JSON but a string: the review fails with a reason quoting the body,
    # and that reason, stored with the run, must not carry the key.
    error = _echoed(case, _EchoKeyAsString, monkeypatch)
    assert "Incorrect API key provided" in str(error) and "***" in str(error)
    assert_no_secret(case, error, error.__cause__, error.__context__)


# --- Anthropic structured-output negotiation ------------------------------------------------


def test_anthropic_auto_switches_to_the_tool_once(
    fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    import anthropic
    import httpx2

    from panel.backends.anthropic import AnthropicBackend

    class RefuseNativeFormat(httpx2.AsyncHTTPTransport):
        refused = 0

        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            if "output_config" in json.loads(await request.aread()):
                RefuseNativeFormat.refused += 1
                return httpx2.Response(
                    400,
                    json={
                        "type": "error",
                        "error": {
                            "type": "invalid_request_error",
                            "message": "output_config.format: not supported for this model",
                        },
                    },
                )
            return await super().handle_async_request(request)

    async def go(structured: str, asks: int) -> list[Reply]:
        async with anthropic.AsyncAnthropic(
            api_key="sk-a",
            base_url=fake.base_url("anthropic"),
            max_retries=0,
            timeout=5,
            http_client=httpx2.AsyncClient(transport=RefuseNativeFormat()),
        ) as client:
            backend = AnthropicBackend("claude-x", client=client, structured=structured)
            return [await backend.generate(REQUEST) for _ in range(asks)]

    replies = asyncio.run(go("auto", 2))
    assert RefuseNativeFormat.refused == 1
    assert [r.meta["form"] for r in replies] == ["tools", "tools"]
    for reply in replies:
        parse_review(PERSONA.review_model, reply.text)
    assert fake.stats()["by_form"] == {"tool": 2}

    with pytest.raises(FatalError) as info:
        asyncio.run(go("native", 1))
    assert info.value.status == 400 and RefuseNativeFormat.refused == 2


# --- packaging ---------------------------------------------------------------------------------


def test_backend_modules_import_without_their_sdk() -> None:
    script = """
import sys
for sdk in ("openai", "anthropic", "mistralai", "huggingface_hub"):
    sys.modules[sdk] = None  # any import of it now fails
from panel.backends.registry import create_backend, parse_member
from panel.errors import MissingDependencyError
import panel.backends.openai, panel.backends.anthropic
import panel.backends.mistral, panel.backends.hf
for name, extra in (("openai", "openai"), ("anthropic", "anthropic"),
                    ("mistral", "mistral"), ("hf", "hf")):
    try:
        create_backend(parse_member(f"{name}:m"))
    except MissingDependencyError as exc:
        assert f"pip install 'toolpanel[{extra}]'" in str(exc), exc
    else:
        raise SystemExit(name + " did not report its missing SDK")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_openai_without_its_aiohttp_extra_names_the_package_and_the_extra() -> None:
    pytest.importorskip("openai")
    script = """
import sys
sys.modules["aiohttp"] = None  # the SDK installed without `openai[aiohttp]`
from panel.backends.registry import MemberSpec, create_backend
from panel.errors import MissingDependencyError
try:
    create_backend(MemberSpec("openai", "m", {"base_url": "http://127.0.0.1:9/v1"}))
except MissingDependencyError as exc:
    print(exc)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "'aiohttp'" in done.stdout and "pip install 'toolpanel[openai]'" in done.stdout


def test_shipped_code_never_imports_the_test_helpers() -> None:
    script = """
import asyncio, sys
import panel.cli, panel.run.plan
from panel.backends.base import Request
from panel.backends.registry import create_backend, parse_member
backend = create_backend(parse_member("fake"))
schema = {"type": "object", "properties": {"verdict": {"enum": ["ship", "skip"]}}, "required": ["verdict"]}
asyncio.run(backend.generate(Request([{"role": "user", "content": "x"}], schema, "s")))
loaded = sorted(m for m in sys.modules if m.startswith("panel.testing"))
assert not loaded, loaded
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_fake_backend_keeps_a_count_not_its_calls() -> None:
    from panel.backends.fake import FakeBackend

    backend = FakeBackend()

    async def many() -> None:
        for i in range(500):
            await backend.generate(replace(REQUEST, messages=[{"role": "user", "content": f"request {i}"}]))

    asyncio.run(many())
    assert backend.sent == 500
    kept = {
        name: value for name, value in vars(backend).items() if isinstance(value, list | dict | set | tuple)
    }
    assert kept == {}
