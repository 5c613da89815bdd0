"""The session of a browser in `panel view`: one signed cookie, named for the view's port and
kept to the view's own path, holding a session id and the editor's name.

A browser sends a cookie of a host to every port of that host, so the cookie never holds the
token, and it is made to go only where the view is:

- its name carries the port (`panel-view-8765`): two views on one host keep their own;
- with a token, the view lives under a base path made at start (`/v-<random>`), which only a
  browser that brought the token learns (the token URL sends it there), and the cookie's
  Path is that base: a page on another port of the host is not sent it;
- its value is a random session id and the editor's name, signed with a key the app made at
  start (HMAC-SHA256): another view, or a page on another port that sets cookies for the
  host, cannot make one this view accepts;
- a form's CSRF token is derived from the session id, so no second cookie is needed.

`__Host-` cookies need HTTPS (`Secure`) and `Path=/`; the view speaks plain HTTP on loopback
and keeps its cookie to its base path, so it keeps the rest of that discipline: host-only (no
Domain), HttpOnly, SameSite=Strict, and gone when the browser closes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, replace

from starlette.requests import Request

from ..text import clean

__all__ = ["NAME_LIMIT", "Session", "Sessions", "clean_name", "cookie_name", "remember_editor"]

#: the longest editor's name kept (longer ones are cut)
NAME_LIMIT = 80
_MAC_BYTES = 24


def clean_name(value: object) -> str:
    """An editor's name as stored and shown: no controls, blanks collapsed, at most NAME_LIMIT."""
    return " ".join(clean(value).split())[:NAME_LIMIT]


def cookie_name(port: int | None) -> str:
    """The session cookie's name for the view on `port`."""
    return f"panel-view-{port}" if port else "panel-view"


@dataclass(frozen=True)
class Session:
    """A browser's session: its id (the CSRF token derives from it) and the editor's name."""

    sid: str
    editor: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    """Makes and reads the signed session cookies of one app (`key`: made at start), kept
    to `path` (the view's base path; "/" without one)."""

    def __init__(self, key: bytes, path: str) -> None:
        self._key = key
        self.path = path or "/"

    def new(self, editor: str = "") -> Session:
        return Session(secrets.token_urlsafe(18), clean_name(editor))

    def _mac(self, name: str, payload: str) -> str:
        digest = hmac.new(self._key, f"{name}\x00{payload}".encode(), hashlib.sha256).digest()
        return _b64(digest[:_MAC_BYTES])

    def value(self, name: str, session: Session) -> str:
        payload = _b64(json.dumps([session.sid, session.editor]).encode("ascii"))
        return f"{payload}.{self._mac(name, payload)}"

    def find(self, name: str, header: str | None) -> Session | None:
        """The session in a Cookie header: the first cookie named `name` this app signed.

        Every one of that name is tried: a page on another port of the host can set a cookie
        of the same name for a wider path, which the browser then sends too, and a parser that
        kept one value per name could let it push the view's own aside."""
        for pair in (header or "").split(";"):
            key, sep, value = pair.strip().partition("=")
            if sep and key == name:
                found = self.read(name, value.strip().strip('"'))
                if found is not None:
                    return found
        return None

    def read(self, name: str, value: str | None) -> Session | None:
        """The session a cookie named `name` holds; None unless this app signed it."""
        if not value or len(value) > 2048 or "." not in value:
            return None
        payload, _, mac = value.rpartition(".")
        if not hmac.compare_digest(mac.encode(), self._mac(name, payload).encode()):
            return None
        try:
            sid, editor = json.loads(_unb64(payload))
        except (ValueError, TypeError, binascii.Error):
            return None
        if not isinstance(sid, str) or not isinstance(editor, str):
            return None
        return Session(sid, clean_name(editor))

    def header(self, name: str, session: Session) -> str:
        """The Set-Cookie header that gives the browser `session`."""
        return f"{name}={self.value(name, session)}; Path={self.path}; HttpOnly; SameSite=Strict"

    def csrf(self, session: Session) -> str:
        """The CSRF token of the session's forms."""
        digest = hmac.new(self._key, f"csrf\x00{session.sid}".encode(), hashlib.sha256).digest()
        return _b64(digest)


def remember_editor(request: Request, name: str) -> None:
    """Take `name` as the editor of this request, and of the browser's session from now on
    (the response carries the session's cookie anew)."""
    request.state.editor = name
    session: Session | None = request.state.session
    if session is not None and session.editor != name:
        request.state.session = replace(session, editor=name)
        request.state.session_changed = True
