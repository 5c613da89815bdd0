"""Structured output: the forms a review schema can be sent in, and finding the one a server takes.

One vocabulary for every backend's `structured` setting:

- `json_schema`: OpenAI's `response_format` `{"type": "json_schema", ...}`; the provider holds
  the reply to the schema.
- `json_object`: `{"type": "json_object", "schema": S, "value": S}`: llama.cpp's server and
  llama-cpp-python read `schema`, TGI reads `value`; each compiles it to a grammar.
- `tools`: one function whose parameters are the review, forced with `tool_choice`.
- `prompt`: the schema goes into the system message; only validation and the re-ask hold the
  reply to it.
- `auto`: the strongest form the member's server takes. The first request tries each form in
  turn (one at a time, however many workers wait) until the server accepts one; a refusal
  (`CapabilityError`) moves on, anything else is the request's own outcome. The choice is kept
  for the backend's life and, through the engine, in the store, so a resume does not ask again.

A form also bounds the string caps (`maxLength`) its schema may carry (`MAX_LENGTH`): the
converters that read it must be able to compile them, since one that cannot may take the
server down with it rather than answer an error.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar, cast, get_args

from ..errors import CapabilityError

__all__ = [
    "CONVERTER_MAX_LENGTH",
    "ENFORCED",
    "FORMS",
    "MAX_LENGTH",
    "STRUCTURED",
    "Enforced",
    "Form",
    "Negotiator",
    "Structured",
    "is_refusal",
    "json_object_format",
    "schema_in_prompt",
    "tool_arguments",
    "tool_params",
]

T = TypeVar("T")

Form = Literal["json_schema", "json_object", "tools", "prompt"]
Structured = Literal["auto", "json_schema", "json_object", "tools", "prompt"]
FORMS: tuple[Form, ...] = get_args(Form)
STRUCTURED: tuple[Structured, ...] = get_args(Structured)

#: How a review's structure was held, as the store, the record and the page say it.
Enforced = Literal["grammar", "provider schema", "tool", "validated after"]
ENFORCED: dict[Form, Enforced] = {
    "json_schema": "provider schema",
    "json_object": "grammar",
    "tools": "tool",
    "prompt": "validated after",
}

#: The longest free-text cap, counted beyond the field's `minLength`, that llama-cpp-python's
#: JSON-schema converter compiles. It writes a cap of N as N nested optional groups, and the
#: grammar parser of the llama.cpp it bundles refuses a group that holds over 2,000 rules
#: (the outer one holds 2N - 1). Measured with llama-cpp-python 0.3.36 and the bundled model:
#: a string of maxLength 1,000 (minLength 0) compiles, 1,001 does not; the server then samples
#: with no grammar at all and its process dies (segmentation fault), so no request may probe
#: for the limit. llama.cpp's own converter (llama-server, xllamacpp) writes `{0,N}` instead
#: and takes any cap the depths ask for.
CONVERTER_MAX_LENGTH = 1000
#: The caps each form's schema may carry: `json_object` and `tools` are what llama-cpp-python
#: reads (its server takes no `json_schema`), so they stay within its converter; `json_schema`
#: goes to servers that compile it themselves (llama.cpp, vLLM, the providers).
MAX_LENGTH: dict[Form, int] = {"json_object": CONVERTER_MAX_LENGTH, "tools": CONVERTER_MAX_LENGTH}

# A refusal names what it refuses; a 400 about the context length or the model is no refusal.
_FORM_WORDS = (
    "response_format",
    "json_schema",
    "json_object",
    "tool_choice",
    "tools",
    "output_config",
    "output_format",
)
# A 500 counts only when its body is a request-validation error (llama-cpp-python answers
# a response_format it does not know with "500: 1 validation error ... Input should be ...").
_VALIDATION_WORDS = ("validation error", "literal_error", "input should be", "extra_forbidden")


def is_refusal(status: int | None, detail: str) -> bool:
    """Whether an HTTP failure says the server does not take the structured-output form."""
    text = detail.lower()
    if status is None or not any(word in text for word in _FORM_WORDS):
        return False
    if status in (400, 422):
        return True
    return status == 500 and any(word in text for word in _VALIDATION_WORDS)


class Negotiator:
    """The form one member's requests use: fixed by its setting, or found under `auto`."""

    def __init__(self, setting: str, order: Sequence[Form], takes: Sequence[Form] | None = None) -> None:
        """`order`: the forms `auto` tries, strongest first; `takes`: every form the backend
        can send (default: the ones in `order`)."""
        takes = tuple(takes or order)
        if setting != "auto" and setting not in takes:
            raise ValueError(f"structured takes {', '.join(('auto', *takes))}, not {setting!r}")
        self.setting = setting
        self.order = tuple(order)
        self.form: Form | None = None if setting == "auto" else cast(Form, str(setting))
        self.refused: dict[Form, str] = {}
        #: the cap found with the form in an earlier process (the store keeps them together)
        self.adopted_max_length: int | None = None
        self._lock = asyncio.Lock()

    @property
    def negotiated(self) -> Form | None:
        """The form `auto` settled on (None before, and for a fixed setting)."""
        return self.form if self.setting == "auto" else None

    @property
    def current(self) -> Form:
        """The form the next request goes in: the settled one, else the first `auto` tries
        (a batch, which cannot probe, sends this one)."""
        return self.form or self.order[0]

    def adopt(self, form: str, max_length: int | None = None) -> None:
        """Start from a form found earlier (read from the store) and the string cap recorded
        with it: no probe."""
        if self.setting == "auto" and form in self.order:
            self.form = cast(Form, str(form))
            self.adopted_max_length = max_length

    def max_length(self, form: Form) -> int | None:
        """The longest `maxLength` a schema sent in `form` may carry (None: no bound)."""
        if form == self.form and self.adopted_max_length is not None:
            return self.adopted_max_length
        return MAX_LENGTH.get(form)

    async def send(self, attempt: Callable[[Form], Awaitable[T]]) -> T:
        """Send with the settled form, or find one: each refused form is tried once."""
        if self.setting != "auto":
            assert self.form is not None
            return await attempt(self.form)
        while True:
            form = self.form
            if form is not None:
                try:
                    return await attempt(form)
                except CapabilityError as exc:
                    # The server changed since the form was found: find another.
                    self._refuse(form, exc)
                    continue
            async with self._lock:
                if self.form is not None:
                    continue  # another worker found it while this one waited
                for form in self.order:
                    if form in self.refused:
                        continue
                    try:
                        result = await attempt(form)
                    except CapabilityError as exc:
                        self._refuse(form, exc)
                        continue
                    self.form = form
                    return result
                tried = "; ".join(f"{f}: {why}" for f, why in self.refused.items())
                raise CapabilityError(f"the server took no structured-output form ({tried})")

    def _refuse(self, form: Form, exc: CapabilityError) -> None:
        self.refused[form] = str(exc)[:200]
        if self.form == form:
            self.form = None


def json_object_format(schema: dict[str, Any]) -> dict[str, Any]:
    """JSON mode with the schema where llama.cpp (`schema`) and TGI (`value`) read it."""
    return {"type": "json_object", "schema": schema, "value": schema}


def tool_params(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """One function whose parameters are the review, and the choice that forces it."""
    return {
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": "Submit the finished review. Its arguments are the whole review.",
                    "parameters": schema,
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": name}},
    }


def tool_arguments(arguments: object) -> str:
    """A tool call's arguments as JSON text: OpenAI sends a string, TGI an object."""
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments, ensure_ascii=False)


_PROMPT_NOTE = (
    "Reply with one JSON object and nothing else. It must match this JSON Schema exactly:\n{schema}"
)


def schema_in_prompt(messages: Sequence[Mapping[str, str]], schema: dict[str, Any]) -> list[dict[str, str]]:
    """The messages with the schema added to the system message (or as one, if none)."""
    note = _PROMPT_NOTE.format(schema=json.dumps(schema, ensure_ascii=False))
    out = [dict(m) for m in messages]
    for message in out:
        if message["role"] == "system":
            message["content"] = f"{message['content']}\n\n{note}"
            return out
    return [{"role": "system", "content": note}, *out]
