"""The loopback fake provider's Batch APIs, driven by the real openai, anthropic and mistralai SDKs."""

from __future__ import annotations

import http.client
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from panel.testing.fake_provider import FakeProvider

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")
mistral_client = pytest.importorskip("mistralai.client")

SCHEMA = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["ship", "skip"]},
        "summary": {"type": "string", "minLength": 10, "maxLength": 80},
    },
    "required": ["verdict", "summary"],
    "additionalProperties": False,
}
FORMAT = {"type": "json_schema", "json_schema": {"name": "review", "schema": SCHEMA, "strict": True}}


class Clock:
    """The server's clock, moved by the test: no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> Iterator[FakeProvider]:
    with FakeProvider(clock=clock) as server:
        yield server


#: the SDK clients a test made, closed after it: an open client keeps its pooled sockets to the
#: stopped server until the collector finds it, whose warning then fails whichever test runs then
_CLIENTS: list[Any] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _CLIENTS:
        client = _CLIENTS.pop()
        if isinstance(client, mistral_client.Mistral):
            client.__exit__(None, None, None)
        else:
            client.close()


def _kept(client: Any) -> Any:
    _CLIENTS.append(client)
    return client


def oa(fake: FakeProvider, base_url: str | None = None) -> Any:
    return _kept(openai.OpenAI(base_url=base_url or fake.base_url("openai"), api_key="k", max_retries=0))


def an(fake: FakeProvider, base_url: str | None = None) -> Any:
    url = base_url or fake.base_url("anthropic")
    return _kept(anthropic.Anthropic(base_url=url, api_key="k", max_retries=0))


def mi(fake: FakeProvider, server_url: str | None = None) -> Any:
    return _kept(mistral_client.Mistral(api_key="k", server_url=server_url or fake.base_url("mistral")))


def chat_body(i: int, model: str | None = "gpt-test") -> dict[str, Any]:
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": f"Review tool number {i}."}],
        "response_format": FORMAT,
    }
    if model:
        body["model"] = model
    return body


def openai_lines(ids: list[str]) -> bytes:
    rows = [
        {"custom_id": c, "method": "POST", "url": "/v1/chat/completions", "body": chat_body(i)}
        for i, c in enumerate(ids)
    ]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def openai_batch(client: Any, ids: list[str], **metadata: str) -> Any:
    upload = client.files.create(file=("cells.jsonl", openai_lines(ids)), purpose="batch")
    return client.batches.create(
        input_file_id=upload.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata=metadata or None,
    )


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def anthropic_params(i: int) -> dict[str, Any]:
    return {
        "model": "claude-test",
        "max_tokens": 300,
        "messages": [{"role": "user", "content": f"Review tool number {i}."}],
        "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}},
    }


def control(fake: FakeProvider, path: str, body: dict[str, Any]) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    try:
        conn.request("POST", path, json.dumps(body).encode(), {"content-type": "application/json"})
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


# --- OpenAI -------------------------------------------------------------------------------


def test_openai_batch_answers_every_custom_id_once_as_the_live_endpoint_does(fake: FakeProvider) -> None:
    client = oa(fake)
    ids = [f"cell-{i}" for i in range(6)]
    batch = openai_batch(client, ids, run="r1", batch="b1")
    assert batch.status == "validating"
    assert batch.metadata == {"run": "r1", "batch": "b1"}
    done = client.batches.retrieve(batch.id)  # batch_seconds=0: ended at the first look
    assert done.status == "completed"
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (6, 6, 0)
    assert done.error_file_id is None
    lines = jsonl(client.files.content(done.output_file_id).text)
    assert sorted(line["custom_id"] for line in lines) == sorted(ids)
    for line in lines:
        assert line["error"] is None and line["response"]["status_code"] == 200
        body = line["response"]["body"]
        assert body["object"] == "chat.completion"
        i = int(line["custom_id"].split("-")[1])
        live = client.chat.completions.create(**chat_body(i))
        assert body["choices"][0]["message"]["content"] == live.choices[0].message.content
    # The input file is there to read back, and the fake counted it all.
    assert client.files.content(batch.input_file_id).content == openai_lines(ids)
    stats = fake.stats()
    assert stats["batches"]["created"] == {"openai": 1}
    assert stats["batches"]["requests"] == {"openai": 6}
    assert stats["batch_duplicates"] == 0
    assert stats["requests"] == 6  # the live calls only: batch calls are counted apart


def test_openai_status_and_counts_follow_the_server_clock(fake: FakeProvider, clock: Clock) -> None:
    fake.configure(batch_seconds=100)
    client = oa(fake)
    batch = openai_batch(client, [f"c{i}" for i in range(10)])
    seen = []
    for t in (5, 30, 60, 95, 100):
        clock.now = 1000.0 + t
        b = client.batches.retrieve(batch.id)
        seen.append((b.status, b.request_counts.completed))
    assert seen == [
        ("validating", 0),
        ("in_progress", 2),
        ("in_progress", 6),
        ("finalizing", 10),
        ("completed", 10),
    ]


def test_advance_ends_batches_without_waiting(fake: FakeProvider) -> None:
    fake.configure(batch_seconds=86_400)
    client = oa(fake)
    first, second = openai_batch(client, ["a"]), openai_batch(client, ["b"])
    answer = control(fake, "/_fake/batches/advance", {"id": first.id})
    assert answer["advanced"] == [first.id]
    assert client.batches.retrieve(first.id).status == "completed"
    assert client.batches.retrieve(second.id).status == "validating"
    fake.advance_batches(86_400 * 0.5)
    assert client.batches.retrieve(second.id).status == "in_progress"
    fake.advance_batches()
    assert client.batches.retrieve(second.id).status == "completed"


def test_openai_list_pages_newest_first_and_finds_a_batch_by_metadata(fake: FakeProvider) -> None:
    client = oa(fake)
    made = [openai_batch(client, [f"x{i}"], run=f"r{i}", key=f"k{i}") for i in range(5)]
    listed = list(client.batches.list(limit=2))  # the SDK's auto-pager follows `after`
    assert [b.id for b in listed] == [b.id for b in reversed(made)]
    found = [b for b in client.batches.list(limit=2) if (b.metadata or {}).get("run") == "r3"]
    assert [b.id for b in found] == [made[3].id]


def test_openai_cancel_keeps_what_was_done(fake: FakeProvider, clock: Clock) -> None:
    fake.configure(batch_seconds=100)
    client = oa(fake)
    batch = openai_batch(client, [f"c{i}" for i in range(10)])
    clock.now += 50
    assert client.batches.cancel(batch.id).status == "cancelling"
    clock.now += 40
    done = client.batches.retrieve(batch.id)
    assert done.status == "cancelled"
    assert done.request_counts.completed == 5
    assert len(jsonl(client.files.content(done.output_file_id).text)) == 5


def test_openai_errored_and_expired_requests_go_to_the_error_file(fake: FakeProvider) -> None:
    fake.configure(batch_error_rate=0.25, batch_expire_rate=0.25, fault_seed=7)
    client = oa(fake)
    ids = [f"c{i}" for i in range(40)]
    done = client.batches.retrieve(openai_batch(client, ids).id)
    assert done.status == "expired"
    good = jsonl(client.files.content(done.output_file_id).text)
    bad = jsonl(client.files.content(done.error_file_id).text)
    assert sorted(x["custom_id"] for x in good + bad) == sorted(ids)
    assert all(x["response"]["status_code"] == 200 for x in good)
    errored = [x for x in bad if x["response"] is not None]
    expired = [x for x in bad if x["response"] is None]
    assert errored and expired
    assert all(x["response"]["status_code"] == 500 and "error" in x["response"]["body"] for x in errored)
    assert all(x["error"]["code"] == "batch_expired" for x in expired)
    assert done.request_counts.completed == len(good)
    assert done.request_counts.failed == len(bad)


def test_openai_bad_lines_fail_the_batch_at_validation(fake: FakeProvider) -> None:
    client = oa(fake)
    good = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": chat_body(0)}
    rows = [
        json.dumps(good),
        "not json",
        json.dumps({**good, "custom_id": None}),
        json.dumps(good),
        json.dumps({**good, "custom_id": "b", "url": "/v1/embeddings"}),
    ]
    upload = client.files.create(file=("bad.jsonl", "\n".join(rows).encode()), purpose="batch")
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    failed = client.batches.retrieve(batch.id)
    assert failed.status == "failed"
    assert failed.output_file_id is None
    errors = [(e.code, e.line) for e in failed.errors.data]
    expected = [("invalid_json_line", 2), ("missing_required_parameter", 3), ("duplicate_custom_id", 4)]
    assert errors == [*expected, ("invalid_url", 5)]
    assert fake.stats()["batches"]["requests"] == {}  # a batch failed at validation submits nothing


def test_partial_output_is_cut_mid_line(fake: FakeProvider) -> None:
    fake.configure(batch_partial=True)
    client = oa(fake)
    done = client.batches.retrieve(openai_batch(client, [f"c{i}" for i in range(8)]).id)
    text = client.files.content(done.output_file_id).text
    *whole, broken = text.split("\n")
    assert whole and all(json.loads(line)["custom_id"] for line in whole)
    with pytest.raises(ValueError):
        json.loads(broken)


def test_duplicates_count_custom_ids_submitted_again(fake: FakeProvider) -> None:
    client = oa(fake)
    client.batches.retrieve(openai_batch(client, ["a", "b"]).id)
    openai_batch(client, ["b", "c"])
    an(fake).messages.batches.create(requests=[{"custom_id": "b", "params": anthropic_params(0)}])
    stats = fake.stats()
    assert stats["batch_duplicates"] == 1
    assert stats["batches"]["duplicates"] == {"openai": 1, "anthropic": 0}
    assert stats["batches"]["redundant"] == 1  # "b" had already come back good
    assert [row["phase"] for row in stats["batches"]["list"]] == ["completed", "completed", "completed"]
    fake.reset()
    assert fake.stats()["batches"]["list"] == [] and fake.stats()["batch_duplicates"] == 0


def test_fail_validation_knob(fake: FakeProvider) -> None:
    fake.configure(batch_fail_validation=True)
    assert oa(fake).batches.retrieve(openai_batch(oa(fake), ["a"]).id).status == "failed"
    with pytest.raises(anthropic.BadRequestError):
        an(fake).messages.batches.create(requests=[{"custom_id": "a", "params": anthropic_params(0)}])
    job = mi(fake).batch.jobs.create(
        endpoint="/v1/chat/completions", model="m", requests=[{"custom_id": "a", "body": chat_body(0, None)}]
    )
    assert mi(fake).batch.jobs.get(job_id=job.id).status == "FAILED"


# --- Anthropic ----------------------------------------------------------------------------


def test_anthropic_batch_results_match_live_messages(fake: FakeProvider) -> None:
    client = an(fake)
    reqs = [{"custom_id": f"cell_{i}", "params": anthropic_params(i)} for i in range(5)]
    batch = client.messages.batches.create(requests=reqs)
    assert batch.processing_status == "in_progress" and batch.results_url is None
    done = client.messages.batches.retrieve(batch.id)
    assert done.processing_status == "ended"
    assert done.request_counts.succeeded == 5 and done.request_counts.processing == 0
    assert done.results_url == f"{fake.url}/anthropic/v1/messages/batches/{batch.id}/results"
    results = list(client.messages.batches.results(batch.id))
    assert sorted(r.custom_id for r in results) == [f"cell_{i}" for i in range(5)]
    for r in results:
        assert r.result.type == "succeeded"
        live = client.messages.create(**anthropic_params(int(r.custom_id.split("_")[1])))
        assert r.result.message.content[0].text == live.content[0].text


def test_anthropic_list_pages_with_after_id(fake: FakeProvider) -> None:
    client = an(fake)
    made = [
        client.messages.batches.create(requests=[{"custom_id": "a", "params": anthropic_params(i)}])
        for i in range(5)
    ]
    page = client.messages.batches.list(limit=2)
    assert page.has_more and page.first_id == made[4].id and page.last_id == made[3].id
    assert [b.id for b in client.messages.batches.list(limit=2)] == [b.id for b in reversed(made)]


def test_anthropic_errored_expired_and_canceled_results(fake: FakeProvider, clock: Clock) -> None:
    fake.configure(batch_error_rate=0.3, batch_expire_rate=0.3, fault_seed=3)
    client = an(fake)
    reqs = [{"custom_id": f"c{i}", "params": anthropic_params(i)} for i in range(30)]
    done = client.messages.batches.retrieve(client.messages.batches.create(requests=reqs).id)
    kinds = Counter(r.result.type for r in client.messages.batches.results(done.id))
    assert set(kinds) == {"succeeded", "errored", "expired"}
    counts = done.request_counts
    assert (counts.succeeded, counts.errored, counts.expired) == (
        kinds["succeeded"],
        kinds["errored"],
        kinds["expired"],
    )
    errored = next(r for r in client.messages.batches.results(done.id) if r.result.type == "errored")
    assert errored.result.error.error.type == "api_error"

    fake.configure(batch_error_rate=0, batch_expire_rate=0, batch_seconds=100)
    batch = client.messages.batches.create(requests=reqs[:10])
    clock.now += 50
    assert client.messages.batches.cancel(batch.id).processing_status == "canceling"
    ended = client.messages.batches.retrieve(batch.id)
    assert (ended.processing_status, ended.request_counts.succeeded, ended.request_counts.canceled) == (
        "ended",
        5,
        5,
    )
    assert Counter(r.result.type for r in client.messages.batches.results(batch.id)) == {
        "succeeded": 5,
        "canceled": 5,
    }


def test_anthropic_rejects_bad_requests_at_creation(fake: FakeProvider) -> None:
    client = an(fake)
    for reqs in (
        [{"custom_id": "has:colon", "params": anthropic_params(0)}],
        [
            {"custom_id": "a", "params": anthropic_params(0)},
            {"custom_id": "a", "params": anthropic_params(1)},
        ],
    ):
        with pytest.raises(anthropic.BadRequestError):
            client.messages.batches.create(requests=reqs)


# --- Mistral ------------------------------------------------------------------------------


def test_mistral_file_job_matches_live_chat_and_is_found_by_metadata(fake: FakeProvider) -> None:
    client = mi(fake)
    rows = [{"custom_id": f"m{i}", "body": chat_body(i, None)} for i in range(4)]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    upload = client.files.upload(file={"file_name": "cells.jsonl", "content": data}, purpose="batch")
    job = client.batch.jobs.create(
        endpoint="/v1/chat/completions",
        model="mistral-small-latest",
        input_files=[upload.id],
        metadata={"run": "r9", "batch": "k1"},
    )
    assert job.status == "QUEUED" and job.metadata == {"run": "r9", "batch": "k1"}
    done = client.batch.jobs.get(job_id=job.id)
    assert done.status == "SUCCESS" and done.succeeded_requests == 4 and done.total_requests == 4
    lines = jsonl(client.files.download(file_id=done.output_file).read().decode())
    assert sorted(x["custom_id"] for x in lines) == ["m0", "m1", "m2", "m3"]
    for x in lines:
        live = client.chat.complete(model="mistral-small-latest", **chat_body(int(x["custom_id"][1:]), None))
        assert x["response"]["body"]["choices"][0]["message"]["content"] == live.choices[0].message.content
    client.batch.jobs.create(
        endpoint="/v1/chat/completions", model="m", requests=rows, metadata={"run": "other"}
    )
    found = client.batch.jobs.list(metadata={"run": "r9"})
    assert found.total == 1 and found.data[0].id == job.id
    assert client.batch.jobs.list().total == 2


def test_mistral_inline_requests_outputs_and_cancel(fake: FakeProvider, clock: Clock) -> None:
    client = mi(fake)
    rows = [{"custom_id": f"m{i}", "body": chat_body(i, None)} for i in range(4)]
    job = client.batch.jobs.create(
        endpoint="/v1/chat/completions", model="mistral-small-latest", requests=rows
    )
    assert job.input_files == []
    done = client.batch.jobs.get(job_id=job.id, inline=True)
    assert sorted(o["custom_id"] for o in done.outputs) == ["m0", "m1", "m2", "m3"]
    fake.configure(batch_seconds=10)
    job = client.batch.jobs.create(endpoint="/v1/chat/completions", model="m", requests=rows)
    clock.now += 5.5
    assert client.batch.jobs.cancel(job_id=job.id).status == "CANCELLATION_REQUESTED"
    ended = client.batch.jobs.get(job_id=job.id)
    assert (ended.status, ended.succeeded_requests) == ("CANCELLED", 2)
    assert [j.id for j in client.batch.jobs.list(status=["CANCELLED"]).data] == [job.id]


def test_mistral_errors_timeouts_and_validation(fake: FakeProvider) -> None:
    fake.configure(batch_error_rate=0.3, batch_expire_rate=0.3, fault_seed=5)
    client = mi(fake)
    rows = [{"custom_id": f"m{i}", "body": chat_body(i, None)} for i in range(30)]
    done = client.batch.jobs.get(
        job_id=client.batch.jobs.create(endpoint="/v1/chat/completions", model="m", requests=rows).id
    )
    assert done.status == "TIMEOUT_EXCEEDED"
    good = jsonl(client.files.download(file_id=done.output_file).read().decode())
    bad = jsonl(client.files.download(file_id=done.error_file).read().decode())
    assert {x["response"]["status_code"] for x in bad} == {500}
    assert (len(good), len(bad)) == (done.succeeded_requests, done.failed_requests)
    assert len(good) + len(bad) < 30  # expired requests come back in neither file

    fake.configure(batch_error_rate=0, batch_expire_rate=0)
    dup = [rows[0], rows[1], rows[0]]
    failed = client.batch.jobs.get(
        job_id=client.batch.jobs.create(endpoint="/v1/chat/completions", model="m", requests=dup).id
    )
    assert failed.status == "FAILED"
    assert [e.message for e in failed.errors] == ["line 3: The custom_id 'm0' is used more than once."]


# --- Shared behaviour ---------------------------------------------------------------------


def test_content_faults_reach_batch_lines_but_transport_faults_do_not(fake: FakeProvider) -> None:
    fake.configure(fault_rate=1.0, faults="malformed,500,reset")
    client = oa(fake)
    done = client.batches.retrieve(openai_batch(client, [f"c{i}" for i in range(5)]).id)
    lines = jsonl(client.files.content(done.output_file_id).text)
    assert [x["response"]["status_code"] for x in lines] == [200] * 5
    for x in lines:
        with pytest.raises(ValueError):
            json.loads(x["response"]["body"]["choices"][0]["message"]["content"])
    openai_batch(client, ["c0"])  # a malformed answer is worth asking again: not redundant
    assert fake.stats()["batches"]["redundant"] == 0


def test_paths_without_a_provider_prefix(fake: FakeProvider) -> None:
    client = oa(fake, fake.url + "/v1")
    assert client.batches.retrieve(openai_batch(client, ["a"]).id).status == "completed"
    ac = an(fake, fake.url)
    batch = ac.messages.batches.create(requests=[{"custom_id": "a", "params": anthropic_params(0)}])
    assert (
        ac.messages.batches.retrieve(batch.id).results_url
        == f"{fake.url}/v1/messages/batches/{batch.id}/results"
    )
    assert [r.result.type for r in ac.messages.batches.results(batch.id)] == ["succeeded"]
    mc = mi(fake, fake.url)
    upload = mc.files.upload(file={"file_name": "a.jsonl", "content": b"{}\n"}, purpose="batch")
    assert upload.sample_type == "batch_request"  # Mistral's shape, told apart by its User-Agent


def test_batch_knobs_from_the_command_line() -> None:
    from panel.testing.fake_provider import _parser

    args = vars(
        _parser().parse_args(["--batch-seconds", "5", "--batch-error-rate", "0.1", "--batch-partial"])
    )
    args.pop("port"), args.pop("verbose")
    config = FakeProvider(**args).config
    assert (config["batch_seconds"], config["batch_error_rate"], config["batch_partial"]) == (5.0, 0.1, True)
    assert config["batch_fail_validation"] is False
    with pytest.raises(ValueError, match="sum to <= 1"):
        FakeProvider(batch_error_rate=0.6, batch_expire_rate=0.6)
