"""Provider replies as data: tolerant typed models of the envelopes a review comes in.

A provider's reply (or a proxy's, or a local server's) can be wrong in any way: `usage` as a
string, a message that is a bare string, a negative or astronomical token count. Each
envelope is read through a pydantic model in which every field is optional and a field of
the wrong type reads as absent, so reading never raises. What a review cannot do without (a
choice, a message, some content) is then checked by `chat_answer` / `message_answer`, which
raise `FatalError` naming what was missing: one failed review with its reason, never our
bug (exit 70) and never the run.

Token counts are kept only when they are whole numbers from 0 to `MAX_TOKENS`; anything else
makes the reply's usage unknown, with the reason (`Usage.unknown`), and the engine then
charges the request's reserved worst case (`panel.run.usage`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

from .. import jsontext
from ..errors import FatalError, TransientError, shown
from ..text import storable
from ._provider import finish_reason, ratelimit_state, scrub
from .base import Reply, Usage
from .structured import tool_arguments

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_TOKENS",
    "Answer",
    "ChatCompletion",
    "Envelope",
    "Lenient",
    "Message",
    "Text",
    "chat_answer",
    "decode_body",
    "error_detail",
    "message_answer",
    "usage_of",
]

#: more tokens than any model's context holds; a count above it is not believed
MAX_TOKENS = 10**9
#: how much of a provider's free text (ids, model name, refusal) a reply keeps
_META_CHARS = 300
#: far more than one reply to one review request can need (a batch's results file is read
#: a line at a time, each line within this too)
MAX_BODY_BYTES = 16 * 1024 * 1024
#: how much of a body that is not JSON an error quotes
_QUOTED = 300


def decode_body(
    raw: bytes, backend: str, request_id: str | None = None, secrets: Iterable[str | None] = ()
) -> Any:
    """A reply body as JSON, within bounds.

    A body that is not JSON (a proxy's page, a body cut off) is a `TransientError`: the next
    try may get the real reply. One too deep or too large is a `FatalError` with the reason.
    A key the body echoes is masked in the quote.
    """
    try:
        return jsontext.loads(raw, max_chars=MAX_BODY_BYTES)
    except jsontext.JSONRefused as exc:
        raise FatalError(f"{backend}: the reply was not read: {exc}", request_id=request_id) from None
    except ValueError:
        quoted = scrub(raw[:_QUOTED].decode("utf-8", "replace"), secrets)
        raise TransientError(
            f"{backend}: the reply was not JSON: {quoted!r}", request_id=request_id
        ) from None


def error_detail(body: bytes) -> str:
    """What an error body says: its `error.message` (OpenAI's shape), else the body itself.

    Servers that only copy the API answer in their own shapes (FastAPI's `detail` list, a
    bare string, an HTML page from a proxy); the whole text keeps the words that tell a
    refused structured-output form from any other failure.
    """
    text = body.decode("utf-8", "replace").strip()
    try:
        data = jsontext.loads(text)
    except ValueError:
        return text
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        code = error.get("code") or error.get("type")
        return f"{error['message']} ({code})" if isinstance(code, str) and code else error["message"]
    if isinstance(error, str):
        return error
    return text


def _absent_if_wrong(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError:
        return None


def _storable(value: str | None) -> str | None:
    return None if value is None else storable(value)


#: a field that reads as None when the provider sent something of another type
Lenient = WrapValidator(_absent_if_wrong)
#: a provider's string, storable (`panel.text.storable`): an SDK's parser leaves lone surrogates
Text = Annotated[str | None, Lenient, AfterValidator(_storable)]


class Envelope(BaseModel):
    """A provider's object: fields it adds are ignored, fields of another type read as absent
    where they are marked `Lenient`."""

    model_config = ConfigDict(extra="ignore", frozen=True)


# --- OpenAI's chat completion (also Mistral's, Hugging Face's and the llama.cpp servers') -----


class _Function(Envelope):
    name: Text = None
    # OpenAI sends the arguments as JSON text, TGI as an object.
    arguments: Annotated[str | dict[str, Any] | None, Lenient] = None


class _ToolCall(Envelope):
    function: Annotated[_Function | None, Lenient] = None


class _Part(Envelope):
    """One part of a content list (`[{"type": "text", "text": ...}]`), as some servers send."""

    type: Text = None
    text: Text = None


class _ChatMessage(Envelope):
    content: Annotated[str | list[Annotated[_Part | None, Lenient]] | None, Lenient] = None
    refusal: Text = None
    tool_calls: Annotated[list[Annotated[_ToolCall | None, Lenient]] | None, Lenient] = None


class _Choice(Envelope):
    message: Annotated[_ChatMessage | None, Lenient] = None
    finish_reason: Text = None


class ChatCompletion(Envelope):
    """A chat completion as OpenAI shapes it, read leniently."""

    id: Text = None
    model: Text = None
    choices: Annotated[list[Annotated[_Choice | None, Lenient]] | None, Lenient] = None
    usage: Any = None


# --- Anthropic's message ---------------------------------------------------------------------


class _Block(Envelope):
    type: Text = None
    text: Text = None
    name: Text = None
    input: Any = None


class Message(Envelope):
    """An Anthropic message, read leniently."""

    id: Text = None
    model: Text = None
    content: Annotated[list[Annotated[_Block | None, Lenient]] | None, Lenient] = None
    stop_reason: Text = None
    usage: Any = None


# --- what a backend takes from either --------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What a review needs from an envelope: the text (or the tool call's input), how it
    ended, the usage, and the provider's facts worth keeping."""

    text: str
    finish_reason: str | None
    usage: Usage
    id: str | None
    model: str | None
    refusal: str | None = None
    #: the name of the tool the model called, in a tool form
    tool: str | None = None

    def reply(
        self,
        meta: Mapping[str, Any],
        *,
        latency: float,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """This answer as a `Reply`: the request id the provider's headers gave, else the
        body's; the model, a refusal, the tool called and the rate-limit state kept in the
        meta beside the backend's own facts."""
        kept: dict[str, Any] = {"model": self.model, **meta}
        if self.refusal:
            kept["refusal"] = self.refusal
        if self.tool is not None:
            kept["tool"] = self.tool  # the tool the model called: its review's schema name
        ratelimit = ratelimit_state(headers)
        if ratelimit:
            kept["ratelimit"] = ratelimit
        return Reply(
            text=self.text,
            usage=self.usage,
            latency_s=latency,
            finish_reason=finish_reason(self.finish_reason),
            request_id=request_id or self.id or None,
            meta=kept,
        )


def _read(model: type[Envelope], data: Any, what: str, backend: str) -> Any:
    if isinstance(data, BaseModel):  # an SDK's parsed object: read it as the wire had it
        data = data.model_dump(mode="json", warnings=False)
    if not isinstance(data, Mapping):
        raise FatalError(f"{backend}: the reply is not {what} but {shown(data, 60)}")
    return model.model_validate(data)


def chat_answer(data: Any, backend: str, *, tool_call: bool = False) -> Answer:
    """A chat completion (a dict, or an SDK's parsed object) as an `Answer`.

    With `tool_call`, the text is the first tool call's arguments when there is one. Raises
    `FatalError` naming the part the reply lacks.
    """
    completion: ChatCompletion = _read(ChatCompletion, data, "a chat completion", backend)
    choices = completion.choices
    if not choices:
        raise FatalError(f"{backend}: the reply had no choices", request_id=_clip(completion.id))
    choice = choices[0]
    if choice is None or choice.message is None:
        raise FatalError(
            f"{backend}: the reply's first choice carries no message", request_id=_clip(completion.id)
        )
    message = choice.message
    text, tool = _content_text(message.content), None
    calls = [c for c in message.tool_calls or [] if c is not None and c.function is not None]
    if tool_call and calls:
        function = calls[0].function
        assert function is not None
        text = tool_arguments(function.arguments or {})
        tool = function.name
    usage = usage_of(
        _usage_object(completion.usage),
        input_key="prompt_tokens",
        output_key="completion_tokens",
        cached=_cached_tokens(completion.usage),
    )
    return Answer(
        text=storable(text),
        finish_reason=_clip(choice.finish_reason),
        usage=usage,
        id=_clip(completion.id),
        model=_clip(completion.model),
        refusal=_clip(message.refusal),
        tool=tool,
    )


def message_answer(data: Any, backend: str, *, tool: str | None, tool_mode: bool) -> Answer:
    """An Anthropic message as an `Answer`: in the tool mode the input of the call to `tool`
    (any tool when `tool` is None), else the text blocks joined."""
    message: Message = _read(Message, data, "a message", backend)
    blocks = [b for b in message.content or [] if b is not None]
    if message.content is None:
        raise FatalError(f"{backend}: the reply carries no content", request_id=_clip(message.id))
    text, called = "", None
    if tool_mode:
        for block in blocks:
            if block.type == "tool_use" and tool in (None, block.name):
                text, called = json.dumps(block.input, ensure_ascii=False), block.name
                break
    else:
        text = "".join(b.text or "" for b in blocks if b.type == "text")
    raw = _usage_object(message.usage)
    # Anthropic counts cached and freshly written prompt tokens apart from the rest; the
    # total is what OpenAI calls prompt tokens, and cached_tokens its cached part.
    part = raw if isinstance(raw, Mapping) else {}
    read = ("usage.cache_read_input_tokens", part.get("cache_read_input_tokens") or 0)
    written = ("usage.cache_creation_input_tokens", part.get("cache_creation_input_tokens") or 0)
    usage = usage_of(
        raw, input_key="input_tokens", output_key="output_tokens", cached=read, added=(read, written)
    )
    return Answer(
        text=storable(text),
        finish_reason=_clip(message.stop_reason),
        usage=usage,
        id=_clip(message.id),
        model=_clip(message.model),
        tool=called,
    )


def _content_text(content: str | list[_Part | None] | None) -> str:
    if isinstance(content, list):
        return "".join(p.text or "" for p in content if p is not None and p.type in (None, "text"))
    return content or ""


def _usage_object(value: Any) -> Mapping[str, Any] | str | None:
    """The usage object; None when there is none; the reason it cannot be read when it is
    not an object."""
    if value is None or isinstance(value, Mapping):
        return value
    return f"usage is {shown(value, 40)}"


def _cached_tokens(usage: Any) -> tuple[str, Any]:
    details = usage.get("prompt_tokens_details") if isinstance(usage, Mapping) else None
    if details is None:
        return "usage.prompt_tokens_details.cached_tokens", 0
    if not isinstance(details, Mapping):
        return "usage.prompt_tokens_details", details
    return "usage.prompt_tokens_details.cached_tokens", details.get("cached_tokens") or 0


def usage_of(
    raw: Mapping[str, Any] | str | None,
    *,
    input_key: str,
    output_key: str,
    cached: tuple[str, Any] = ("", 0),
    added: tuple[tuple[str, Any], ...] = (),
) -> Usage:
    """Token counts from a usage object; any count that is not a whole number from 0 to
    `MAX_TOKENS`, or an input whose parts add up past it, makes the usage unknown, naming the
    field and what it held.

    `raw` may be the reason a usage could not be read (`_usage_object`). `cached` is the
    cached part of the input; `added` are input counts a provider keeps
    apart from `input_key` (Anthropic's cache reads and writes), summed into the input.
    """
    if raw is None:
        return Usage(unknown="the reply carries no usage")
    if isinstance(raw, str):
        return Usage(unknown=raw)
    named = [(f"usage.{input_key}", raw.get(input_key)), (f"usage.{output_key}", raw.get(output_key))]
    counts: list[int] = []
    for name, value in [*named, cached, *added]:
        count = _count(value)
        if count is None:
            return Usage(unknown=f"{name} is {shown(value, 40)}")
        counts.append(count)
    given_in, given_out, cache, *more = counts
    total_in = given_in + sum(more)
    if total_in > MAX_TOKENS:
        names = " + ".join(name for name, _ in [named[0], *added])
        return Usage(unknown=f"{names} is {total_in:,}, more than {MAX_TOKENS:,}")
    return Usage(input_tokens=total_in, output_tokens=given_out, cached_tokens=min(cache, total_in))


def _count(value: Any) -> int | None:
    """A token count as an int, or None when it is not one a provider could mean."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and 0 <= value <= MAX_TOKENS:
        return value
    return None


def _clip(text: str | None) -> str | None:
    return text if text is None or len(text) <= _META_CHARS else text[:_META_CHARS] + "…"
