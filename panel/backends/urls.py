"""A member's server address: where it is read from, and the rule that it carries no key.

A URL such as `http://alice:secret@host/v1` would put a password where every run records
its members (the run store, reports, error messages); the key belongs in an environment
variable, named with `api_key_env`. So an address with a user name or password is refused
wherever it comes from: panel.toml, a `-b` spec, or the variable an SDK reads.
"""

from __future__ import annotations

import os
import re

from ..errors import BackendSpecError

__all__ = ["credentials_problem", "redacted", "refuse_credentials", "server_url"]

# What stands before the host, as a lenient URL parser (the WHATWG one pydantic's HttpUrl
# follows) reads it: leading spaces and controls, then an optional `scheme:` and its slashes
# (any number, '/' or '\\'); then the userinfo, anything up to the last '@' before the
# host ends (at '/', '\\', '?' or '#'), white space included: an HTTP client sends a password
# with a space in it percent-encoded, and a parser drops tabs and line breaks.
_USERINFO = re.compile(r"^([\x00-\x20]*(?:(?:[A-Za-z][A-Za-z0-9+.-]*:)?[/\\]+)?)[^/\\?#]*@")


def redacted(url: str) -> str:
    """The address with what stands before its host's '@' masked: `http://***@host/v1`."""
    return _USERINFO.sub(lambda found: f"{found.group(1) or ''}***@", url, count=1)


def credentials_problem(url: str) -> str | None:
    """Why an address cannot be used: it carries a user name or password (None: it does not).
    The address is shown masked."""
    if redacted(url) == url:
        return None
    return (
        f"{redacted(url)} carries a user name or password; keys are read from the environment "
        "only: set the key in an environment variable and name it with api_key_env"
    )


def refuse_credentials(url: str | None, where: str) -> None:
    """A BackendSpecError ("{where}: ...") for an address that carries credentials."""
    problem = credentials_problem(url) if url else None
    if problem is not None:
        raise BackendSpecError(f"{where}: {problem}")


def server_url(configured: str | None, variable: str | None = None) -> str | None:
    """A member's server: its `base_url` option, else the environment `variable` its SDK
    would read (resolved here, so the server is part of the cache key); None: the provider's."""
    if configured:
        refuse_credentials(configured, "base_url")
        return configured
    found = (os.environ.get(variable) or None) if variable else None
    refuse_credentials(found, variable or "")
    return found
