"""A member's server address: where it is read from, and the rule that it carries no key.

A URL such as `http://alice:secret@host/v1` would put a password where every run records
its members (the run store, reports, error messages); the key belongs in an environment
variable, named with `api_key_env`. So an address with a user name or password is refused
wherever it comes from: panel.toml, a `-b` spec, or the variable an SDK reads.
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote_plus

from ..errors import BackendSpecError

__all__ = ["credentials_problem", "names_a_credential", "redacted", "refuse_credentials", "server_url"]

#: a word of a name that carries a credential (`Authorization`, `api-key`, `X-Auth-Token`,
#: `Cookie`, a body's `api_key`, a query's `key`)
_CREDENTIAL_WORD = re.compile(
    r"(?:^|[-_])(?:key|apikey|token|secret|password|passwd|auth|authorization|cookie|session|"
    r"signature|sig|credentials?)(?:[-_]|$)"
)


def names_a_credential(name: str) -> bool:
    """Whether a header, body field or query parameter of this name would carry a
    credential, whatever its case: never written in panel.toml, since a run records its
    members' options."""
    return _CREDENTIAL_WORD.search(name.strip().lower()) is not None


# What stands before the host, as a lenient URL parser (the WHATWG one pydantic's HttpUrl
# follows) reads it: leading spaces and controls, then an optional `scheme:` and its slashes
# (any number, '/' or '\\'); then the userinfo, anything up to the last '@' before the
# host ends (at '/', '\\', '?' or '#'), white space included: an HTTP client sends a password
# with a space in it percent-encoded, and a parser drops tabs and line breaks.
_USERINFO = re.compile(r"^([\x00-\x20]*(?:(?:[A-Za-z][A-Za-z0-9+.-]*:)?[/\\]+)?)[^/\\?#]*@")


def _query_masked(url: str) -> str:
    """The address with the value of each query parameter named like a credential masked:
    `https://host/v1?api-key=***`."""
    head, mark, rest = url.partition("?")
    if not mark:
        return url
    query, hash_, fragment = rest.partition("#")
    parts = []
    for part in query.split("&"):
        name, eq, value = part.partition("=")
        parts.append(f"{name}=***" if eq and value and names_a_credential(unquote_plus(name)) else part)
    return f"{head}?{'&'.join(parts)}{hash_}{fragment}"


def redacted(url: str) -> str:
    """The address with what stands before its host's '@' masked (`http://***@host/v1`), and
    any key in its query (`?api-key=***`)."""
    return _query_masked(_USERINFO.sub(lambda found: f"{found.group(1) or ''}***@", url, count=1))


def credentials_problem(url: str) -> str | None:
    """Why an address cannot be used: it carries a user name or password, or a key in its
    query (None: it does not). The address is shown masked."""
    masked = redacted(url)
    if masked == url:
        return None
    what = "a user name or password" if _USERINFO.search(url) else "a key in its query"
    return (
        f"{masked} carries {what}; keys are read from the environment "
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
