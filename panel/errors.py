"""Errors of the panel, as one tree.

PanelError
├── UserError                 bad input from the user: exit code 2, one clear line
│   ├── CatalogError          a catalog file that cannot be read (names file, line, field)
│   ├── UnknownToolError      a tool id that is not in the catalog (suggests close ids)
│   ├── PersonaError          a persona file that cannot be read, or an unknown persona id
│   ├── BackendSpecError      an unknown backend, a bad `backend:model`, a missing GGUF
│   ├── ConfigError           a panel.toml that cannot be read
│   ├── MissingDependencyError  an optional extra is not installed (names the pip command)
│   │   └── MissingExtraError     the same, for a feature such as plots or Parquet
│   └── MissingKeyError       a provider key is not in the environment (names the variable)
├── BackendBug                our own code failed inside a backend: exit code 70, stops the run
└── BackendError              a call to a model failed; `kind` says how the engine treats it
    ├── RateLimitError        kind="rate_limit": wait (the provider's hint if any), retry
    ├── TransientError        kind="transient": back off, retry
    │   └── UnreachableError  nothing listens at the server's address (connection refused)
    └── FatalError            kind="fatal": not retried
        └── CapabilityError   kind="capability": the server does not take this structured-output
                              form; never retried, the backend may fall back to another form
"""

from __future__ import annotations

from typing import Literal

from ._about import install_hint

__all__ = [
    "BackendBug",
    "BackendError",
    "BackendSpecError",
    "CapabilityError",
    "CatalogError",
    "ConfigError",
    "ErrorKind",
    "FatalError",
    "MissingDependencyError",
    "MissingExtraError",
    "MissingKeyError",
    "PanelError",
    "PersonaError",
    "RateLimitError",
    "TransientError",
    "UnknownToolError",
    "UnreachableError",
    "UserError",
    "shown",
]

ErrorKind = Literal["rate_limit", "transient", "fatal", "capability"]


def shown(value: object, limit: int = 80) -> str:
    """A value echoed in an error message: its repr, cut to about `limit` characters with "…".

    Input can be any size (a 1 MB name), and an error line must stay readable; repr also
    turns line breaks and escape sequences into visible text.
    """
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + "…"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


class PanelError(Exception):
    """Base of every error the panel raises on purpose."""


class UserError(PanelError):
    """The user gave input we cannot use. The CLI prints the message and exits with 2."""

    exit_code = 2


class CatalogError(UserError):
    pass


class UnknownToolError(UserError):
    pass


class PersonaError(UserError):
    pass


class BackendSpecError(UserError):
    pass


class ConfigError(UserError):
    pass


class MissingDependencyError(UserError):
    def __init__(self, backend: str, extra: str, module: str) -> None:
        super().__init__(f"backend '{backend}' needs the Python package '{module}': {install_hint(extra)}")


class MissingExtraError(MissingDependencyError):
    """A feature (not a backend) needs an optional extra; one line naming the pip command."""

    def __init__(self, feature: str, module: str, extra: str) -> None:
        # The parent's message speaks of backends; keep its type, say it for a feature.
        UserError.__init__(self, f"{feature} needs the Python package '{module}': {install_hint(extra)}")


class MissingKeyError(UserError):
    def __init__(self, backend: str, variable: str) -> None:
        super().__init__(f"backend '{backend}' needs an API key: set the environment variable {variable}")


class BackendBug(PanelError):
    """A KeyError, TypeError, ... raised by our own code inside a backend's call.

    Storing it as one more failed review would hide it in the record; it stops the run,
    and the CLI prints one line saying where it happened and exits with 70 (EX_SOFTWARE).
    """

    exit_code = 70


class BackendError(PanelError):
    """A model call failed. Adapters raise the subclass that says what to do next."""

    kind: ErrorKind = "fatal"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.request_id = request_id


class RateLimitError(BackendError):
    kind: ErrorKind = "rate_limit"


class TransientError(BackendError):
    kind: ErrorKind = "transient"


class UnreachableError(TransientError):
    """The server refused the connection: nothing listens at its address (it was never
    started, or its process died). Retried like any transient fault; a run stops sending to
    a member whose request met it on every try left (`panel.run.outage`)."""


class FatalError(BackendError):
    kind: ErrorKind = "fatal"


class CapabilityError(FatalError):
    """The server refused the way we asked for structured output (a 400/422, or a 500 whose
    body is a request-validation error naming the format). Asking again the same way never
    helps; asking another way may."""

    kind: ErrorKind = "capability"
