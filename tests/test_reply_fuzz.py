"""Any reply is data: generated JSON values and bytes of every shape, fed to each reader of a
provider's reply, raise only the documented errors, and what they read is storable.

The readers: a chat completion (`envelope.chat_answer`), an Anthropic message
(`envelope.message_answer`), a body (`envelope.decode_body`), a batch results line
(`batch.read_line` with OpenAI/Mistral's `ResultLine` and Anthropic's `_Line`, then each
adapter's `_outcome`), and a review's text (`validate.parse_review` with a persona's review
model and the rebuttal round's). For each: the only exceptions are `BackendError` (for an
envelope) or `InvalidReply` (for a review's text); any usage read holds counts from 0 to
`MAX_TOKENS` with the cached part within the input; every text read can be written to the
store (UTF-8) and every error is one line.

Examples are drawn from a fixed seed (`derandomize`), with no deadline: the run is the same
each time and never depends on the machine's speed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from panel.backends._provider import error_for_status
from panel.backends.anthropic import AnthropicBackend
from panel.backends.anthropic_batch import AnthropicBatchAPI, _Line
from panel.backends.anthropic_batch import _status as anthropic_status
from panel.backends.base import Reply, Usage
from panel.backends.batch import BatchOutcome, ResultLine, read_line
from panel.backends.envelope import MAX_TOKENS, Answer, chat_answer, decode_body, error_detail, message_answer
from panel.backends.mistral import MistralBackend
from panel.backends.mistral_batch import MistralBatchAPI
from panel.backends.mistral_batch import _status as mistral_status
from panel.backends.openai import OpenAIBackend
from panel.backends.openai_batch import OpenAIBatchAPI
from panel.backends.openai_batch import _status as openai_status
from panel.cli.progress import batch_eta, batch_line
from panel.errors import BackendError
from panel.personas import load_persona
from panel.resources import data_dir
from panel.run.rebuttal import _rebuttal_model
from panel.run.validate import InvalidReply, parse_review

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

PERSONA = load_persona(data_dir("personas") / "builder.yaml")
REVIEW_MODELS = [PERSONA.review_model, _rebuttal_model(PERSONA.verdicts)]

# --- values ----------------------------------------------------------------------------------

#: every key a reader of ours looks for, so that generated objects reach past the top level
KEYS = [
    *("id", "model", "choices", "message", "content", "role", "tool_calls", "function", "name"),
    *("arguments", "refusal", "finish_reason", "usage", "prompt_tokens", "completion_tokens"),
    *("total_tokens", "prompt_tokens_details", "cached_tokens", "type", "text", "input"),
    *("stop_reason", "input_tokens", "output_tokens", "cache_read_input_tokens"),
    *("cache_creation_input_tokens", "custom_id", "response", "status_code", "request_id"),
    *("body", "error", "result", "code", "answers", "verdict", "decision", "data"),
]
WORDS = [
    *("stop", "length", "tool_use", "tool_calls", "text", "succeeded", "errored", "expired"),
    *("canceled", "builder_review", "c-1", "batch_expired", "rate_limit_error", ""),
]
#: counts a provider could send, sensible or not
COUNTS = [0, 1, 12, MAX_TOKENS, MAX_TOKENS + 1, 10**30, -(10**30), -1, -1e9, 1e300, 12.5, 2**63, 2**64]

# Any character, lone surrogates included (JSON's `\ud800` escape reads as one).
any_text = st.lists(st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr)), max_size=12).map(
    "".join
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(COUNTS),
    st.floats(allow_nan=True, allow_infinity=True),
    any_text,
    st.sampled_from(WORDS),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), any_text), inner, max_size=6),
    ),
    max_leaves=24,
)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The field as its provider sends it, or any other value in its place."""
    return st.one_of(strategy, json_values)


counts = st.one_of(st.sampled_from(COUNTS), st.integers(), st.floats(allow_nan=True, allow_infinity=True))
texts = st.one_of(st.sampled_from(WORDS), any_text)


def _object(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """An object with any subset of these fields, each its usual shape or anything else."""
    return st.fixed_dictionaries({}, optional={k: _maybe(v) for k, v in fields.items()})


openai_usage = _object(
    prompt_tokens=counts,
    completion_tokens=counts,
    total_tokens=counts,
    prompt_tokens_details=_object(cached_tokens=counts),
)
chat_completion = _object(
    id=texts,
    model=texts,
    usage=openai_usage,
    choices=st.lists(
        _object(
            finish_reason=texts,
            message=_object(
                content=st.one_of(texts, st.lists(_object(type=texts, text=texts), max_size=3)),
                refusal=texts,
                tool_calls=st.lists(
                    _object(function=_object(name=texts, arguments=st.one_of(texts, json_values))),
                    max_size=2,
                ),
            ),
        ),
        max_size=2,
    ),
)
anthropic_message = _object(
    id=texts,
    model=texts,
    stop_reason=texts,
    content=st.lists(_object(type=texts, text=texts, name=texts, input=json_values), max_size=3),
    usage=_object(
        input_tokens=counts,
        output_tokens=counts,
        cache_read_input_tokens=counts,
        cache_creation_input_tokens=counts,
    ),
)
custom_ids = st.sampled_from(["c-1", "c-2"])
result_line = _object(
    custom_id=custom_ids,
    response=_object(
        status_code=st.sampled_from([200, 400, 408, 429, 500, 529, -1, 10**30]),
        request_id=texts,
        body=chat_completion,
    ),
    error=_object(code=texts, message=texts),
)
anthropic_line = _object(
    custom_id=custom_ids,
    result=_object(
        type=st.sampled_from(["succeeded", "errored", "expired", "canceled", "other"]),
        message=anthropic_message,
        error=_object(error=_object(type=texts, message=texts), request_id=texts),
    ),
)


def _dumps(value: Any) -> bytes:
    """JSON as a provider would write it (NaN and Infinity as Python writes them)."""
    return json.dumps(value).encode()


# --- what every reader must hold to ------------------------------------------------------------


def _storable(*texts: str | None) -> None:
    for text in texts:
        if text is not None:
            text.encode("utf-8")  # SQLite and the rendered files take UTF-8 only


def _check_usage(usage: Usage) -> None:
    for count in (usage.input_tokens, usage.output_tokens, usage.cached_tokens):
        assert isinstance(count, int) and 0 <= count <= MAX_TOKENS, usage
    assert usage.cached_tokens <= usage.input_tokens, usage
    if usage.unknown is not None:
        assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens) == (0, 0, 0)
        _storable(usage.unknown)


def _check_error(exc: BackendError) -> None:
    _storable(str(exc), exc.request_id)
    assert "\n" not in str(exc), str(exc)


def _check_answer(answer: Answer) -> None:
    _check_usage(answer.usage)
    _storable(answer.text, answer.finish_reason, answer.id, answer.model, answer.refusal, answer.tool)


def _check_reply(reply: Reply) -> None:
    _check_usage(reply.usage)
    _storable(reply.text, reply.finish_reason, reply.request_id)
    json.dumps(reply.meta)


def _check_outcome(outcome: BatchOutcome | None) -> None:
    if outcome is None:
        return
    _storable(outcome.custom_id)
    if outcome.reply is not None:
        _check_reply(outcome.reply)
    else:
        assert outcome.error is not None
        _check_error(outcome.error)


#: Anthropic's cache counts, added to its input tokens
_CACHE_COUNTS = ("cache_read_input_tokens", "cache_creation_input_tokens")


# --- envelopes ---------------------------------------------------------------------------------


@FUZZ
@given(st.one_of(chat_completion, json_values), st.booleans())
def test_any_chat_completion_is_an_answer_or_a_backend_error(data: Any, tool_call: bool) -> None:
    try:
        answer = chat_answer(data, "fuzz", tool_call=tool_call)
    except BackendError as exc:
        _check_error(exc)
    else:
        _check_answer(answer)


@FUZZ
@given(st.one_of(anthropic_message, json_values), st.sampled_from([None, "builder_review"]), st.booleans())
@example(  # each count believable, their sum (the input) not
    {"content": [], "usage": dict.fromkeys(["input_tokens", *_CACHE_COUNTS, "output_tokens"], MAX_TOKENS)},
    None,
    False,
)
def test_any_anthropic_message_is_an_answer_or_a_backend_error(
    data: Any, tool: str | None, tool_mode: bool
) -> None:
    try:
        answer = message_answer(data, "fuzz", tool=tool, tool_mode=tool_mode)
    except BackendError as exc:
        _check_error(exc)
    else:
        _check_answer(answer)


@FUZZ
@given(st.one_of(chat_completion.map(_dumps), json_values.map(_dumps), st.binary(max_size=64)))
def test_any_body_is_json_or_a_backend_error(raw: bytes) -> None:
    try:
        data = decode_body(raw, "fuzz", "req-1", ["sk-secret"])
    except BackendError as exc:
        _check_error(exc)
    else:
        _storable(*_strings(data))


@FUZZ
@given(st.one_of(st.binary(max_size=64), json_values.map(_dumps)), st.one_of(st.none(), st.integers()))
def test_any_error_body_is_a_one_line_storable_error(raw: bytes, status: int | None) -> None:
    """What a failed call's body says, read by us (`error_detail`) or quoted by an SDK's
    message (its parser leaves lone surrogates), becomes a one-line storable error."""
    _check_error(error_for_status("fuzz", status, error_detail(raw)))
    _check_error(error_for_status("fuzz", status, json.loads(_dumps(raw.decode("utf-8", "surrogateescape")))))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)


# --- batch results lines -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def adapters() -> Iterator[tuple[OpenAIBatchAPI, MistralBatchAPI, AnthropicBatchAPI]]:
    """Each provider's batch adapter on a backend that never sends (it only reads lines)."""
    url = "http://127.0.0.1:9"
    openai = OpenAIBackend("gpt-4.1-mini", api_key="k", base_url=url + "/v1")
    mistral = MistralBackend("mistral-small-latest", api_key="k", base_url=url)
    anthropic = AnthropicBackend("claude-haiku-4-5", api_key="k", base_url=url, structured="tool")
    apis = (openai.batch_api(), mistral.batch_api(), anthropic.batch_api())
    assert isinstance(apis[0], OpenAIBatchAPI) and isinstance(apis[1], MistralBatchAPI)
    assert isinstance(apis[2], AnthropicBatchAPI)
    yield apis[0], apis[1], apis[2]

    async def close() -> None:
        for backend in (openai, mistral, anthropic):
            await backend.aclose()

    asyncio.run(close())


lines = st.one_of(
    result_line.map(_dumps),
    anthropic_line.map(_dumps),
    json_values.map(_dumps),
    st.binary(max_size=64),
    # a line cut short, and bytes that are not UTF-8 inside a line that names its request
    result_line.map(lambda v: _dumps({"custom_id": "c-1", **v})[:-3]),
    st.binary(min_size=1, max_size=8).map(lambda b: b'{"custom_id": "c-1", "x": "' + b + b'"}'),
)


@FUZZ
@given(lines)
def test_any_results_line_is_an_outcome_or_none(
    adapters: tuple[OpenAIBatchAPI, MistralBatchAPI, AnthropicBatchAPI], raw: bytes
) -> None:
    openai, mistral, anthropic = adapters
    _check_outcome(openai._outcome(raw))
    read = read_line(raw, ResultLine, "mistral batch")
    _check_outcome(mistral._outcome(read) if isinstance(read, ResultLine) else read)
    line = read_line(raw, _Line, "anthropic batch")
    _check_outcome(anthropic._outcome(line) if isinstance(line, _Line) else line)


# --- batch objects ----------------------------------------------------------------------------

states = st.sampled_from(["validating", "in_progress", "finalizing", "completed", "ended", "canceling", "x"])
times = st.one_of(
    counts, st.sampled_from(["2026-01-01T00:00:00Z", "0001-01-01T00:00:00+23:59", "9999-12-31"])
)
openai_batch = _object(
    id=texts,
    status=states,
    request_counts=_object(total=counts, completed=counts, failed=counts),
    errors=_object(data=st.lists(_object(line=counts, message=texts), max_size=2)),
    metadata=st.dictionaries(texts, texts, max_size=2),
    created_at=times,
)
mistral_job = _object(
    id=texts,
    status=states,
    total_requests=counts,
    completed_requests=counts,
    failed_requests=counts,
    errors=st.lists(_object(message=texts, count=counts), max_size=2),
    metadata=st.dictionaries(texts, texts, max_size=2),
    created_at=times,
)
anthropic_batch = _object(
    id=texts,
    processing_status=states,
    request_counts=_object(
        processing=counts, succeeded=counts, errored=counts, canceled=counts, expired=counts
    ),
    cancel_initiated_at=times,
    created_at=times,
)
#: now, as the progress line reads the clock (a fixed one: nothing here depends on time)
NOW = 1.8e9


@FUZZ
@given(st.sampled_from(["openai", "mistral", "anthropic"]), st.data())
@example(
    "openai",
    {
        "id": "b",
        "status": "in_progress",
        "request_counts": {"total": 4, "completed": 1},
        "created_at": -1e308,
    },
)
@example(
    "mistral",
    {"id": "b", "status": "RUNNING", "total_requests": 10**400, "completed_requests": 1, "created_at": 1.7e9},
)
def test_any_batch_object_is_a_status_the_progress_line_shows(provider: str, data: Any) -> None:
    """A batch object of any shape is a status or a `BackendError`; its counts and time are
    ones the progress line can show (an ETA from an absurd count or time stopped the poll)."""
    read = {"openai": openai_status, "mistral": mistral_status, "anthropic": anthropic_status}[provider]
    shape = {"openai": openai_batch, "mistral": mistral_job, "anthropic": anthropic_batch}[provider]
    value = data if isinstance(data, dict) else data.draw(st.one_of(shape, json_values))
    if provider != "anthropic":  # read from the body as it came (the Anthropic SDK parses its own)
        value = decode_body(_dumps(value), provider)
    try:
        status = read(value)
    except BackendError as exc:
        _check_error(exc)
        return
    assert all(isinstance(n, int) and n >= 0 for n in status.counts.values()), status.counts
    since = status.created_at or NOW
    eta = batch_eta(status.counts.get("done", 0), status.counts.get("total", 0), NOW - since)
    line = batch_line("openai:gpt-4.1-mini", "b-run-1", status, eta)
    _storable(line, *status.metadata, *status.metadata.values())
    json.dumps({"eta_s": None if eta is None else round(eta, 1)}, allow_nan=False)  # the jsonl event


# --- a review's text -------------------------------------------------------------------------


def _review_like(answers: Any) -> str:
    return json.dumps({"answers": answers, "verdict": "ship", "decision": "keep", "reason": "x"})


review_texts = st.one_of(
    any_text,
    json_values.map(json.dumps),
    json_values.map(_review_like),
    # a looping model: brackets, digits or a string that never closes, after a valid start
    st.tuples(st.sampled_from(["[", "{", '{"a": ', "9", '"']), st.integers(1, 6000)).map(
        lambda t: '{"answers": ' + t[0] * t[1]
    ),
    st.integers(4000, 6000).map(lambda n: '{"answers": ' + "9" * n + "}"),
)


@FUZZ
@given(review_texts, st.sampled_from([None, "stop", "length"]), st.sampled_from(REVIEW_MODELS))
def test_any_reply_text_is_a_review_or_invalid(text: str, finish_reason: str | None, model: Any) -> None:
    try:
        review = parse_review(model, text, finish_reason)
    except InvalidReply as exc:
        _storable(str(exc))
    else:
        _storable(*_strings(review.model_dump(mode="json")))
