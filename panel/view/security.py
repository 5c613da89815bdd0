"""What every request to `panel view` passes and every response carries.

One ASGI middleware, outermost, so that refusals and error pages get the same headers:

1. the Host header must name the address the server is bound to, when that is loopback
   (a page on another site cannot reach this server through a DNS name rebound to 127.0.0.1);
2. with a token (the default), the view lives under a base path made at start, and every
   request there carries the browser's session cookie (`panel.view.session`), or the token
   as an `Authorization: Bearer` header. A first visit brings the token as `?token=`: it
   gets a session and is sent on, without the token, to the same page under the base path.
   Anything else is refused (401): another account on the machine, or a page on another
   port of the host, gets nothing;
3. CSRF: every form holds the session's CSRF token (`request.state.csrf`), and a POST (or
   any unsafe method) whose field, or `X-CSRF-Token` header, does not match is refused, as
   is one whose Origin is another page's. A request with the bearer token needs none;
4. a body is read once, at most MAX_FORM_BYTES (413), and a form must be a form: fields of
   text only, at most MAX_FIELDS of them, a multipart one with its boundary (400);
5. every response: a strict Content-Security-Policy, nosniff, a referrer only to this same
   origin (so a browser sends the view's own forms with their real Origin), no framing.

For the routes, `request.state` holds `csrf`, `session` (None for a bearer request), `editor`
(the name the session keeps, or a bearer request's `X-Panel-Editor`) and `base` (the path
prefix of the view's own links, "" without a token).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .bind import LOOPBACK_NAMES
from .session import Session, Sessions, clean_name, cookie_name

__all__ = [
    "CSP",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "EDITOR_HEADER",
    "MAX_FIELDS",
    "MAX_FORM_BYTES",
    "SECURITY_HEADERS",
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
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
#: the editor's name of a request with the bearer token (a browser's is in its session)
EDITOR_HEADER = "x-panel-editor"
#: the largest body read; editors' forms are a few kB
MAX_FORM_BYTES = 1 << 20
#: the most fields a form may have; the view's largest has a few dozen
MAX_FIELDS = 1000
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True)
class Guard:
    """What the middleware enforces: a token (None: none needed, `--no-token`), the Host
    names it answers to (None: any, when bound to a non-loopback address and guarded by the
    token), the port, and, with a token, the base path the view lives under."""

    token: str | None
    hosts: frozenset[str] | None
    #: the port the Host header must carry; None: any (a test client, or a port chosen late)
    port: int | None = None
    base: str = ""
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    @classmethod
    def for_binding(cls, host: str, port: int | None, token: str | None, loopback: bool) -> Guard:
        base = "" if token is None else f"/v-{secrets.token_urlsafe(12)}"
        hosts = frozenset({*LOOPBACK_NAMES, host.strip("[]").lower()}) if loopback else None
        return cls(token, hosts, port, base)

    @property
    def sessions(self) -> Sessions:
        return Sessions(self.key, self.base)

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


@dataclass
class _Admission:
    """Who a request is: its session (None for the bearer token), whether the session was made
    for this very request (its CSRF token cannot be in any form yet), and the base path."""

    session: Session | None
    fresh: bool = False
    bearer: bool = False
    base: str = ""


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard
        self.sessions = guard.sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        server = scope.get("server")
        name = cookie_name(self.guard.port or (server[1] if server else None))
        cookies: list[str] = []
        send = self._decorated(send, cookies, state, name)
        admitted = self._admit(request, name, cookies)
        if isinstance(admitted, Response):
            await admitted(scope, receive, send)
            return
        session = admitted.session
        if admitted.base:
            scope["root_path"] = scope.get("root_path", "") + admitted.base
        header_name = clean_name(request.headers.get(EDITOR_HEADER, "")) if admitted.bearer else ""
        state.update(
            session=session,
            csrf=self.sessions.csrf(session) if session else "",
            editor=session.editor if session else header_name,
            base=admitted.base,
        )
        if scope["method"] not in _SAFE_METHODS:
            body, refusal = await _read_body(receive)
            if refusal is None:
                expected = None if admitted.fresh or session is None else state["csrf"]
                refusal = await _check(scope, request, body, expected, admitted.bearer)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
            receive = _replay(body)
        await self.app(scope, receive, send)

    def _admit(self, request: Request, name: str, cookies: list[str]) -> _Admission | Response:
        """Who the request is, or the response that refuses it (or sends a token visit on)."""
        if not self.guard.host_ok(request.headers.get("host")):
            return PlainTextResponse("This server answers only to its own address.", 403)
        session = self.sessions.find(name, request.headers.get("cookie"))
        token, base, path = self.guard.token, self.guard.base, request.scope["path"]
        if token is None:
            if session is not None:
                return _Admission(session)
            made = self.sessions.new()
            cookies.append(self.sessions.header(name, made))
            return _Admission(made, fresh=True)
        under = path == base or path.startswith(base + "/")
        inner = path[len(base) :] if under else path
        offered = request.query_params.get("token")
        if offered is not None and request.method in ("GET", "HEAD"):
            if not _same(offered, token):
                return PlainTextResponse("Wrong token.", 403)
            made = self.sessions.new(session.editor if session else "")
            cookies.append(self.sessions.header(name, made))
            return _redirect(base, inner, request, 303)
        given = _bearer(request)
        if given is not None:
            if not _same(given, token):
                return PlainTextResponse("Wrong token.", 403)
            return _Admission(session if under else None, bearer=True, base=base if under else "")
        if session is None or not under:
            return PlainTextResponse(
                "This server needs its token: open the URL `panel view` printed.",
                401,
                headers={"www-authenticate": 'Bearer realm="panel view"'},
            )
        if path == base:
            return _redirect(base, "/", request, 307)
        return _Admission(session, base=base)

    def _decorated(self, send: Send, cookies: list[str], state: dict[str, Any], name: str) -> Send:
        """`send` adding the security headers and any cookies to the response's start (the
        session's anew when a route changed it: the editor gave their name)."""

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for header, value in SECURITY_HEADERS.items():
                    headers[header] = value
                if "cache-control" not in headers:
                    headers["cache-control"] = "no-store"
                if state.get("session_changed") and state.get("session") is not None:
                    cookies.append(self.sessions.header(name, state["session"]))
                for cookie in cookies:
                    headers.append("set-cookie", cookie)
            await send(message)

        return wrapped


def _redirect(base: str, inner: str, request: Request, status: int) -> Response:
    """To `inner` under `base`, with the query but never the token."""
    rest = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True) if k != "token"]
    # One leading slash: "//host/..." would send the browser to another site.
    target = base + "/" + inner.lstrip("/") + (f"?{urlencode(rest)}" if rest else "")
    return RedirectResponse(target, status)


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


async def _check(
    scope: Scope, request: Request, body: bytes, expected: str | None, bearer: bool
) -> Response | None:
    """A refusal unless the body is a form the view can read (when it says it is one) and the
    request comes from this origin with the session's CSRF token (or has the bearer token)."""
    given = request.headers.get(CSRF_HEADER)
    if _is_form(request.headers.get("content-type", "")):
        try:
            form = await Request(scope, _replay(body)).form(max_files=0, max_fields=MAX_FIELDS)
        except (MultiPartException, HTTPException, ValueError, KeyError) as exc:
            detail = getattr(exc, "message", None) or getattr(exc, "detail", None) or "malformed"
            return PlainTextResponse(f"The form could not be read: {detail}", 400)
        try:
            field_value = form.get(CSRF_FIELD)
        finally:
            await form.close()
        if given is None and isinstance(field_value, str):
            given = field_value
    if bearer:
        return None
    refused = PlainTextResponse("Refused: this form did not come from this page (CSRF).", 403)
    origin = request.headers.get("origin")
    # Under `same-origin` the view's own forms carry their origin. "null" (a sandboxed frame,
    # a page that hides its origin) is another page, refused like any other origin, and so is
    # a page on another port of this host.
    if origin is not None and (origin == "null" or urlsplit(origin).netloc != request.headers.get("host")):
        return refused
    if expected is None:
        return refused
    return None if _same(given, expected) else refused


def _is_form(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind in _FORMS
