"""What every request to `panel view` passes and every response carries.

One ASGI middleware, outermost, so that refusals and error pages get the same headers:

1. the Host header must name the address the server is bound to, when that is loopback
   (a page on another site cannot reach this server through a DNS name rebound to 127.0.0.1);
2. with a token, every request carries it: an `Authorization: Bearer` header, or the cookie
   set when the first visit brought it as `?token=` (that visit is redirected to the same
   URL without it, so the token does not stay in the address bar or the history);
3. CSRF: each browser gets a random token in a SameSite=Strict cookie; every form holds it
   in a hidden field (`request.state.csrf`), and a POST (or any unsafe method) whose field,
   or `X-CSRF-Token` header, does not match the cookie is refused;
4. every response: a strict Content-Security-Policy, nosniff, a referrer only to this same
   origin (so a browser sends the view's own forms with their real Origin), no framing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.datastructures import MutableHeaders
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .bind import LOOPBACK_NAMES

__all__ = [
    "CSP",
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "MAX_FORM_BYTES",
    "SECURITY_HEADERS",
    "TOKEN_COOKIE",
    "Guard",
    "SecurityMiddleware",
]

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
TOKEN_COOKIE = "panel_token"
CSRF_COOKIE = "panel_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
#: the largest form body read to find its CSRF field; editors' forms are a few kB
MAX_FORM_BYTES = 1 << 20
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_COOKIE_FLAGS = "; Path=/; HttpOnly; SameSite=Strict"


@dataclass(frozen=True)
class Guard:
    """What the middleware enforces: a token (None: none needed) and the Host names it
    answers to (None: any, when bound to a non-loopback address and guarded by the token)."""

    token: str | None
    hosts: frozenset[str] | None
    #: the port the Host header must carry; None: any (a test client, or a port chosen late)
    port: int | None = None

    @classmethod
    def for_binding(cls, host: str, port: int | None, token: str | None, loopback: bool) -> Guard:
        if not loopback:
            return cls(token, None, port)
        return cls(token, frozenset({*LOOPBACK_NAMES, host.strip("[]").lower()}), port)

    def host_ok(self, header: str | None) -> bool:
        if self.hosts is None:
            return True
        if not header:
            return False
        try:
            parts = urlsplit(f"//{header}")
            name, port = parts.hostname, parts.port
        except ValueError:
            return False
        if name is None or name not in self.hosts:
            return False
        return self.port is None or port == self.port or (port is None and self.port == 80)


def _same(given: str | None, expected: str) -> bool:
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        cookies: list[str] = []
        send = _decorated(send, cookies)
        refusal = self._admit(request, cookies)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        csrf = request.cookies.get(CSRF_COOKIE)
        fresh = csrf is None or len(csrf) < 32
        if fresh:
            csrf = secrets.token_urlsafe(32)
            cookies.append(f"{CSRF_COOKIE}={csrf}{_COOKIE_FLAGS}")
        assert csrf is not None
        scope.setdefault("state", {})["csrf"] = csrf
        if scope["method"] not in _SAFE_METHODS:
            body, refusal = await _read_body(receive)
            if refusal is None:
                refusal = await _check_csrf(scope, request, body, None if fresh else csrf)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
            receive = _replay(body)
        await self.app(scope, receive, send)

    def _admit(self, request: Request, cookies: list[str]) -> Response | None:
        """A refusal for a request from the wrong Host or without the token, else None."""
        if not self.guard.host_ok(request.headers.get("host")):
            return PlainTextResponse("This server answers only to its own address.", 403)
        token = self.guard.token
        if token is None:
            return None
        offered = request.query_params.get("token")
        if offered is not None and request.method in ("GET", "HEAD"):
            if not _same(offered, token):
                return PlainTextResponse("Wrong token.", 403)
            cookies.append(f"{TOKEN_COOKIE}={token}{_COOKIE_FLAGS}")
            rest = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True) if k != "token"]
            # One leading slash: "//host/..." would send the browser to another site.
            target = "/" + request.url.path.lstrip("/") + (f"?{urlencode(rest)}" if rest else "")
            return RedirectResponse(target, 303)
        given = _bearer(request) or request.cookies.get(TOKEN_COOKIE)
        if given is None:
            return PlainTextResponse(
                "This server needs its token: open the URL `panel view` printed.",
                401,
                headers={"www-authenticate": 'Bearer realm="panel view"'},
            )
        if not _same(given, token):
            return PlainTextResponse("Wrong token.", 403)
        return None


def _decorated(send: Send, cookies: list[str]) -> Send:
    """`send` adding the security headers and any cookies to the response's start."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in SECURITY_HEADERS.items():
                headers[name] = value
            if "cache-control" not in headers:
                headers["cache-control"] = "no-store"
            for cookie in cookies:
                headers.append("set-cookie", cookie)
        await send(message)

    return wrapped


async def _read_body(receive: Receive) -> tuple[bytes, Response | None]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"", PlainTextResponse("The request ended early.", 400)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return b"", PlainTextResponse("The form is too large.", 413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), None


def _replay(body: bytes) -> Receive:
    """A `receive` that hands the app the body already read, then waits for the disconnect."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _check_csrf(scope: Scope, request: Request, body: bytes, expected: str | None) -> Response | None:
    """A refusal unless the request carries the cookie's CSRF token and comes from this origin."""
    refused = PlainTextResponse("Refused: this form did not come from this page (CSRF).", 403)
    origin = request.headers.get("origin")
    # Under `same-origin` the view's own forms carry their origin. "null" (a sandboxed frame,
    # a page that hides its origin) is another page, refused like any other origin.
    # Then the token: another site's page gets no cookie (SameSite=Strict) to match.
    if origin is not None and (origin == "null" or urlsplit(origin).netloc != request.headers.get("host")):
        return refused
    if expected is None:
        return refused
    given = request.headers.get(CSRF_HEADER)
    if given is None and _is_form(request.headers.get("content-type", "")):
        try:
            form = await Request(scope, _replay(body)).form(max_files=0, max_fields=1000)
        except MultiPartException:
            return PlainTextResponse("The form could not be read.", 400)
        try:
            field = form.get(CSRF_FIELD)
        finally:
            await form.close()
        given = field if isinstance(field, str) else None
    return None if _same(given, expected) else refused


def _is_form(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind in ("application/x-www-form-urlencoded", "multipart/form-data")
