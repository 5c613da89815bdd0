"""Replies that are wrong on purpose: what the fake provider serves when told to poison.

Each poison is one way a reply from a provider, a proxy or a local server has been, or could
be, wrong. The fake provider applies them through its knobs (`state.Knobs`):

- `poison` (one of `LIVE`): the body of a successful live reply is replaced by the poisoned
  bytes, for every request whose body contains `poison_match` (every request when empty);
- `batch_poison` (one of `LINES`): the results line of each batch request whose body
  contains `poison_match` is poisoned;
- `batch_rotate`: a batch's answers come back under each other's `custom_id`s (each line
  takes the next line's id), as a provider mixing up its results would send them;
- `batch_status_poison` (one of `STATUS`): every batch object the fake shows is bent so.

Each poison writes the shape of the provider it answers for: OpenAI's chat completion
(also Mistral's and Hugging Face's) or Anthropic's message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["LINES", "LIVE", "STATUS", "live_body", "poison_line", "poison_status"]

#: deeper than any parser of ours reads, and than Python's own recursion limit
DEPTH = 1000


def _dumps(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def _usage(provider: str, body: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    """The body with one usage field set: `input` or `output` tokens, or the usage itself."""
    usage = dict(body.get("usage") or {})
    names = {"openai": ("prompt_tokens", "completion_tokens"), "anthropic": ("input_tokens", "output_tokens")}
    input_name, output_name = names["anthropic" if provider == "anthropic" else "openai"]
    if field == "usage":
        return {**body, "usage": value}
    usage[input_name if field == "input" else output_name] = value
    return {**body, "usage": usage}


def _edited(provider: str, body: dict[str, Any], change: Callable[[str], str]) -> dict[str, Any]:
    """The body with the model's text changed (a tool call's input is left as it is)."""
    if provider == "anthropic":
        content = [
            {**b, "text": change(str(b.get("text") or ""))} if b.get("type") == "text" else b
            for b in body.get("content") or []
        ]
        return {**body, "content": content}
    choices = [dict(c) for c in body.get("choices") or []]
    for choice in choices:
        message = choice.get("message") or {}
        choice["message"] = {**message, "content": change(str(message.get("content") or ""))}
    return {**body, "choices": choices}


def _text(provider: str, body: dict[str, Any], text: str) -> dict[str, Any]:
    """The body with the model's text replaced."""
    return _edited(provider, body, lambda _: text)


def _message_as_string(provider: str, body: dict[str, Any]) -> dict[str, Any]:
    if provider == "anthropic":
        return {**body, "content": "hello"}
    return {**body, "choices": [{"index": 0, "message": "hello", "finish_reason": "stop"}]}


def _details(provider: str, body: dict[str, Any]) -> dict[str, Any]:
    usage = dict(body.get("usage") or {})
    usage["cache_read_input_tokens" if provider == "anthropic" else "prompt_tokens_details"] = "x"
    return {**body, "usage": usage}


#: a looping small model's reply: an object opened, then a thousand lists
_DEEP_TEXT = '{"answers": ' + "[" * DEPTH
#: a looping small model's reply: a number longer than Python reads (4,300 digits)
_LONG_NUMBER = '{"answers": ' + "9" * 5000 + "}"


def _with_surrogate(text: str) -> str:
    return text.replace(': "', ': "\ud800', 1)


def _inflated(provider: str, body: dict[str, Any]) -> dict[str, Any]:
    """Four times the input tokens the fake counted (it counts one per 4 characters): about
    one per character of the prompt, which a prompt could take, but more than was reserved."""
    usage = body.get("usage") or {}
    counted = usage.get("input_tokens" if provider == "anthropic" else "prompt_tokens") or 0
    return _usage(provider, body, "input", 4 * int(counted))


#: poisons of a live reply: (provider, the clean body) -> the bytes sent instead
LIVE: dict[str, Callable[[str, dict[str, Any]], bytes]] = {
    "deep_content": lambda pr, b: _dumps(_text(pr, b, _DEEP_TEXT)),
    "deep_body": lambda pr, b: _dumps(b)[:-1] + b', "deep": ' + b"[" * DEPTH + b"]" * DEPTH + b"}",
    "usage_string": lambda pr, b: _dumps(_usage(pr, b, "usage", "n/a")),
    "usage_list": lambda pr, b: _dumps(_usage(pr, b, "usage", [1, 2])),
    "details_string": lambda pr, b: _dumps(_details(pr, b)),
    "message_string": lambda pr, b: _dumps(_message_as_string(pr, b)),
    "usage_huge": lambda pr, b: _dumps(_usage(pr, b, "input", 10**30)),
    "usage_negative": lambda pr, b: _dumps(_usage(pr, b, "input", -1e9)),
    "usage_float": lambda pr, b: _dumps(_usage(pr, b, "output", 12.5)),
    "usage_inflated": lambda pr, b: _dumps(_inflated(pr, b)),
    "long_number": lambda pr, b: _dumps(_text(pr, b, _LONG_NUMBER)),
    # A lone surrogate, escaped as JSON allows, in the first string of the review: valid JSON,
    # but no text UTF-8 (so SQLite, or a rendered page) can hold.
    "lone_surrogate": lambda pr, b: json.dumps(_edited(pr, b, _with_surrogate)).encode(),
    "not_json": lambda pr, b: b"<html><body>502 Bad Gateway</body></html>",
    "invalid_utf8": lambda pr, b: _dumps(_text(pr, b, "@@")).replace(b"@@", b"\xff\xfe"),
}


def live_body(kind: str, provider: str, body: dict[str, Any]) -> bytes:
    """A successful live reply's body, poisoned `kind`."""
    return LIVE[kind](provider, body)


def _line_response(line: dict[str, Any], change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """The line with its answer's body changed (OpenAI's and Mistral's `response.body`,
    Anthropic's `result.message`)."""
    if "result" in line:
        result = dict(line["result"] or {})
        if isinstance(result.get("message"), dict):
            result["message"] = change(result["message"])
        return {**line, "result": result}
    response = dict(line.get("response") or {})
    if isinstance(response.get("body"), dict):
        response["body"] = change(response["body"])
    return {**line, "response": response}


def _answer_as_string(line: dict[str, Any]) -> dict[str, Any]:
    return {**line, "result": "oops"} if "result" in line else {**line, "response": "oops"}


def _deep_line(line: dict[str, Any]) -> bytes:
    key = "result" if "result" in line else "response"
    head = _dumps({"custom_id": line["custom_id"]})[:-1]
    return head + f', "{key}": '.encode() + b"[" * DEPTH + b"]" * DEPTH + b"}"


def _cut_line(line: dict[str, Any]) -> bytes:
    data = _dumps(line)
    return data[: len(data) // 2]


def _with_usage(provider: str, field: str, value: Any) -> Callable[[dict[str, Any]], bytes]:
    return lambda line: _dumps(_line_response(line, lambda body: _usage(provider, body, field, value)))


#: poisons of a batch results line: (provider) -> (the clean line) -> the bytes written instead
LINES: dict[str, Callable[[str], Callable[[dict[str, Any]], bytes]]] = {
    "response_string": lambda pr: lambda line: _dumps(_answer_as_string(line)),
    "usage_string": lambda pr: _with_usage(pr, "usage", "n/a"),
    "usage_negative": lambda pr: _with_usage(pr, "input", -1e9),
    "usage_huge": lambda pr: _with_usage(pr, "input", 10**30),
    "usage_inflated": lambda pr: lambda line: _dumps(_line_response(line, lambda b: _inflated(pr, b))),
    # The answer names the model behind the name asked for, as Azure's deployments and a
    # proxy's aliases do: a fact about the server, not a sign the answer is another's.
    "model_renamed": lambda pr: (
        lambda line: _dumps(_line_response(line, lambda b: {**b, "model": "gpt-4o-2024-08-06"}))
    ),
    "deep_line": lambda pr: _deep_line,
    "cut_line": lambda pr: _cut_line,
}


def poison_line(kind: str, provider: str, line: dict[str, Any]) -> bytes:
    """A batch results line, poisoned `kind`."""
    return LINES[kind](provider)(line)


def _errors_list(provider: str, batch: dict[str, Any]) -> dict[str, Any]:
    if provider == "anthropic":
        return {**batch, "request_counts": "x"}
    return {**batch, "errors": ["x"]}


def _counts_negative(provider: str, batch: dict[str, Any]) -> dict[str, Any]:
    counts = batch.get("request_counts")
    if isinstance(counts, dict):
        return {**batch, "request_counts": {k: -(10**30) for k in counts}}
    return {**batch, "total_requests": -1, "completed_requests": -1}


def _state_unknown(provider: str, batch: dict[str, Any]) -> dict[str, Any]:
    return {**batch, "processing_status" if provider == "anthropic" else "status": "paused"}


#: poisons of a batch object as the fake shows it
STATUS: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    "errors_list": _errors_list,
    "counts_negative": _counts_negative,
    "state_unknown": _state_unknown,
}


def poison_status(kind: str, provider: str, batch: dict[str, Any]) -> dict[str, Any]:
    """A batch object, poisoned `kind`."""
    return STATUS[kind](provider, batch)
