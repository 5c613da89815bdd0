"""Where `panel view` listens, and the token that guards it (made at start unless given;
`--no-token` only on loopback). No web framework is imported here: the command decides
before it knows whether the `view` extra is installed."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass

from ..errors import UserError

__all__ = ["LOOPBACK_NAMES", "Binding", "decide_binding", "host_for_url", "is_loopback"]

#: the names a browser may use for this machine's loopback address
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address (or `localhost`): only this machine can reach it."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_for_url(host: str) -> str:
    """The host as it is written in a URL: an IPv6 address goes in brackets."""
    name = host.strip("[]")
    return f"[{name}]" if ":" in name else name


@dataclass(frozen=True)
class Binding:
    """Where the server listens and the token every request must carry (None: no token)."""

    host: str
    port: int
    token: str | None
    #: the token was made here, not given: the command prints it
    generated: bool = False

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    @property
    def url(self) -> str:
        return f"http://{host_for_url(self.host)}:{self.port}/"

    @property
    def first_url(self) -> str:
        """The URL to open first: it carries the token, which the server then keeps in a cookie."""
        return self.url if self.token is None else f"{self.url}?token={self.token}"


def decide_binding(host: str, port: int, token: str | None, no_token: bool = False) -> Binding:
    """A token guards the view wherever it listens: the one given, else one made here (the
    command prints it once, in the URL to open). `no_token` (`--no-token`) drops it, on a
    loopback address only: for a machine where no other account can reach 127.0.0.1."""
    if no_token:
        if token is not None:
            raise UserError(
                "--no-token and a token (--token, --token-file or PANEL_VIEW_TOKEN): give one or the other"
            )
        if not is_loopback(host):
            raise UserError(
                f"--no-token: {host} is not a loopback address; a view reached from elsewhere needs a token"
            )
        return Binding(host, port, None)
    if token is not None:
        if not token.strip() or any(ch.isspace() for ch in token):
            raise UserError("--token: give a token without blanks (or leave --token out to get one made)")
        return Binding(host, port, token)
    return Binding(host, port, secrets.token_urlsafe(24), generated=True)
