"""Mistral chat completions, with the review schema as a strict JSON-schema response format.

That is the one structured form this backend sends: `structured` takes `auto` or
`json_schema` (the same thing here), and refuses the others by name.

The SDK returns a parsed body and keeps the HTTP response to itself on success, so this
backend gives it an HTTP client with a response hook that hands the headers (request id,
rate limits) back to the call that made the request.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from ..errors import BackendError, BackendSpecError
from . import _provider as p
from .base import Backend, MemberSpec, Reply, Request
from .envelope import chat_answer
from .mistral_calls import as_data, describe, request_id
from .options import StructuredOptions
from .structured import Form

if TYPE_CHECKING:
    from collections.abc import Mapping

    import httpx2
    from mistralai.client import Mistral

    from .batch import BatchAPI

__all__ = ["MistralBackend", "MistralOptions"]

# Set per call; the hook runs in the calling task, so concurrent calls never see each
# other's headers.
_response_headers: ContextVar[dict[str, Mapping[str, str]] | None] = ContextVar(
    "panel_mistral_headers", default=None
)


async def _remember_headers(response: httpx2.Response) -> None:
    box = _response_headers.get()
    if box is not None:
        box["headers"] = response.headers


class MistralOptions(StructuredOptions):
    #: a strict JSON-schema response format is all the chat API takes
    forms: ClassVar[tuple[Form, ...]] = ("json_schema",)

    safe_prompt: bool = Field(
        default=False, description="Put Mistral's own guardrail system prompt before the messages."
    )


class MistralBackend(Backend):
    name = "mistral"
    extra = "mistral"
    key_env = "MISTRAL_API_KEY"
    default_maker = "Mistral AI"
    default_concurrency = 4
    # A strict JSON-schema response format.
    enforced = "provider schema"
    # The SDK client times out first; the engine keeps its own backstop a little later.
    default_timeout = p.DEFAULT_TIMEOUT
    options_model = MistralOptions
    options: MistralOptions

    def __init__(
        self,
        model: str,
        *,
        client: Mistral | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = p.DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(model)
        self.base_url = base_url
        self._secret = api_key
        # HTTP clients this backend made and so closes; an injected SDK client is the caller's.
        self._owned: tuple[httpx2.Client, httpx2.AsyncClient] | None = None
        if client is None:
            import httpx2
            from mistralai.client import Mistral

            self._owned = (
                # The SDK wants a sync client too; it is never used.
                httpx2.Client(follow_redirects=True),
                httpx2.AsyncClient(follow_redirects=True, event_hooks={"response": [_remember_headers]}),
            )
            # retry_config=None: the SDK does not retry unless told to; say so anyway.
            client = Mistral(
                api_key=api_key,
                server_url=base_url,
                timeout_ms=round(timeout * 1000),
                retry_config=None,
                client=self._owned[0],
                async_client=self._owned[1],
            )
        self._client = client

    @classmethod
    def from_spec(cls, spec: MemberSpec) -> MistralBackend:
        if not spec.model:
            raise BackendSpecError("backend 'mistral' needs a model: write mistral:MODEL")
        options = MistralOptions.of(cls.name, spec.options)
        # The SDK reads no variable for its server.
        where = p.Connection.of(cls.name, options, [cls.key_env or "MISTRAL_API_KEY"])
        return cls(spec.model, api_key=where.require_key(), base_url=where.base_url, timeout=where.timeout)

    def __repr__(self) -> str:
        return f"MistralBackend(model={self.model!r}, base_url={self.base_url!r})"

    def wire(self, request: Request) -> dict[str, Any]:
        return self.body(request)

    def body(self, request: Request) -> dict[str, Any]:
        """The chat request as it goes on the wire (a batch line's `body` is the same)."""
        sampling = request.sampling
        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages,
            "response_format": p.json_schema_format(request.schema_name, request.schema),
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            "random_seed": sampling.seed,
        }
        if self.options.safe_prompt:
            body["safe_prompt"] = True
        return body

    async def generate(self, request: Request) -> Reply:
        box: dict[str, Mapping[str, str]] = {}
        token = _response_headers.set(box)
        started = time.perf_counter()
        try:
            send = self._client.chat.complete_async(**self.body(request))
            response = await p.call(
                self.name, [self._secret], as_data(send, self.name, [self._secret]), describe
            )
        finally:
            _response_headers.reset(token)
        latency = time.perf_counter() - started
        headers = box.get("headers")
        try:
            return self.reply(response, request_id(headers), latency, headers)
        except BackendError as exc:
            error = p.masked(exc, [self._secret])
        # A reason quoting the body, never with the key in it: raised out here so the
        # unmasked error is not its context.
        raise error

    def reply(
        self,
        response: object,
        request_id: str | None,
        latency: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """A chat completion (the SDK's, or a batch output line's body) as a `Reply`."""
        answer = chat_answer(response, self.name)
        return answer.reply({}, latency=latency, request_id=request_id, headers=headers)

    def batch_api(self) -> BatchAPI:
        from .mistral_batch import MistralBatchAPI

        api: BatchAPI = MistralBatchAPI(self, self._client)
        return api

    async def aclose(self) -> None:
        if self._owned is not None:
            sync, async_ = self._owned
            sync.close()
            await async_.aclose()
