"""The loopback fake provider: schema filling, each SDK against it, faults, limits, control."""

from __future__ import annotations

import hashlib
import http.client
import json
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pytest

from panel.testing.fake_provider import FAULT_KINDS, FakeProvider
from panel.testing.schema_fill import fill, violate

jsonschema = pytest.importorskip("jsonschema")

REVIEW = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["recommend", "not_recommend"]},
        "summary": {"type": "string", "minLength": 10, "maxLength": 120},
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "risks": {
            "type": "array",
            "items": {"type": "string", "maxLength": 40},
            "minItems": 1,
            "maxItems": 3,
        },
    },
    "required": ["verdict", "summary", "score", "risks"],
    "additionalProperties": False,
}
MESSAGES = [{"role": "user", "content": "Review the tool described below."}]


def valid(instance: Any, schema: dict[str, Any]) -> bool:
    return bool(jsonschema.Draft202012Validator(schema).is_valid(instance))


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as server:
        yield server


def post(
    fake: FakeProvider, path: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    """One request over a fresh connection, closed before returning."""
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    try:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.request("POST", path, data, {"content-type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(raw)
    finally:
        conn.close()


def get(fake: FakeProvider, path: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    try:
        conn.request("GET", path)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def openai_body(schema: dict[str, Any] = REVIEW, content: str = "Review it.") -> dict[str, Any]:
    return {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": content}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "review", "schema": schema, "strict": True},
        },
    }


# --- schema_fill ----------------------------------------------------------------------

SCHEMAS: list[dict[str, Any]] = [
    REVIEW,
    {"type": "string", "minLength": 50, "maxLength": 60},
    {"type": "string", "maxLength": 3},
    {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 3},
    {"type": "integer", "minimum": -20, "maximum": -10, "multipleOf": 5},
    {"type": "number", "minimum": 0.5, "maximum": 0.75},
    {"type": "boolean"},
    {"const": {"fixed": [1, 2]}},
    {"enum": ["a", 2, None]},
    {"type": ["string", "null"], "maxLength": 20},
    {"anyOf": [{"type": "integer"}, {"type": "null"}]},
    {
        "oneOf": [
            {"type": "object", "properties": {"kind": {"const": "a"}}, "required": ["kind"]},
            {"type": "object", "properties": {"kind": {"const": "b"}}, "required": ["kind"]},
        ]
    },
    {"type": "array", "items": {"enum": ["x", "y", "z"]}, "minItems": 2, "maxItems": 3, "uniqueItems": True},
    {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "minItems": 2},
    {"type": "object", "additionalProperties": {"type": "integer", "maximum": 3}},
    {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "minProperties": 2},
    {
        "$defs": {
            "Point": {
                "type": "object",
                "properties": {"x": {"type": "number"}},
                "required": ["x"],
                "additionalProperties": False,
            }
        },
        "type": "object",
        "properties": {"points": {"type": "array", "items": {"$ref": "#/$defs/Point"}, "minItems": 1}},
        "required": ["points"],
    },
    {
        "definitions": {
            "Node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/definitions/Node"}},
                },
                "required": ["name"],
            }
        },
        "$ref": "#/definitions/Node",
    },
    {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
            {"properties": {"b": {"type": "boolean"}}, "required": ["b"]},
        ]
    },
    {
        "type": "object",
        "properties": {
            "when": {"type": "string", "format": "date-time"},
            "id": {"type": "string", "format": "uuid"},
        },
        "required": ["when", "id"],
    },
    {},
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=range(len(SCHEMAS)))
def test_fill_is_valid_for_many_seeds(schema: dict[str, Any]) -> None:
    for seed in range(25):
        value = fill(schema, seed)
        assert valid(value, schema), (seed, value)


def test_fill_is_deterministic_and_varied() -> None:
    assert fill(REVIEW, "abc") == fill(REVIEW, "abc")
    assert fill(REVIEW, 7) == fill(REVIEW, "7")
    assert len({json.dumps(fill(REVIEW, s)) for s in range(20)}) > 15


def test_fill_strings_are_readable_sentences() -> None:
    text = fill({"type": "string"}, 3)
    assert text[0].isupper() and text.endswith(".") and len(text.split()) >= 6
    assert all(word.isalpha() for word in text.rstrip(".").split())


def test_verdict_splits_about_evenly_across_seeds() -> None:
    counts = Counter(fill(REVIEW, f"persona-{i}")["verdict"] for i in range(400))
    assert set(counts) == {"recommend", "not_recommend"}
    assert 140 < counts["recommend"] < 260


def test_fill_follows_constraints_moved_into_descriptions() -> None:
    # The Anthropic SDK's transform_schema moves unsupported keywords there.
    hinted = {
        "type": "object",
        "additionalProperties": False,
        "required": ["n", "s"],
        "properties": {
            "n": {"type": "integer", "description": "A score\n\n{maximum: 5, minimum: 1}"},
            "s": {"type": "string", "description": "{maxLength: 12, default: None}"},
        },
    }
    strict = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 1, "maximum": 5},
            "s": {"type": "string", "maxLength": 12},
        },
    }
    for seed in range(30):
        assert valid(fill(hinted, seed), strict)


@pytest.mark.parametrize(
    "schema",
    [REVIEW, SCHEMAS[16], {"type": "integer"}, {"type": "object", "properties": {"n": {"type": "integer"}}}],
)
def test_violate_breaks_validation(schema: dict[str, Any]) -> None:
    for seed in range(10):
        value = fill(schema, seed)
        if schema.get("type") == "object" and not value:
            continue  # nothing present to damage when every property is optional
        assert not valid(violate(schema, value, seed), schema)


# --- each SDK, unchanged, pointed at the fake ---------------------------------------------


def last(fake: FakeProvider) -> dict[str, Any]:
    record: dict[str, Any] = fake.stats()["recent"][-1]
    return record


def test_openai_json_schema_and_headers(fake: FakeProvider) -> None:
    openai = pytest.importorskip("openai")
    with openai.OpenAI(base_url=fake.base_url("openai"), api_key="sk-o", max_retries=0, timeout=5) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-test",
            messages=MESSAGES,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "review", "schema": REVIEW, "strict": True},
            },
        )
        completion = raw.parse()
    assert valid(json.loads(completion.choices[0].message.content), REVIEW)
    assert completion.usage.prompt_tokens == -(-len(MESSAGES[0]["content"]) // 4)
    assert completion.usage.prompt_tokens_details.cached_tokens == 0
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["x-ratelimit-remaining-requests"].isdigit()
    record = last(fake)
    assert (record["provider"], record["form"]) == ("openai", "json_schema")
    assert record["schema"] == REVIEW
    assert record["auth_scheme"] == "bearer"
    assert record["auth_key_sha256"] == hashlib.sha256(b"sk-o").hexdigest()
    assert "sk-o" not in json.dumps(fake.stats())


def test_openai_forced_tool(fake: FakeProvider) -> None:
    openai = pytest.importorskip("openai")
    with openai.OpenAI(base_url=fake.base_url("openai"), api_key="k", max_retries=0, timeout=5) as client:
        completion = client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            tools=[{"type": "function", "function": {"name": "submit_review", "parameters": REVIEW}}],
            tool_choice={"type": "function", "function": {"name": "submit_review"}},
        )
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "submit_review"
    assert valid(json.loads(call.function.arguments), REVIEW)
    assert last(fake)["form"] == "tool"


def test_anthropic_output_config_and_forced_tool(fake: FakeProvider) -> None:
    anthropic = pytest.importorskip("anthropic")
    with anthropic.Anthropic(
        base_url=fake.base_url("anthropic"), api_key="sk-a", max_retries=0, timeout=5
    ) as client:
        raw = client.messages.with_raw_response.create(
            model="claude-test",
            max_tokens=500,
            messages=MESSAGES,
            extra_body={"output_config": {"format": {"type": "json_schema", "schema": REVIEW}}},
        )
        message = raw.parse()
        assert raw.headers["request-id"].startswith("req_")
        reset = raw.headers["anthropic-ratelimit-requests-reset"]
        datetime.strptime(reset, "%Y-%m-%dT%H:%M:%SZ")
        assert valid(json.loads(message.content[0].text), REVIEW)
        assert last(fake)["form"] == "output_config"

        message = client.messages.create(
            model="claude-test",
            max_tokens=500,
            messages=MESSAGES,
            tools=[{"name": "submit_review", "input_schema": REVIEW}],
            tool_choice={"type": "tool", "name": "submit_review"},
        )
    block = message.content[0]
    assert (block.type, block.name) == ("tool_use", "submit_review")
    assert message.stop_reason == "tool_use"
    assert valid(block.input, REVIEW)
    record = last(fake)
    assert (record["provider"], record["form"]) == ("anthropic", "tool")
    assert record["auth_key_sha256"] == hashlib.sha256(b"sk-a").hexdigest()


def test_anthropic_accepts_x_api_key(fake: FakeProvider) -> None:
    body = {"model": "m", "max_tokens": 10, "messages": MESSAGES}
    status, _, reply = post(fake, "/v1/messages", body, {"x-api-key": "sk-x"})
    assert status == 200 and reply["content"][0]["type"] == "text"
    assert last(fake)["auth_scheme"] == "x-api-key"
    assert last(fake)["auth_key_sha256"] == hashlib.sha256(b"sk-x").hexdigest()


def test_mistral_response_format(fake: FakeProvider) -> None:
    pytest.importorskip("mistralai")
    from mistralai.client import Mistral

    with Mistral(api_key="sk-m", server_url=fake.base_url("mistral"), timeout_ms=5000) as client:
        response = client.chat.complete(
            model="mistral-test",
            messages=MESSAGES,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "review", "schema": REVIEW, "strict": True},
            },
        )
    assert response.choices[0].finish_reason == "stop"
    assert valid(json.loads(response.choices[0].message.content), REVIEW)
    assert last(fake)["provider"] == "mistral"


def test_hf_chat_completion_sends_tgi_grammar(fake: FakeProvider) -> None:
    hub = pytest.importorskip("huggingface_hub")
    with hub.InferenceClient(base_url=fake.base_url("hf"), api_key="hf_k", timeout=5) as client:
        output = client.chat_completion(
            MESSAGES,
            response_format={"type": "json_schema", "json_schema": {"name": "review", "schema": REVIEW}},
        )
    assert valid(json.loads(output.choices[0].message.content), REVIEW)
    record = last(fake)
    assert (record["provider"], record["form"]) == ("hf", "tgi_grammar")
    assert record["body"]["response_format"] == {"type": "json_object", "value": REVIEW}


def test_sdk_parse_helpers_with_a_pydantic_model(fake: FakeProvider) -> None:
    openai = pytest.importorskip("openai")
    anthropic = pytest.importorskip("anthropic")
    pytest.importorskip("mistralai")
    from mistralai.client import Mistral
    from pydantic import BaseModel, Field

    class Risk(BaseModel):
        text: str = Field(min_length=3, max_length=40)
        severity: Literal["low", "high"]

    class Review(BaseModel):
        verdict: Literal["recommend", "not_recommend"]
        score: int = Field(ge=1, le=5)
        risks: list[Risk] = Field(min_length=1, max_length=3)
        note: str | None = None

    with openai.OpenAI(base_url=fake.base_url("openai"), api_key="k", max_retries=0, timeout=5) as oa:
        parsed = oa.chat.completions.parse(model="m", messages=MESSAGES, response_format=Review)
        assert isinstance(parsed.choices[0].message.parsed, Review)
    with anthropic.Anthropic(
        base_url=fake.base_url("anthropic"), api_key="k", max_retries=0, timeout=5
    ) as an:
        message = an.messages.parse(model="m", max_tokens=500, messages=MESSAGES, output_format=Review)
        assert isinstance(message.parsed_output, Review)
    with Mistral(api_key="k", server_url=fake.base_url("mistral"), timeout_ms=5000) as mi:
        response = mi.chat.parse(model="m", messages=MESSAGES, response_format=Review)
        assert isinstance(response.choices[0].message.parsed, Review)
    assert fake.stats()["by_form"] == {"json_schema": 2, "output_config": 1}


def test_sdks_on_shared_paths_are_told_apart_by_user_agent(fake: FakeProvider) -> None:
    openai = pytest.importorskip("openai")
    pytest.importorskip("mistralai")
    hub = pytest.importorskip("huggingface_hub")
    from mistralai.client import Mistral

    with openai.OpenAI(base_url=fake.url + "/v1", api_key="k", max_retries=0, timeout=5) as client:
        client.chat.completions.create(model="m", messages=MESSAGES)
    with Mistral(api_key="k", server_url=fake.url, timeout_ms=5000) as mistral:
        mistral.chat.complete(model="m", messages=MESSAGES)
    with hub.InferenceClient(base_url=fake.url, api_key="k", timeout=5) as hf:
        reply = hf.chat_completion(MESSAGES)
    assert reply.choices[0].message.content
    assert fake.stats()["by_provider"] == {"openai": 1, "mistral": 1, "hf": 1}
    assert {r["path"] for r in fake.stats()["recent"]} == {"/v1/chat/completions"}


# --- determinism of replies ---------------------------------------------------------------


def test_identical_requests_identical_replies_and_duplicates_counted(fake: FakeProvider) -> None:
    first = post(fake, "/v1/chat/completions", openai_body())[2]
    second = post(fake, "/v1/chat/completions", openai_body())[2]
    assert first["choices"][0]["message"] == second["choices"][0]["message"]
    post(fake, "/v1/chat/completions", openai_body(content="Something else."))
    stats = fake.stats()
    assert stats["duplicates"] == 1
    assert sorted(stats["body_hashes"].values()) == [1, 2]


def test_verdicts_vary_across_personas(fake: FakeProvider) -> None:
    verdicts = set()
    for persona in range(12):
        body = openai_body(content=f"You are persona {persona}")
        reply = post(fake, "/v1/chat/completions", body)
        verdicts.add(json.loads(reply[2]["choices"][0]["message"]["content"])["verdict"])
    assert verdicts == {"recommend", "not_recommend"}


# --- faults -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "path", "status"),
    [
        ("500", "/openai/v1/chat/completions", 500),
        ("503", "/mistral/v1/chat/completions", 503),
        ("529", "/openai/v1/chat/completions", 503),
        ("529", "/v1/messages", 529),
    ],
)
def test_status_faults(fake: FakeProvider, kind: str, path: str, status: int) -> None:
    fake.configure(fault_rate=1, faults=[kind])
    body = {**openai_body(), "max_tokens": 100}
    code, headers, reply = post(fake, path, body)
    assert code == status
    if path == "/v1/messages":
        assert reply["type"] == "error" and reply["error"]["type"] == "overloaded_error"
        assert headers["request-id"].startswith("req_")
    stats = fake.stats()
    assert stats["faults"] == {kind: 1} and stats["by_status"] == {str(status): 1}


def test_anthropic_sdk_sees_overloaded(fake: FakeProvider) -> None:
    anthropic = pytest.importorskip("anthropic")
    fake.configure(fault_rate=1, faults="529")
    with (
        anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0, timeout=5) as client,
        pytest.raises(anthropic.OverloadedError),
    ):
        client.messages.create(model="m", max_tokens=10, messages=MESSAGES)


def test_reset_and_hang_faults_fail_the_client(fake: FakeProvider) -> None:
    openai = pytest.importorskip("openai")
    with openai.OpenAI(base_url=fake.base_url("openai"), api_key="k", max_retries=0, timeout=0.5) as client:
        fake.configure(fault_rate=1, faults=["reset"])
        with pytest.raises(openai.APIConnectionError):
            client.chat.completions.create(model="m", messages=MESSAGES)
        fake.configure(faults=["hang"], hang_seconds=10)
        # The client's own 0.5 s timeout ends the call; the server meant to hang for 10 s.
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model="m", messages=MESSAGES)
    assert fake.stats()["faults"] == {"reset": 1, "hang": 1}
    assert fake.stats()["delays"] == [10]


def test_hang_answers_after_hang_seconds(fake: FakeProvider) -> None:
    fake.configure(fault_rate=1, faults=["hang"], hang_seconds=0.3)
    assert post(fake, "/v1/chat/completions", openai_body())[0] == 200
    assert fake.stats()["delays"] == [0.3] and fake.stats()["faults"] == {"hang": 1}


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_content_faults(fake: FakeProvider, path: str) -> None:
    body = {**openai_body(), "max_tokens": 100}
    if path == "/v1/messages":
        body = {
            "model": "m",
            "max_tokens": 100,
            "messages": MESSAGES,
            "output_config": {"format": {"type": "json_schema", "schema": REVIEW}},
        }

    def content(reply: dict[str, Any]) -> tuple[str, str]:
        if path == "/v1/messages":
            return reply["content"][0]["text"], reply["stop_reason"]
        choice = reply["choices"][0]
        return choice["message"]["content"], choice["finish_reason"]

    fake.configure(fault_rate=1, faults=["malformed"])
    text, _ = content(post(fake, path, body)[2])
    with pytest.raises(ValueError):
        json.loads(text)
    fake.configure(faults=["schema_violation"])
    text, _ = content(post(fake, path, body)[2])
    assert not valid(json.loads(text), REVIEW)
    fake.configure(faults=["length"])
    text, finish = content(post(fake, path, body)[2])
    assert finish in ("length", "max_tokens")
    with pytest.raises(ValueError):
        json.loads(text)
    stats = fake.stats()
    assert stats["faults"] == {"malformed": 1, "schema_violation": 1, "length": 1}
    assert stats["by_status"] == {"200": 3}


def test_anthropic_tool_content_faults(fake: FakeProvider) -> None:
    body = {
        "model": "m",
        "max_tokens": 100,
        "messages": MESSAGES,
        "tools": [{"name": "t", "input_schema": REVIEW}],
        "tool_choice": {"type": "tool", "name": "t"},
    }
    fake.configure(fault_rate=1, faults=["schema_violation"])
    block = post(fake, "/v1/messages", body)[2]["content"][0]
    assert block["type"] == "tool_use" and not valid(block["input"], REVIEW)
    fake.configure(faults=["length"])
    reply = post(fake, "/v1/messages", body)[2]
    assert reply["stop_reason"] == "max_tokens"


def test_faults_are_seeded_and_a_retry_can_succeed() -> None:
    def outcomes() -> list[int]:
        with FakeProvider(fault_rate=0.5, faults=["500"], fault_seed=42) as server:
            return [post(server, "/v1/chat/completions", openai_body())[0] for _ in range(16)]

    first = outcomes()
    assert first == outcomes()
    assert set(first) == {200, 500}


def test_every_fault_kind_is_drawn(fake: FakeProvider) -> None:
    fake.configure(fault_rate=1, faults=[k for k in FAULT_KINDS if k not in ("hang", "reset")])
    for i in range(40):
        post(fake, "/v1/chat/completions", openai_body(content=f"r{i}"))
    assert set(fake.stats()["faults"]) == set(FAULT_KINDS) - {"hang", "reset"}


# --- rate limits --------------------------------------------------------------------------


def test_rpm_limit_answers_429_with_truthful_headers(fake: FakeProvider) -> None:
    fake.configure(rpm=2)
    path = "/v1/chat/completions"
    remaining = [
        post(fake, path, openai_body(content=str(i)))[1]["x-ratelimit-remaining-requests"] for i in range(2)
    ]
    assert remaining == ["1", "0"]
    status, headers, body = post(fake, path, openai_body(content="third"))
    assert status == 429 and body["error"]["code"] == "rate_limit_exceeded"
    assert headers["x-ratelimit-limit-requests"] == "2"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert int(headers["retry-after"]) >= 1 and int(headers["retry-after-ms"]) > 0
    stats = fake.stats()
    assert stats["rate_limited"] == 1 and stats["over_limit_served"] == 0


def test_anthropic_429_shape(fake: FakeProvider) -> None:
    fake.configure(rpm=1)
    body = {"model": "m", "max_tokens": 10, "messages": MESSAGES}
    assert post(fake, "/v1/messages", body)[0] == 200
    status, headers, reply = post(fake, "/v1/messages", body)
    assert status == 429 and reply["error"]["type"] == "rate_limit_error"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert int(headers["retry-after"]) >= 1


def test_tpm_limit_and_short_window_recovers() -> None:
    now = [1000.0]  # the provider's clock: moved on by hand, never slept through
    with FakeProvider(clock=lambda: now[0], tpm=100, rate_window=0.5) as fake:
        first = post(fake, "/v1/chat/completions", openai_body())
        assert first[0] == 200
        used = first[2]["usage"]["total_tokens"]
        assert int(first[1]["x-ratelimit-remaining-tokens"]) == 100 - used
        assert post(fake, "/v1/chat/completions", openai_body(content="more"))[0] == 429
        now[0] += 0.4  # still inside the window
        assert post(fake, "/v1/chat/completions", openai_body(content="soon"))[0] == 429
        now[0] += 0.2  # the first request has left the window
        assert post(fake, "/v1/chat/completions", openai_body(content="later"))[0] == 200
        assert fake.stats()["over_limit_served"] == 0


def test_concurrent_clients_and_limit_holds(fake: FakeProvider) -> None:
    fake.configure(rpm=10, latency=0.5)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        status = post(fake, "/v1/chat/completions", openai_body(content=f"c{i}"))[0]
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(statuses) == {200: 10, 429: 30}
    stats = fake.stats()
    assert stats["in_flight_max"] >= 10 and stats["over_limit_served"] == 0
    assert stats["in_flight"] == 0


def test_latency(fake: FakeProvider) -> None:
    fake.configure(latency=0.2, latency_jitter=0.1)
    post(fake, "/v1/chat/completions", openai_body())
    post(fake, "/v1/chat/completions", openai_body(content="again"))
    delays = fake.stats()["delays"]
    assert len(delays) == 2 and all(0.2 <= d <= 0.3 for d in delays) and delays[0] != delays[1]


# --- control, errors, CLI -----------------------------------------------------------------


def test_control_endpoints(fake: FakeProvider) -> None:
    post(fake, "/v1/chat/completions", openai_body())
    assert get(fake, "/_fake/stats")["requests"] == 1
    status, _, config = post(fake, "/_fake/config", {"rpm": 5, "faults": "500,reset"})
    assert status == 200 and config["rpm"] == 5 and config["faults"] == ["500", "reset"]
    assert fake.config["rpm"] == 5
    assert post(fake, "/_fake/config", {"nope": 1})[0] == 400
    assert post(fake, "/_fake/config", {"fault_rate": 2})[0] == 400
    assert post(fake, "/_fake/reset", {})[0] == 200
    stats = get(fake, "/_fake/stats")
    assert stats["requests"] == 0 and stats["recent"] == [] and stats["config"]["rpm"] == 5
    fake.reset()
    assert fake.stats()["body_hashes"] == {}


def test_bad_requests(fake: FakeProvider) -> None:
    assert post(fake, "/v1/chat/completions", b"{not json")[0] == 400
    assert post(fake, "/v1/chat/completions", {**openai_body(), "stream": True})[0] == 400
    status, _, body = post(fake, "/v2/nowhere", openai_body())
    assert status == 404 and "error" in body
    assert get(fake, "/nowhere")["error"]
    bad_ref = openai_body(schema={"$ref": "#/$defs/Missing"})
    status, _, body = post(fake, "/v1/chat/completions", bad_ref)
    assert status == 400 and body["error"]["message"]
    assert fake.stats()["by_status"] == {"400": 3, "404": 1}


def test_stop_is_idempotent_and_port_is_loopback() -> None:
    server = FakeProvider().start()
    assert server.url == f"http://127.0.0.1:{server.port}"
    server.stop()
    server.stop()


def test_cli_serves_until_sigterm() -> None:
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "panel.testing.fake_provider",
            "--port",
            "0",
            "--rpm",
            "7",
            "--faults",
            "500,503",
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/_fake/config")
            config = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        assert config["rpm"] == 7 and config["faults"] == ["500", "503"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
