"""The backend contract: one async method, and a way to say what a failure means.

A backend translates a rendered request into its provider's call and the provider's answer
back into a `Reply`. Retries, rate limits, caching, budget, storage and validation live once
in the engine, never here.
"""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import BackendError, BackendSpecError, ErrorKind, FatalError

if TYPE_CHECKING:
    from .registry import MemberSpec

__all__ = ["Backend", "Reply", "Request", "Sampling", "Usage"]


@dataclass(frozen=True)
class Sampling:
    """Settings that change what a model says (so they are part of the cache key)."""

    temperature: float = 0.3
    top_p: float = 0.95
    max_tokens: int = 700
    seed: int = 1234

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Request:
    """One rendered review request."""

    messages: list[dict[str, str]]
    schema: dict[str, Any]
    schema_name: str
    sampling: Sampling = field(default_factory=Sampling)


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
        )


@dataclass
class Reply:
    """What the model said, unparsed, and what the provider said about it."""

    text: str
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    finish_reason: str | None = None
    request_id: str | None = None
    # Provider facts worth keeping (rate-limit headers, model version); never secrets.
    meta: dict[str, Any] = field(default_factory=dict)


class Backend(abc.ABC):
    """Base of every backend. Subclasses set the class attributes and implement `generate`."""

    name: ClassVar[str]
    #: the pip extra that installs this backend's SDK, if any
    extra: ClassVar[str | None] = None
    #: the environment variable holding the key, if the backend needs one
    key_env: ClassVar[str | None] = None
    #: how many requests this backend may have in flight by default
    default_concurrency: ClassVar[int] = 4
    #: seconds to wait for one reply before giving up on it (None: no limit)
    default_timeout: ClassVar[float | None] = None
    #: the model used when the spec names none
    default_model: ClassVar[str | None] = None

    def __init__(self, model: str) -> None:
        self.model = model

    @classmethod
    def from_spec(cls, spec: MemberSpec) -> Backend:
        """Build the backend from a parsed spec; fail early on anything missing."""
        model = spec.model or cls.default_model
        if not model:
            raise BackendSpecError(f"backend '{cls.name}' needs a model: write {cls.name}:MODEL")
        return cls(model)

    def identity(self) -> dict[str, Any]:
        """Where replies come from, beyond the model name: part of every cache key.

        Two members with the same label but another server (or another model file) must
        never share cached replies.
        """
        return {"base_url": getattr(self, "base_url", None)}

    @property
    def label(self) -> str:
        """How this panel member is named in records: `backend:model`."""
        return f"{self.name}:{self.model}"

    @abc.abstractmethod
    async def generate(self, request: Request) -> Reply:
        """Send one request; raise a `BackendError` subclass on failure."""

    def classify(self, exc: BaseException) -> ErrorKind:
        """Say whether an exception is a rate limit, transient or fatal."""
        if isinstance(exc, BackendError):
            return exc.kind
        return "fatal"

    def wait_hint(self, exc: BaseException) -> float | None:
        """Seconds the provider asked us to wait before the next try, if it said."""
        return exc.retry_after if isinstance(exc, BackendError) else None

    def as_backend_error(self, exc: BaseException) -> BackendError:
        """Wrap a foreign exception so the engine sees one type."""
        if isinstance(exc, BackendError):
            return exc
        return FatalError(f"{type(exc).__name__}: {exc}")

    async def aclose(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release clients and connections."""
