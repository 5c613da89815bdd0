"""JSON over HTTP for the OpenAI-style chat API: one aiohttp session per backend.

A chat completion is one JSON POST. The official OpenAI SDK sends it through typed request
params, an httpx transport and pydantic reply models, which cost about 2 ms of CPU a request
against a zero-latency server (`bench/bench_throughput.py`): a process could not send more
than ~450 requests a second before doing anything else. aiohttp sends the same bytes for
about 0.3 ms. What the SDK did besides (the key header, the error body, the request id) is
here, and the failures map to the same `BackendError`s as every other backend's.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .. import jsontext
from .._about import DISTRIBUTION, __version__
from ..errors import TransientError, UnreachableError
from ._provider import error_for_status, is_refused, scrub
from .envelope import decode_body

if TYPE_CHECKING:
    import aiohttp

__all__ = ["HTTPReply", "JSONClient", "env_proxy", "error_detail"]

#: how much of a body that is not the JSON asked for goes into an error message
_SHOWN = 300
_JSON = {"Content-Type": "application/json"}
#: the providers' own hosts, which errors need not name
_OWN_HOSTS = {"openai": ("api.openai.com",)}


@dataclass(frozen=True)
class HTTPReply:
    status: int
    headers: Mapping[str, str]
    data: dict[str, Any]
    request_id: str | None


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


def env_proxy(url: str) -> str | None:
    """The proxy the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`) names for `url`."""
    parts = urlsplit(url)
    if parts.hostname is None or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


class JSONClient:
    """POSTs JSON to one server and reads JSON back; a failure is a `BackendError`.

    The session is opened on the first request, inside the running event loop, and keeps
    its connections alive between requests. The proxy variables are read once, as the SDKs
    read them (aiohttp's `trust_env` would read them again in a thread for every request).
    """

    def __init__(
        self,
        backend: str,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout: float,
        secrets: Iterable[str | None] = (),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Errors from a server other than the provider's own name it: a proxy's 400 should
        # not read as the provider's.
        host = urlsplit(self.base_url).netloc
        self.backend = backend if host in _OWN_HOSTS.get(backend, ()) else f"{backend} at {host}"
        self.headers = {
            "Accept": "application/json",
            "User-Agent": f"{DISTRIBUTION}/{__version__}",
            **headers,
        }
        self.timeout = timeout
        self.secrets = list(secrets)
        self.proxy = env_proxy(self.base_url)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        self._session = aiohttp.ClientSession(
            headers=self.headers,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            # The engine holds each member to its concurrency; the pool need not.
            connector=aiohttp.TCPConnector(limit=0),
        )
        return self._session

    async def post(self, path: str, body: Mapping[str, Any]) -> HTTPReply:
        """POST a JSON body; the reply must be a JSON object."""
        return self._parsed(await self.send("POST", path, data=json.dumps(body, ensure_ascii=False).encode()))

    async def get(self, path: str) -> HTTPReply:
        """GET a JSON object."""
        return self._parsed(await self.send("GET", path))

    async def send(self, method: str, path: str, data: Any = None) -> tuple[int, Mapping[str, str], bytes]:
        """One request; an HTTP failure or a dropped connection is a `BackendError`.

        `data` is bytes (sent as JSON) or an `aiohttp.FormData` (a multipart upload).
        """
        import aiohttp

        session = self._session or self._open()
        # A multipart upload writes its own Content-Type, with its boundary.
        headers = _JSON if isinstance(data, bytes) else None
        url = f"{self.base_url}{path}"
        try:
            async with session.request(method, url, data=data, headers=headers, proxy=self.proxy) as response:
                raw = await response.read()
                status, got = response.status, response.headers
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            # Refused, reset, dropped mid-reply or timed out: nothing was answered.
            detail = scrub(f"{type(exc).__name__}: {exc}".rstrip(": "), self.secrets)
            error = UnreachableError if is_refused(exc) else TransientError
            raise error(f"{self.backend}: {detail}") from None
        if status >= 400:
            detail = scrub(error_detail(raw), self.secrets)
            request_id = got.get("x-request-id")
            raise error_for_status(self.backend, status, detail, headers=got, request_id=request_id)
        return status, got, raw

    def _parsed(self, answer: tuple[int, Mapping[str, str], bytes]) -> HTTPReply:
        status, headers, raw = answer
        request_id = headers.get("x-request-id")
        parsed = decode_body(raw, f"{self.backend} HTTP {status}", request_id, self.secrets)
        if not isinstance(parsed, dict):
            # A proxy's page or a cut body: the next try may get the real reply.
            shown = scrub(raw[:_SHOWN].decode("utf-8", "replace"), self.secrets)
            raise TransientError(
                f"{self.backend} HTTP {status}: the reply was not a JSON object: {shown!r}",
                request_id=request_id,
            )
        return HTTPReply(status, headers, parsed, request_id)

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
            # aiohttp closes the sockets on the next loop turns; without this pause an event
            # loop closed right after warns about unclosed transports.
            await asyncio.sleep(0)
