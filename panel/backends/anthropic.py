"""Anthropic messages, with the review held to its schema in one of the shared forms.

`json_schema` asks for structured output (`output_config.format`, a JSON schema); `tools`
offers one tool whose input schema is the review and forces the model to call it; `prompt`
puts the schema in the system message. `auto` (the default) goes through the same
`Negotiator` as the OpenAI-style backends: it starts with `json_schema` and, if the API
answers that it does not take the format, settles on `tools`, a choice the engine keeps in
the store so a resume does not ask again. This backend's older names still work: `native`
is `json_schema`, `tool` is `tools`.
"""

from __future__ import annotations

import inspect
import time
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import BackendError, BackendSpecError, CapabilityError
from ..memo import ByIdentity
from . import _provider as p
from ._compat import NegotiatingBackend
from .base import MemberSpec, Reply, Request
from .envelope import decode_body, message_answer
from .options import StructuredOptions
from .structured import ENFORCED, Form, Negotiator, schema_in_prompt

if TYPE_CHECKING:
    from collections.abc import Mapping

    from anthropic import AsyncAnthropic

    from .batch import BatchAPI

__all__ = ["AnthropicBackend", "AnthropicOptions"]

#: the forms this backend sends, and the ones `auto` tries, strongest first
_FORMS: tuple[Form, ...] = ("json_schema", "tools", "prompt")
_AUTO: tuple[Form, ...] = ("json_schema", "tools")
# This backend's older names for two of the shared forms.
_ALIASES: dict[str, Form] = {"native": "json_schema", "tool": "tools"}


class AnthropicOptions(StructuredOptions):
    forms: ClassVar[tuple[Form, ...]] = _FORMS
    aliases: ClassVar[dict[str, Form]] = _ALIASES


# Words in a 400 that mean "this model or API version does not take structured output".
_FORMAT_WORDS = ("output_config", "output_format", "format")


class AnthropicBackend(NegotiatingBackend):
    name = "anthropic"
    extra = "anthropic"
    key_env = "ANTHROPIC_API_KEY"
    default_maker = "Anthropic"
    default_concurrency = 8
    # The SDK client times out first; the engine keeps its own backstop a little later.
    default_timeout = p.DEFAULT_TIMEOUT
    options_model = AnthropicOptions

    def __init__(
        self,
        model: str,
        *,
        client: AsyncAnthropic | None = None,
        api_key: str | None = None,
        auth_token: str | None = None,
        base_url: str | None = None,
        timeout: float = p.DEFAULT_TIMEOUT,
        structured: str = "auto",
    ) -> None:
        super().__init__(model)
        try:
            self.negotiator = Negotiator(_ALIASES.get(structured, structured), _AUTO, _FORMS)
        except ValueError as exc:
            raise BackendSpecError(str(exc)) from None
        self.base_url = base_url
        self._secrets = (api_key, auth_token)
        # A client the backend builds it also closes; an injected one is the caller's.
        self._owns_client = client is None
        if client is None:
            from anthropic import AsyncAnthropic

            # The SDK refuses two credentials at once, so pass only the one we have.
            creds = {"api_key": api_key} if api_key else {"auth_token": auth_token}
            client = AsyncAnthropic(**creds, base_url=base_url, timeout=timeout, max_retries=0)
        self._client = client
        # Older SDKs lack `output_config`; newer ones dropped the sampling parameters.
        self._accepts = set(inspect.signature(client.messages.create).parameters)

    @classmethod
    def from_spec(cls, spec: MemberSpec) -> AnthropicBackend:
        if not spec.model:
            raise BackendSpecError("backend 'anthropic' needs a model: write anthropic:MODEL")
        options = AnthropicOptions.of(cls.name, spec.options)
        keys = [cls.key_env or "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"]
        # The SDK would read ANTHROPIC_BASE_URL itself; resolving it here keeps the server
        # in the cache key.
        where = p.Connection.of(cls.name, options, keys, "ANTHROPIC_BASE_URL")
        key = where.require_key()
        is_token = where.variable == "ANTHROPIC_AUTH_TOKEN"
        return cls(
            spec.model,
            api_key=None if is_token else key,
            auth_token=key if is_token else None,
            base_url=where.base_url,
            timeout=where.timeout,
            structured=options.structured,
        )

    def __repr__(self) -> str:
        return (
            f"AnthropicBackend(model={self.model!r}, base_url={self.base_url!r}, "
            f"structured={self.negotiator.setting!r}, form={self.negotiator.form!r})"
        )

    def _params(self, request: Request, form: Form) -> dict[str, Any]:
        messages = request.messages
        if form == "prompt":
            messages = schema_in_prompt(messages, request.schema)
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.sampling.max_tokens,
            "messages": [m for m in messages if m["role"] != "system"],
        }
        if system:
            params["system"] = system
        extra: dict[str, Any] = {}
        if form == "json_schema":
            config = {"format": {"type": "json_schema", "schema": _native_schema(request.schema)}}
            (params if "output_config" in self._accepts else extra)["output_config"] = config
        elif form == "tools":
            params["tools"] = [
                {
                    "name": request.schema_name,
                    "description": "Submit the finished review. Its input is the whole review.",
                    "input_schema": request.schema,
                }
            ]
            params["tool_choice"] = {"type": "tool", "name": request.schema_name}
        for knob in ("temperature", "top_p"):
            if knob in self._accepts:
                params[knob] = getattr(request.sampling, knob)
        if extra:
            params["extra_body"] = extra
        return params

    async def _call(self, request: Request, form: Form) -> Reply:
        import anthropic

        async def send() -> tuple[Any, bytes]:
            raw = await self._client.messages.with_raw_response.create(**self._params(request, form))
            return raw, await raw.read()

        started = time.perf_counter()
        try:
            raw, body = await p.call(self.name, self._secrets, send(), p.stainless(anthropic))
        except BackendError as exc:
            # A 400 about the format: this model or API version does not take structured output.
            refused = exc.status == 400 and any(w in str(exc).lower() for w in _FORMAT_WORDS)
            if form == "json_schema" and refused and not isinstance(exc, CapabilityError):
                raise CapabilityError(str(exc), status=exc.status, request_id=exc.request_id) from None
            raise
        latency = time.perf_counter() - started
        tool = request.schema_name if form == "tools" else None
        # The body as it came, read leniently: the SDK's own parse builds its models without
        # checking them, and a field of the wrong type would surface later as our error.
        message = decode_body(body, self.name, raw.request_id, self._secrets)
        try:
            return self.reply(message, form, raw.request_id, latency, raw.headers, tool=tool)
        except BackendError as exc:
            error = p.masked(exc, self._secrets)
        # A reason quoting the body, never with the key in it: raised out here so the
        # unmasked error is not its context.
        raise error

    def reply(
        self,
        message: object,
        form: Form,
        request_id: str | None,
        latency: float = 0.0,
        headers: Mapping[str, str] | None = None,
        *,
        tool: str | None = None,
    ) -> Reply:
        """A message as a `Reply` (a live reply, or a succeeded line of a batch's results).

        In the tools form the review is the input of the call to `tool`; a batch's results do
        not say which request they answer, so there (`tool` None) it is the one tool offered."""
        answer = message_answer(message, self.name, tool=tool, tool_mode=form == "tools")
        meta = {"form": form, "enforced": ENFORCED[form], "stop_reason": answer.finish_reason}
        return answer.reply(meta, latency=latency, request_id=request_id, headers=headers)

    def batch_api(self) -> BatchAPI:
        from .anthropic_batch import AnthropicBatchAPI

        api: BatchAPI = AnthropicBatchAPI(self, self._client)
        return api

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.close()


def _transformed(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema in the subset structured output takes: the SDK moves the keywords the API
    refuses (lengths, bounds) into descriptions; our own validation still enforces them."""
    try:
        from anthropic import transform_schema
    except ImportError:
        return schema
    return transform_schema(schema)


#: each persona's schema transformed once, not on every request (the cache key builds the
#: body too): and the same object each time, so the key's schema digest is computed once
_native_schema: ByIdentity[dict[str, Any]] = ByIdentity(_transformed)
