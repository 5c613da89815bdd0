"""Hugging Face: Inference Providers by model id, or any TGI-style endpoint by URL.

`hf:ORG/MODEL` goes through the Hugging Face router and needs a token. `hf:https://...` (or
a `base_url` option) talks to that endpoint, where a token is optional.

Structured output follows the member's `structured` setting (see `structured.py`). For an
endpoint URL, `huggingface_hub` rewrites a JSON-schema response format into TGI's grammar
`{"type": "json_object", "value": S}`, which llama.cpp's server reads as "any JSON object";
so `auto` starts such endpoints at `json_object`, which carries the schema both where TGI
reads it (`value`) and where llama.cpp and llama-cpp-python read it (`schema`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..errors import BackendSpecError
from . import _provider as p
from ._compat import SamplingValue, ServerBackend, ServerOptions
from .base import MemberSpec, Reply, Request
from .envelope import chat_answer
from .structured import ENFORCED, FORMS, Form

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from huggingface_hub import AsyncInferenceClient

__all__ = ["HFBackend", "HFOptions"]


class HFOptions(ServerOptions):
    pass


def _is_url(text: str | None) -> bool:
    return text is not None and text.startswith(("http://", "https://"))


class HFBackend(ServerBackend):
    name = "hf"
    extra = "hf"
    key_env = "HF_TOKEN"
    default_concurrency = 4
    # The SDK client times out first; the engine keeps its own backstop a little later.
    default_timeout = p.DEFAULT_TIMEOUT
    options_model = HFOptions

    def __init__(
        self,
        model: str,
        *,
        client: AsyncInferenceClient | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = p.DEFAULT_TIMEOUT,
        structured: str = "auto",
        sampling: dict[str, SamplingValue] | None = None,
        fit_strings: bool | None = None,
    ) -> None:
        super().__init__(model)
        self.base_url = base_url or (model if _is_url(model) else None)
        # The SDK turns json_schema into TGI's grammar for an endpoint URL: json_object says
        # the same to TGI and also reaches llama.cpp-style servers.
        order = tuple(f for f in FORMS if f != "json_schema") if self.base_url else FORMS
        self._serve(structured, order, sampling, fit_strings, self.base_url)
        # A model id with a base URL still names the model in the body, for servers that
        # host several; with a URL alone the client sends its own placeholder name.
        self._body_model = model if self.base_url and not _is_url(model) else None
        self._secret = api_key
        self._owns_client = client is None
        if client is None:
            from huggingface_hub import AsyncInferenceClient

            # The client's default timeout is none at all.
            if self.base_url:
                client = AsyncInferenceClient(base_url=self.base_url, api_key=api_key, timeout=timeout)
            else:
                client = AsyncInferenceClient(model=model, api_key=api_key, timeout=timeout)
        self._client = client

    @classmethod
    def from_spec(cls, spec: MemberSpec) -> HFBackend:
        if not spec.model:
            raise BackendSpecError("backend 'hf' needs a model id or an endpoint URL: hf:MODEL")
        options = HFOptions.of(cls.name, spec.options)
        where = p.Connection.of(cls.name, options, [cls.key_env or "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"])
        # Your own endpoint may be open; the Hugging Face router never is.
        if not (where.base_url or _is_url(spec.model)):
            where.require_key()
        return cls(
            spec.model,
            api_key=where.key,
            base_url=where.base_url,
            timeout=where.timeout,
            structured=options.structured,
            sampling=options.sampling,
            fit_strings=options.fit_strings,
        )

    def __repr__(self) -> str:
        return f"HFBackend(model={self.model!r}, base_url={self.base_url!r})"

    def _params(self, request: Request, form: Form) -> dict[str, Any]:
        sampling = request.sampling
        schema, named, body = self._fitted(request, form)
        params: dict[str, Any] = {
            "messages": request.messages,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": sampling.seed,
            **named,
        }
        # Not strict: the router hands json_schema to each provider its own way, and for an
        # endpoint URL the SDK rewrites it into TGI's grammar.
        self._shape(params, request, form, schema, strict=False)
        if body:
            params["extra_body"] = body
        if self._body_model:
            params["model"] = self._body_model
        return params

    def _enforced(self, form: Form) -> str:
        # An endpoint's json_schema arrives as TGI's grammar.
        return "grammar" if form == "json_schema" and self.base_url else ENFORCED[form]

    async def _call(self, request: Request, form: Form) -> Reply:
        params = self._params(request, form)
        started = time.perf_counter()
        output = await p.call(self.name, [self._secret], self._client.chat_completion(**params), _describe)
        latency = time.perf_counter() - started
        # The client's output is a dict as the server wrote it (huggingface_hub's types
        # subclass dict), read as any chat completion is.
        answer = chat_answer(output, self.name, tool_call=form == "tools")
        return answer.reply({"form": form, "enforced": self._enforced(form)}, latency=latency)

    async def aclose(self) -> None:
        if self._owns_client:
            # The SDK leaves `close` unannotated; name the type it has.
            close: Callable[[], Awaitable[None]] = self._client.close
            await close()


def _describe(exc: Exception) -> p.Failure | None:
    from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError

    if isinstance(exc, HfHubHTTPError):
        response = exc.response
        detail = exc.server_message or (str(exc).splitlines() or ["no message"])[0]
        return p.Failure(response.status_code, detail, response.headers, exc.request_id)
    if isinstance(exc, InferenceTimeoutError):
        return p.Failure(detail=str(exc), transient=True)
    return None
