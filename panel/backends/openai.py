"""OpenAI chat completions, and any server that speaks them: vLLM, Ollama, llama-server, Azure.

The review schema goes out in the member's `structured` form (see `structured.py`): under
`auto`, a strict JSON-schema response format first, then the forms a server such as
llama-cpp-python takes. Point the backend at another server with the `base_url` option (or
`OPENAI_BASE_URL`); when no key is set for such a server the backend sends the placeholder key
`not-needed`, which local servers ignore.

Requests go out as plain JSON over aiohttp (`_http.py`), not through the OpenAI SDK, whose
typed layers cost several times the CPU of the rest of a review; the tests check that the
body is the one the SDK would send for the same call.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from ..errors import BackendSpecError
from . import _provider as p
from ._compat import SamplingValue, ServerBackend, ServerOptions
from ._http import JSONClient
from .base import MemberSpec, Reply, Request
from .envelope import chat_answer
from .structured import ENFORCED, FORMS, Form

if TYPE_CHECKING:
    from .batch import BatchAPI

__all__ = ["OPENAI_URL", "PLACEHOLDER_KEY", "OpenAIBackend", "OpenAIOptions"]

PLACEHOLDER_KEY = "not-needed"
OPENAI_URL = "https://api.openai.com/v1"
#: the variables the OpenAI SDK reads for the organization and project headers
_ACCOUNT_HEADERS = {"OPENAI_ORG_ID": "OpenAI-Organization", "OPENAI_PROJECT_ID": "OpenAI-Project"}


class OpenAIOptions(ServerOptions):
    token_param: Literal["max_completion_tokens", "max_tokens"] | None = Field(
        default=None,
        description="The name of the reply's token limit: OpenAI's newer models refuse max_tokens, "
        "compatible servers only know max_tokens (unset: max_tokens with a base_url, else "
        "max_completion_tokens).",
    )


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
        headers = {"Authorization": f"Bearer {api_key or PLACEHOLDER_KEY}"}
        for variable, header in _ACCOUNT_HEADERS.items():
            value = os.environ.get(variable, "").strip()
            if value:
                headers[header] = value
        # Retries belong to the engine, which honours the provider's wait hint.
        self._client = JSONClient(
            self.name, base_url or OPENAI_URL, headers, timeout=timeout, secrets=[api_key]
        )

    @classmethod
    def from_spec(cls, spec: MemberSpec) -> OpenAIBackend:
        if not spec.model:
            raise BackendSpecError("backend 'openai' needs a model: write openai:MODEL")
        options = OpenAIOptions.of(cls.name, spec.options)
        where = p.Connection.of(cls.name, options, [cls.key_env or "OPENAI_API_KEY"], "OPENAI_BASE_URL")
        # A local server takes any key; but a member that names its key variable (a proxy
        # such as LiteLLM) needs that key, and the placeholder would only earn a puzzling 400.
        if where.base_url is None or options.api_key_env is not None:
            where.require_key()
        return cls(
            spec.model,
            api_key=where.key or PLACEHOLDER_KEY,
            base_url=where.base_url,
            timeout=where.timeout,
            token_param=options.token_param,
            structured=options.structured,
            sampling=options.sampling,
            fit_strings=options.fit_strings,
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
        started = time.perf_counter()
        http = await self._client.post("/chat/completions", self.body(request, form))
        latency = time.perf_counter() - started
        return self.reply(http.data, form, http.request_id, latency, http.headers)

    def reply(
        self,
        completion: object,
        form: Form,
        request_id: str | None,
        latency: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """A chat completion body as a `Reply` (a live reply, or a line of a batch's output);
        one the review cannot be read from is a `FatalError` naming what it lacks."""
        answer = chat_answer(completion, self.name, tool_call=form == "tools")
        meta: dict[str, Any] = {"model": answer.model, "form": form, "enforced": ENFORCED[form]}
        if answer.refusal:
            meta["refusal"] = answer.refusal
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
        from .openai_batch import OpenAIBatchAPI

        api: BatchAPI = OpenAIBatchAPI(self, self._client)
        return api

    async def aclose(self) -> None:
        await self._client.aclose()
