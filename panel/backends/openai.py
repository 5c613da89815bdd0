"""OpenAI chat completions, and any server that speaks them: vLLM, Ollama, llama-server, Azure.

The review schema goes out in the member's `structured` form (see `structured.py`): under
`auto`, a strict JSON-schema response format first, then the forms a server such as
llama-cpp-python takes. Point the backend at another server with the `base_url` option (or
`OPENAI_BASE_URL`); when no key is set for such a server the client sends the placeholder key
`not-needed`, because the SDK will not start without one and local servers ignore it.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Literal

from ..errors import BackendSpecError, FatalError, MissingKeyError
from . import _provider as p
from ._compat import SamplingValue, ServerBackend, ServerOptions
from .base import MemberSpec, Reply, Request, Usage
from .structured import (
    ENFORCED,
    FORMS,
    Form,
    tool_arguments,
)

if TYPE_CHECKING:
    from openai import AsyncOpenAI
    from openai.types.chat import ChatCompletion

__all__ = ["PLACEHOLDER_KEY", "OpenAIBackend", "OpenAIOptions"]

PLACEHOLDER_KEY = "not-needed"


class OpenAIOptions(ServerOptions):
    #: OpenAI's newer models refuse `max_tokens`; compatible servers only know `max_tokens`.
    #: Unset: `max_tokens` with a `base_url`, else `max_completion_tokens`.
    token_param: Literal["max_completion_tokens", "max_tokens"] | None = None


class OpenAIBackend(ServerBackend):
    name = "openai"
    extra = "openai"
    key_env = "OPENAI_API_KEY"
    default_concurrency = 8
    # The SDK client times out first; the engine keeps its own backstop a little later.
    default_timeout = p.DEFAULT_TIMEOUT
    options_model = OpenAIOptions

    def __init__(
        self,
        model: str,
        *,
        client: AsyncOpenAI | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = p.DEFAULT_TIMEOUT,
        token_param: str | None = None,
        structured: str = "auto",
        sampling: dict[str, SamplingValue] | None = None,
        fit_strings: bool | None = None,
    ) -> None:
        super().__init__(model)
        self._serve(structured, FORMS, sampling, fit_strings, base_url)
        self.base_url = base_url
        self.timeout = timeout
        # OpenAI's newer models refuse `max_tokens`; compatible servers only know `max_tokens`.
        self.token_param = token_param or ("max_tokens" if base_url else "max_completion_tokens")
        self._secret = api_key
        # A client the backend builds it also closes; an injected one is the caller's.
        self._owns_client = client is None
        if client is None:
            from openai import AsyncOpenAI

            # Retries belong to the engine, which honours the provider's wait hint.
            client = AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)
        self._client = client

    @classmethod
    def from_spec(cls, spec: MemberSpec) -> OpenAIBackend:
        if not spec.model:
            raise BackendSpecError("backend 'openai' needs a model: write openai:MODEL")
        options = spec.options
        own = OpenAIOptions.of(cls.name, options)
        base_url = options.get("base_url") or os.environ.get("OPENAI_BASE_URL") or None
        names = p.key_variables(options, cls.key_env or "OPENAI_API_KEY")
        found = p.env_key(names)
        if found is None and base_url is None:
            raise MissingKeyError(cls.name, names[0])
        return cls(
            spec.model,
            api_key=found[1] if found else PLACEHOLDER_KEY,
            base_url=base_url,
            timeout=p.timeout_option(options),
            token_param=own.token_param,
            structured=own.structured,
            sampling=own.sampling,
            fit_strings=own.fit_strings,
        )

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r})"

    def _params(self, request: Request, form: Form) -> dict[str, Any]:
        sampling = request.sampling
        schema, named, body = self._fitted(request, form)
        params: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": sampling.seed,
            self.token_param: sampling.max_tokens,
            **named,
        }
        self._shape(params, request, form, schema, strict=True)
        if body:
            params["extra_body"] = body
        return params

    async def _call(self, request: Request, form: Form) -> Reply:
        import openai

        params = self._params(request, form)

        async def send() -> tuple[Any, ChatCompletion]:
            raw = await self._client.chat.completions.with_raw_response.create(**params)
            return raw, raw.parse()

        started = time.perf_counter()
        raw, completion = await p.call(self.name, [self._secret], send(), p.stainless(openai))
        latency = time.perf_counter() - started
        if not completion.choices:
            raise FatalError("openai: the reply had no choices", request_id=raw.request_id)
        choice = completion.choices[0]
        usage = completion.usage
        details = usage.prompt_tokens_details if usage else None
        meta: dict[str, Any] = {"model": completion.model, "form": form, "enforced": ENFORCED[form]}
        if choice.message.refusal:
            meta["refusal"] = choice.message.refusal
        ratelimit = p.ratelimit_state(raw.headers)
        if ratelimit:
            meta["ratelimit"] = ratelimit
        text = choice.message.content or ""
        calls = choice.message.tool_calls or []
        called = getattr(calls[0], "function", None) if calls else None
        if form == "tools" and called is not None:
            text = tool_arguments(called.arguments)
        return Reply(
            text=text,
            usage=Usage(
                input_tokens=usage.prompt_tokens if usage else 0,
                output_tokens=usage.completion_tokens if usage else 0,
                cached_tokens=(details.cached_tokens or 0) if details else 0,
            ),
            latency_s=latency,
            finish_reason=p.finish_reason(choice.finish_reason),
            request_id=raw.request_id or completion.id,
            meta=meta,
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.close()
