"""OpenAI chat completions, and any server that speaks them: vLLM, Ollama, llama-server, Azure.

The review schema goes out in the member's `structured` form (see `structured.py`): under
`auto`, a strict JSON-schema response format first, then the forms a server such as
llama-cpp-python takes. Point the backend at another server with the `base_url` option (or
`OPENAI_BASE_URL`); when no key is set for such a server the backend sends the placeholder key
`not-needed`, which local servers ignore. `azure = true` talks to an Azure OpenAI resource
(`base_url` is its endpoint, the model is the deployment's name, `api_version` is required).

Requests go through the OpenAI SDK (`AsyncOpenAI`, `AsyncAzureOpenAI`) on its aiohttp
transport, with the SDK's own retries off (the engine retries, honouring the wait hint). A
chat request is the SDK's generic `post` of the body we build: the typed `create` walks the
whole review schema on every call, which cost more CPU than the rest of a review (see
`bench/bench_throughput.py`); `tests/test_openai_wire.py` holds the two bodies equal. The
reply is taken raw and read by the lenient envelope (`envelope.chat_answer`), so a hostile
body fails its one review with a reason, and no typed model is built for it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator

from ..errors import BackendError, BackendSpecError, MissingDependencyError, TransientError, shown
from . import _provider as p
from ._compat import SamplingValue, ServerBackend, ServerOptions
from .base import MemberSpec, Reply, Request
from .envelope import chat_answer, decode_body, error_detail
from .structured import ENFORCED, FORMS, Form
from .urls import names_a_credential

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from .batch import BatchAPI

__all__ = ["OPENAI_URL", "PLACEHOLDER_KEY", "OpenAIBackend", "OpenAIOptions"]

PLACEHOLDER_KEY = "not-needed"
OPENAI_URL = "https://api.openai.com/v1"
#: the variables the OpenAI SDK reads for the organization and project headers
_ACCOUNT_VARIABLES = {"organization": "OPENAI_ORG_ID", "project": "OPENAI_PROJECT_ID"}
_ACCOUNT_HEADERS = {"organization": "OpenAI-Organization", "project": "OpenAI-Project"}
#: Azure's key variable, and the variable of a Microsoft Entra ID token instead of a key
AZURE_KEY_ENV = "AZURE_OPENAI_API_KEY"
AZURE_TOKEN_ENV = "AZURE_OPENAI_AD_TOKEN"


#: a header's name (an HTTP token) and value (visible ASCII, spaces and tabs: no line break)
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")


def refuse_key_headers(headers: Mapping[str, str]) -> None:
    """A ValueError naming a header that would carry a key (keys come from the environment),
    or one no HTTP client can send (found here, not on every request of a run)."""
    for name, value in headers.items():
        if names_a_credential(name):
            raise ValueError(
                f"header {shown(name)} carries a key: keys are read from the environment only; "
                "set the key in an environment variable and name it with api_key_env"
            )
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"header {shown(name)} is not a header name (letters, digits and -)")
        if not _HEADER_VALUE.fullmatch(value):
            raise ValueError(
                f"header {shown(name)} has a value HTTP cannot carry (a line break, a control "
                "character or a character beyond ASCII)"
            )


class OpenAIOptions(ServerOptions):
    token_param: Literal["max_completion_tokens", "max_tokens"] | None = Field(
        default=None,
        description="The name of the reply's token limit: OpenAI's newer models refuse max_tokens, "
        "compatible servers only know max_tokens (unset: max_tokens with a base_url, else "
        "max_completion_tokens).",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra HTTP headers sent with every request (a gateway's routing header, say); "
        "never a credential: Authorization, Cookie and any name with key, token, secret, "
        "password, auth, session or signature in it are refused.",
    )
    organization: str | None = Field(
        default=None, description="The OpenAI-Organization header (unset: OPENAI_ORG_ID)."
    )
    project: str | None = Field(
        default=None, description="The OpenAI-Project header (unset: OPENAI_PROJECT_ID)."
    )
    azure: bool = Field(
        default=False,
        description="An Azure OpenAI resource: base_url is its endpoint (https://NAME.openai.azure.com, "
        "else AZURE_OPENAI_ENDPOINT), the model is the deployment's name, the key comes from "
        "AZURE_OPENAI_API_KEY (or a Microsoft Entra ID token from AZURE_OPENAI_AD_TOKEN).",
    )
    api_version: str | None = Field(
        default=None,
        validate_default=True,
        description="The api-version Azure requires (2024-10-21, say); only with azure = true.",
    )

    @field_validator("headers")
    @classmethod
    def _no_keys(cls, value: dict[str, str]) -> dict[str, str]:
        refuse_key_headers(value)
        return value

    @field_validator("organization", "project")
    @classmethod
    def _a_header_value(cls, value: str | None) -> str | None:
        if value is not None and not _HEADER_VALUE.fullmatch(value):
            raise ValueError(
                "a value HTTP cannot carry in a header (a line break, a control character or a "
                "character beyond ASCII)"
            )
        return value

    @field_validator("api_version")
    @classmethod
    def _azure_version(cls, value: str | None, info: ValidationInfo) -> str | None:
        azure = info.data.get("azure", False)
        if azure and not (value or "").strip():
            raise ValueError("azure needs api_version: the API version the resource serves (2024-10-21, say)")
        if value is not None and not azure:
            raise ValueError("api_version is for azure = true (an Azure OpenAI resource)")
        return value


class OpenAIBackend(ServerBackend):
    name = "openai"
    extra = "openai"
    key_env = "OPENAI_API_KEY"
    default_maker = "OpenAI"
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
        headers: Mapping[str, str] | None = None,
        organization: str | None = None,
        project: str | None = None,
        azure: bool = False,
        api_version: str | None = None,
        azure_ad_token: str | None = None,
    ) -> None:
        super().__init__(model)
        if azure and not base_url:
            raise BackendSpecError("azure: set base_url to the resource's endpoint, or AZURE_OPENAI_ENDPOINT")
        if azure and not api_version:
            raise BackendSpecError("azure: set api_version (the API version the resource serves)")
        # An Azure resource is OpenAI's own service: strict schemas, the newer token parameter.
        server = None if azure else base_url
        self._serve(structured, FORMS, sampling, fit_strings, server)
        self.base_url = base_url
        self.timeout = timeout
        self.azure = azure
        self.api_version = api_version
        # OpenAI's newer models refuse `max_tokens`; compatible servers only know `max_tokens`.
        self.token_param = token_param or ("max_tokens" if server else "max_completion_tokens")
        self._secrets = [api_key, azure_ad_token]
        # Errors from a server other than OpenAI's name it: a proxy's 400 should not read as OpenAI's.
        host = urlsplit(base_url or OPENAI_URL).netloc
        self.where = self.name if host == urlsplit(OPENAI_URL).netloc else f"{self.name} at {host}"
        account = {"organization": organization, "project": project}
        self._client = _client(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            headers=dict(headers or {}),
            account={k: v or _env(_ACCOUNT_VARIABLES[k]) for k, v in account.items()},
            azure=azure,
            api_version=api_version,
            azure_ad_token=azure_ad_token,
        )

    @classmethod
    def from_spec(cls, spec: MemberSpec) -> OpenAIBackend:
        if not spec.model:
            raise BackendSpecError("backend 'openai' needs a model: write openai:MODEL")
        options = OpenAIOptions.of(cls.name, spec.options)
        if options.azure:
            where = p.Connection.of(
                cls.name, options, [AZURE_KEY_ENV, AZURE_TOKEN_ENV], "AZURE_OPENAI_ENDPOINT"
            )
            key = where.require_key()
            api_key, token = (None, key) if where.variable == AZURE_TOKEN_ENV else (key, None)
        else:
            where = p.Connection.of(cls.name, options, [cls.key_env or "OPENAI_API_KEY"], "OPENAI_BASE_URL")
            # A local server takes any key; but a member that names its key variable (a proxy
            # such as LiteLLM) needs that key, and the placeholder would only earn a puzzling 400.
            if where.base_url is None or options.api_key_env is not None:
                where.require_key()
            api_key, token = where.key or PLACEHOLDER_KEY, None
        return cls(
            spec.model,
            api_key=api_key,
            base_url=where.base_url,
            timeout=where.timeout,
            token_param=options.token_param,
            structured=options.structured,
            sampling=options.sampling,
            fit_strings=options.fit_strings,
            headers=options.headers,
            organization=options.organization,
            project=options.project,
            azure=options.azure,
            api_version=options.api_version,
            azure_ad_token=token,
        )

    def provider_maker(self) -> str | None:
        # Another server (a local one, a proxy) may serve anybody's model; Azure serves OpenAI's.
        return self.default_maker if self.azure or self.where == self.name else None

    def __repr__(self) -> str:
        azure = ", azure=True" if self.azure else ""
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r}{azure})"

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

    async def send(self, call: Any) -> Any:
        """Await one SDK call; its failure is the `BackendError` the engine acts on."""
        return await p.call(self.where, self._secrets, call, _describe)

    async def _call(self, request: Request, form: Form) -> Reply:
        import httpx2

        started = time.perf_counter()
        # The SDK's generic POST: its client, headers, Azure paths and errors, without the typed
        # walk of the params (`chat.completions.create` transforms the whole schema on every
        # call; the wire test holds the two bodies equal).
        http = await self.send(
            self._client.post("/chat/completions", body=self.body(request, form), cast_to=httpx2.Response)
        )
        latency = time.perf_counter() - started
        try:
            completion = self.read_json(http, self.where)
            return self.reply(completion, form, http.headers.get("x-request-id"), latency, http.headers)
        except BackendError as exc:
            error = p.masked(exc, self._secrets)
        # A reason quoting the body, never with the key in it: raised out here so the
        # unmasked error is not its context.
        raise error

    def read_json(self, http: Any, what: str) -> dict[str, Any]:
        """The body of an HTTP response (`httpx2.Response`, or the SDK's raw response) as a
        JSON object, read leniently, within bounds.

        A body that is not a JSON object (a proxy's page, a body cut off) is a
        `TransientError`: the next try may get the real reply."""
        status, request_id = http.status_code, http.headers.get("x-request-id")
        parsed = decode_body(http.content, f"{what} HTTP {status}", request_id, self._secrets)
        if not isinstance(parsed, dict):
            raise TransientError(
                f"{what} HTTP {status}: the reply was not a JSON object: "
                + p.scrub(shown(parsed), self._secrets),
                request_id=request_id,
            )
        return parsed

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
        meta = {"form": form, "enforced": ENFORCED[form]}
        return answer.reply(meta, latency=latency, request_id=request_id, headers=headers)

    def batch_api(self) -> BatchAPI:
        from .openai_batch import OpenAIBatchAPI

        api: BatchAPI = OpenAIBatchAPI(self, self._client)
        return api

    async def aclose(self) -> None:
        await self._client.close()
        # aiohttp closes the sockets on the next loop turns; without this pause an event loop
        # closed right after warns about unclosed transports.
        await asyncio.sleep(0)


def _env(variable: str) -> str | None:
    return os.environ.get(variable, "").strip() or None


def _client(
    *,
    api_key: str | None,
    base_url: str | None,
    timeout: float,
    headers: dict[str, str],
    account: dict[str, str | None],
    azure: bool,
    api_version: str | None,
    azure_ad_token: str | None,
) -> AsyncOpenAI:
    """One SDK client for a member, on the SDK's aiohttp transport, without the SDK's retries."""
    import openai

    if importlib.util.find_spec("aiohttp") is None:  # the SDK installed without its extra
        raise MissingDependencyError("openai", "openai", "aiohttp")

    # The SDK reads the organization and project variables itself when given None, blank or
    # not; a blank one must send no header, as it never did.
    omitted = {_ACCOUNT_HEADERS[k]: openai.Omit() for k, v in account.items() if v is None}
    common: dict[str, Any] = {
        "organization": account["organization"],
        "project": account["project"],
        "timeout": timeout,
        # Retries belong to the engine, which honours the provider's wait hint.
        "max_retries": 0,
        "default_headers": {**omitted, **headers},
        "http_client": openai.DefaultAioHttpClient(),
    }
    if azure:
        return openai.AsyncAzureOpenAI(
            api_key=api_key,
            azure_ad_token=azure_ad_token,
            azure_endpoint=base_url or "",
            api_version=api_version,
            **common,
        )
    return openai.AsyncOpenAI(api_key=api_key or PLACEHOLDER_KEY, base_url=base_url or OPENAI_URL, **common)


def _describe(exc: Exception) -> p.Failure | None:
    """What an OpenAI SDK exception says: the error body's own words, its status, headers
    (the wait hint, the rate limits) and request id; a failed connection is transient."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        response = exc.response
        return p.Failure(exc.status_code, error_detail(response.content), response.headers, exc.request_id)
    if isinstance(exc, openai.APIConnectionError):  # also timeouts, resets and refused connections
        # The SDK says "Connection error."; what the socket said is in the error it wraps.
        cause = exc.__cause__
        if p.is_refused(exc):
            # On the aiohttp transport a refused connection comes as a connect timeout ("Request
            # timed out."), which would send a user to raise the timeout: say what happened.
            return p.Failure(detail=f"connection refused: {cause or exc}", transient=True)
        said = f": {type(cause).__name__}: {cause}".rstrip(": ") if cause is not None else ""
        return p.Failure(detail=f"{exc}{said}", transient=True)
    if isinstance(exc, openai.APIError):
        return p.Failure(detail=str(exc))
    return None
