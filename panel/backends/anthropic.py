"""Anthropic messages, with the review held to its schema one of two ways.

`native` asks for structured output (`output_config.format`, a JSON schema); `tool` offers one
tool whose input schema is the review and forces the model to call it. `auto` (the default)
starts native and, if the API answers 400 because it does not take the format, switches this
backend to the tool for the rest of its life: that is finding out what the model supports,
not a retry policy. The vocabulary shared with the other backends works too: `json_schema`
is `native` and `tools` is `tool`.
"""

from __future__ import annotations

import inspect
import time
from typing import TYPE_CHECKING, Any, Literal

from ..errors import BackendError, BackendSpecError
from . import _provider as p
from .base import Backend, BackendOptions, MemberSpec, Reply, Request
from .envelope import decode_body, message_answer
from .urls import server_url

if TYPE_CHECKING:
    from collections.abc import Mapping

    from anthropic import AsyncAnthropic

    from .batch import BatchAPI

__all__ = ["AnthropicBackend", "AnthropicOptions"]

Structured = Literal["native", "tool", "auto", "json_schema", "tools"]
_MODES: tuple[Structured, ...] = ("native", "tool", "auto", "json_schema", "tools")
# The names every backend shares (see `structured.py`), to this backend's own.
_ALIASES = {"json_schema": "native", "tools": "tool"}
_ENFORCED = {"native": "provider schema", "tool": "tool"}


class AnthropicOptions(BackendOptions):
    #: how the review is held to its schema: see the module's docstring
    structured: Structured = "auto"


# Words in a 400 that mean "this model or API version does not take structured output".
_FORMAT_WORDS = ("output_config", "output_format", "format")


class AnthropicBackend(Backend):
    name = "anthropic"
    extra = "anthropic"
    key_env = "ANTHROPIC_API_KEY"
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
        if structured not in _MODES:
            raise BackendSpecError(f"structured must be one of {', '.join(_MODES)}")
        structured = _ALIASES.get(structured, structured)
        self.structured = structured
        self.mode: Literal["native", "tool"] = "tool" if structured == "tool" else "native"
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
        options = spec.options
        own = AnthropicOptions.of(cls.name, options)
        names = p.key_variables(options, cls.key_env or "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
        variable, key = p.require_key(cls.name, names)
        is_token = variable == "ANTHROPIC_AUTH_TOKEN"
        return cls(
            spec.model,
            api_key=None if is_token else key,
            auth_token=key if is_token else None,
            # The SDK would read ANTHROPIC_BASE_URL itself; resolving it here keeps the
            # server in the cache key.
            base_url=server_url(options, "ANTHROPIC_BASE_URL"),
            timeout=p.timeout_option(options),
            structured=own.structured,
        )

    def __repr__(self) -> str:
        return (
            f"AnthropicBackend(model={self.model!r}, base_url={self.base_url!r}, "
            f"structured={self.structured!r}, mode={self.mode!r})"
        )

    async def generate(self, request: Request) -> Reply:
        mode = self.mode
        try:
            return await self._call(request, mode)
        except BackendError as exc:
            rejected = exc.status == 400 and any(w in str(exc).lower() for w in _FORMAT_WORDS)
            if not (self.structured == "auto" and mode == "native" and rejected):
                raise
        self.mode = "tool"
        return await self._call(request, "tool")

    def _params(self, request: Request, mode: Literal["native", "tool"]) -> dict[str, Any]:
        system = "\n\n".join(m["content"] for m in request.messages if m["role"] == "system")
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.sampling.max_tokens,
            "messages": [m for m in request.messages if m["role"] != "system"],
        }
        if system:
            params["system"] = system
        extra: dict[str, Any] = {}
        if mode == "native":
            config = {"format": {"type": "json_schema", "schema": _native_schema(request.schema)}}
            (params if "output_config" in self._accepts else extra)["output_config"] = config
        else:
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

    def body(self, request: Request, mode: Literal["native", "tool"]) -> dict[str, Any]:
        """The request's params as they go on the wire (a batch request's `params` are the same)."""
        params = self._params(request, mode)
        params.update(params.pop("extra_body", {}))
        return params

    async def _call(self, request: Request, mode: Literal["native", "tool"]) -> Reply:
        import anthropic

        async def send() -> tuple[Any, bytes]:
            raw = await self._client.messages.with_raw_response.create(**self._params(request, mode))
            return raw, await raw.read()

        started = time.perf_counter()
        raw, body = await p.call(self.name, self._secrets, send(), p.stainless(anthropic))
        latency = time.perf_counter() - started
        tool = request.schema_name if mode == "tool" else None
        # The body as it came, read leniently: the SDK's own parse builds its models without
        # checking them, and a field of the wrong type would surface later as our error.
        message = decode_body(body, self.name, raw.request_id, self._secrets)
        return self.reply(message, mode, raw.request_id, latency, raw.headers, tool=tool)

    def reply(
        self,
        message: object,
        mode: Literal["native", "tool"],
        request_id: str | None,
        latency: float = 0.0,
        headers: Mapping[str, str] | None = None,
        *,
        tool: str | None = None,
    ) -> Reply:
        """A message as a `Reply` (a live reply, or a succeeded line of a batch's results).

        In the tool mode the review is the input of the call to `tool`; a batch's results do
        not say which request they answer, so there (`tool` None) it is the one tool offered."""
        answer = message_answer(message, self.name, tool=tool, tool_mode=mode == "tool")
        meta: dict[str, Any] = {
            "model": answer.model,
            "structured": mode,
            "enforced": _ENFORCED[mode],
            "stop_reason": answer.finish_reason,
        }
        if answer.tool is not None:
            meta["tool"] = answer.tool  # the tool the model called: its review's schema name
        ratelimit = p.ratelimit_state(headers)
        if ratelimit:
            meta["ratelimit"] = ratelimit
        return Reply(
            text=answer.text,
            usage=answer.usage,
            latency_s=latency,
            finish_reason=p.finish_reason(answer.finish_reason),
            request_id=request_id or answer.id,
            meta=meta,
        )

    def batch_api(self) -> BatchAPI:
        from .anthropic_batch import AnthropicBatchAPI

        api: BatchAPI = AnthropicBatchAPI(self, self._client)
        return api

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.close()


def _native_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema in the subset structured output takes: the SDK moves the keywords the API
    refuses (lengths, bounds) into descriptions; our own validation still enforces them."""
    try:
        from anthropic import transform_schema
    except ImportError:
        return schema
    return transform_schema(schema)
