"""Hugging Face: Inference Providers by model id, or any TGI-style endpoint by URL.

`hf:ORG/MODEL` goes through the Hugging Face router and needs a token. `hf:https://...` (or
a `base_url` option) talks to that endpoint, where a token is optional; `huggingface_hub`
rewrites the JSON-schema response format into the TGI grammar for such endpoints.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..errors import BackendSpecError, FatalError, MissingKeyError
from . import _provider as p
from .base import Backend, MemberSpec, Reply, Request, Usage

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from huggingface_hub import AsyncInferenceClient

__all__ = ["HFBackend"]


def _is_url(text: str | None) -> bool:
    return text is not None and text.startswith(("http://", "https://"))


class HFBackend(Backend):
    name = "hf"
    extra = "hf"
    key_env = "HF_TOKEN"
    default_concurrency = 4
    # The SDK client times out first; the engine keeps its own backstop a little later.
    default_timeout = p.DEFAULT_TIMEOUT

    def __init__(
        self,
        model: str,
        *,
        client: AsyncInferenceClient | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = p.DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(model)
        self.base_url = base_url or (model if _is_url(model) else None)
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
        options = spec.options
        base_url = options.get("base_url") or None
        names = p.key_variables(options, cls.key_env or "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
        found = p.env_key(names)
        # Your own endpoint may be open; the Hugging Face router never is.
        if found is None and not (base_url or _is_url(spec.model)):
            raise MissingKeyError(cls.name, names[0])
        return cls(
            spec.model,
            api_key=found[1] if found else None,
            base_url=base_url,
            timeout=p.timeout_option(options),
        )

    def __repr__(self) -> str:
        return f"HFBackend(model={self.model!r}, base_url={self.base_url!r})"

    async def generate(self, request: Request) -> Reply:
        sampling = request.sampling
        params: dict[str, Any] = {
            "messages": request.messages,
            # huggingface_hub turns this into a TGI grammar for endpoint URLs.
            "response_format": p.json_schema_format(request.schema_name, request.schema, strict=False),
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": sampling.seed,
        }
        if self._body_model:
            params["model"] = self._body_model
        started = time.perf_counter()
        output = await p.call(self.name, [self._secret], self._client.chat_completion(**params), _describe)
        latency = time.perf_counter() - started
        if not output.choices:
            raise FatalError("hf: the reply had no choices", request_id=output.id)
        choice = output.choices[0]
        usage = output.usage
        return Reply(
            text=choice.message.content or "",
            usage=Usage(
                input_tokens=usage.prompt_tokens if usage else 0,
                output_tokens=usage.completion_tokens if usage else 0,
            ),
            latency_s=latency,
            finish_reason=p.finish_reason(choice.finish_reason),
            request_id=output.id or None,
            meta={"model": output.model},
        )

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
