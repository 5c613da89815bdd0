"""The backend contract: one async method, and a way to say what a failure means.

A backend translates a rendered request into its provider's call and the provider's answer
back into a `Reply`. Retries, rate limits, caching, budget, storage and validation live once
in the engine, never here.
"""

from __future__ import annotations

import abc
import json
import sysconfig
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..catalog import same_maker
from ..depth import Depth
from ..errors import BackendBug, BackendError, BackendSpecError, FatalError, shown
from .options import MemberOptions, OptionError

if TYPE_CHECKING:
    from .batch import BatchAPI

__all__ = [
    "Backend",
    "MemberOptions",
    "MemberSpec",
    "OptionError",
    "Reply",
    "Request",
    "Sampling",
    "Usage",
]

# Exceptions that mean a programming error when our own code raises them.
_BUG_TYPES = (LookupError, AttributeError, TypeError, NameError, AssertionError)
_PACKAGE = Path(__file__).resolve().parents[1]
# Where installed libraries live: an SDK's own TypeError is the provider's odd reply, not our bug.
_LIBRARIES = tuple(Path(p).resolve() for p in {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})


@dataclass(frozen=True)
class MemberSpec:
    """One panel member as the user wrote it, with its options as its backend's model."""

    backend: str
    model: str | None = None
    options: MemberOptions = field(default_factory=MemberOptions, compare=False, hash=False)
    #: the member's `name` in the config, if it has one
    name: str | None = None

    @property
    def text(self) -> str:
        return f"{self.backend}:{self.model}" if self.model else self.backend

    @property
    def key(self) -> str:
        """What the member is known by: its name, else its spec."""
        return self.name or self.text


@dataclass(frozen=True)
class Sampling:
    """Settings that change what a model says (so they are part of the cache key)."""

    temperature: float = 0.3
    top_p: float = 0.95
    max_tokens: int = 700
    seed: int = 1234

    def as_dict(self) -> dict[str, Any]:
        # Three times a request: a plain dict, not asdict's recursive deep copy.
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class Request:
    """One rendered review request."""

    messages: list[dict[str, str]]
    schema: dict[str, Any]
    schema_name: str
    sampling: Sampling = field(default_factory=Sampling)
    #: how much the messages ask for; a backend that compiles the schema to a grammar caps
    #: its strings by it (`panel.depth`)
    depth: Depth = "brief"


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    #: why the provider's counts cannot be believed (a string, a negative or astronomical
    #: count, none at all), when they cannot: the counts are then 0 and the request is
    #: charged at its reserved worst case (`panel.run.usage`)
    unknown: str | None = None

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
            self.unknown or other.unknown,
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
    #: the options this backend takes beyond the common ones
    options_model: ClassVar[type[MemberOptions]] = MemberOptions
    #: how a reply's structure is held when the reply's meta does not say: "grammar",
    #: "provider schema", "tool" or "validated after" (see `structured.py`)
    enforced: ClassVar[str] = "validated after"
    #: the organisation whose models this backend serves, when its provider makes them all
    default_maker: ClassVar[str | None] = None

    def __init__(self, model: str) -> None:
        self.model = model
        #: the member's `name` in panel.toml, set by the registry; the label when given
        self.member_name: str | None = None
        #: the member's options as its backend's model, set by the registry
        self.options: MemberOptions = self.options_model()

    @classmethod
    def from_spec(cls, spec: MemberSpec) -> Backend:
        """Build the backend from a parsed spec; fail early on anything missing."""
        model = spec.model or cls.default_model
        if not model:
            raise BackendSpecError(f"backend '{cls.name}' needs a model: write {cls.name}:MODEL")
        return cls(model)

    def identity(self) -> dict[str, Any]:
        """Where replies come from beyond the request itself: part of every cache key.

        Two members with the same label but another server (or another model file) must
        never share cached replies; nor two that set an option that changes what a model
        says (`MemberOptions.identity`), whether or not it shows in the request.
        """
        return {"base_url": getattr(self, "base_url", None), **self.options.identity()}

    def wire(self, request: Request) -> dict[str, Any]:
        """The request as this member sends it (in the structured form it will use, with its
        string caps and sampling extras): what the cache key hashes. Backends that shape the
        request override it with the body they send."""
        return {
            "model": self.model,
            "messages": request.messages,
            "schema": request.schema,
            "sampling": request.sampling.as_dict(),
        }

    def _where(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model, "base_url": getattr(self, "base_url", None)}

    def form_key(self) -> str:
        """What a structured-output form found for this backend is remembered under."""
        return json.dumps(self._where(), sort_keys=True)

    def connection_key(self) -> str:
        """What one provider quota is counted under: the backend, the model, the server and
        the key's variable. Members with the same connection key share one rate limiter,
        whatever their names."""
        return json.dumps({**self._where(), "api_key_env": self.options.api_key_env}, sort_keys=True)

    def default_depth(self) -> Depth:
        """How much this member writes when its config does not say: cloud models and
        servers write full reviews; the local backend decides by its model's size."""
        return "full"

    def negotiated_form(self) -> str | None:
        """The structured-output form `structured = "auto"` settled on, once it has."""
        return None

    def adopt_form(self, form: str, max_length: int | None = None) -> None:  # noqa: B027 - only negotiating backends care
        """Use a form found by an earlier process, with the string cap recorded with it,
        instead of asking the server again."""

    def string_cap(self) -> int | None:
        """The longest `maxLength` this member's schemas carry in the form it settled on
        (None: the depth's caps alone, or no caps)."""
        return None

    @property
    def maker(self) -> str | None:
        """Who made the member's model: its `maker` option, else its provider's (None: unknown)."""
        return self.options.maker or self.provider_maker()

    def provider_maker(self) -> str | None:
        """The maker known from the provider alone (a backend pointed at another server
        knows none)."""
        return self.default_maker

    def recuses_from(self, tool_maker: str | None) -> bool:
        """Whether this member leaves out a tool made by `tool_maker` (`recuse = "maker"`)."""
        return self.options.recuse == "maker" and same_maker(self.maker, tool_maker)

    @property
    def label(self) -> str:
        """How this panel member is named in the store and the record: its configured
        `name`, else `backend:model`."""
        return self.member_name or f"{self.name}:{self.model}"

    @abc.abstractmethod
    async def generate(self, request: Request) -> Reply:
        """Send one request; raise a `BackendError` subclass on failure."""

    def bug(self, exc: BaseException) -> BackendBug | None:
        """The exception as a bug report if our code raised it, naming the line in `panel/`."""
        if not isinstance(exc, _BUG_TYPES):
            return None
        tb = traceback.walk_tb(exc.__traceback__)
        frames = [(Path(frame.f_code.co_filename).resolve(), line) for frame, line in tb]
        if not frames:
            return None
        raised_in = frames[-1][0]
        in_library = any(raised_in.is_relative_to(lib) for lib in _LIBRARIES)
        if in_library and not raised_in.is_relative_to(_PACKAGE):
            return None
        ours = [(path, line) for path, line in frames if path.is_relative_to(_PACKAGE)]
        path, line = ours[-1] if ours else frames[-1]
        where = f"panel/{path.relative_to(_PACKAGE).as_posix()}" if ours else path.name
        detail = " ".join(str(exc).split())  # one line, whatever the exception holds
        if len(detail) > 200:
            detail = detail[:200] + "…"
        return BackendBug(
            f"bug in panel at {where}:{line} while {self.label} answered: "
            f"{type(exc).__name__}: {detail} (the run stopped; please report this)"
        )

    def as_backend_error(self, exc: BaseException) -> BackendError:
        """Wrap a foreign exception so the engine sees one type."""
        if isinstance(exc, BackendError):
            return exc
        detail = " ".join(str(exc).split())  # one line, however many the SDK's message has
        return FatalError(f"{type(exc).__name__}: {shown(detail, 300) if len(detail) > 300 else detail}")

    def batch_api(self) -> BatchAPI | None:
        """The provider's Batch API for this backend, if it has one (see `batch.py`)."""
        return None

    async def aclose(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release clients and connections."""
