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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from ..depth import Depth
from ..errors import BackendBug, BackendError, BackendSpecError, FatalError, shown

if TYPE_CHECKING:
    from .batch import BatchAPI

__all__ = [
    "COMMON_OPTIONS",
    "Backend",
    "BackendOptions",
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

#: What every member takes whatever its backend; the engine and the pipeline read these.
COMMON_OPTIONS = frozenset(
    {"base_url", "api_key_env", "timeout", "concurrency", "rpm", "tpm", "price_input", "price_output"}
    | {"headroom"}  # the fraction of a rate limit the member uses
    | {"route"}  # "live" (default) or "batch": through the provider's Batch API
    | {"depth", "max_tokens"}  # how much the member writes, and its reply's token limit
)


@dataclass(frozen=True)
class MemberSpec:
    """One panel member as the user wrote it, plus its configured options."""

    backend: str
    model: str | None = None
    options: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    #: the member's `name` in the config, if it has one
    name: str | None = None

    @property
    def text(self) -> str:
        return f"{self.backend}:{self.model}" if self.model else self.backend

    @property
    def key(self) -> str:
        """What the member is known by: its name, else its spec."""
        return self.name or self.text


class OptionError(BackendSpecError):
    """An option a backend does not take, or a value it cannot use; names the option."""

    def __init__(self, option: str, reason: str) -> None:
        super().__init__(f"{option}: {reason}")
        self.option = option
        self.reason = reason


class BackendOptions(BaseModel):
    """The options one backend takes beyond `COMMON_OPTIONS`; each backend adds its fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def of(cls, backend: str, options: Mapping[str, Any]) -> Self:
        """Validate the backend's own options out of a member's options; refuse unknown keys."""
        own = {k: v for k, v in options.items() if k not in COMMON_OPTIONS}
        if "api_key" in own:
            # A key written into a config file ends up in version control and in logs.
            raise OptionError(
                "api_key",
                "do not put an API key in the options: set it in an environment variable "
                "and name that variable with api_key_env",
            )
        try:
            return cls.model_validate(own)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            option = ".".join(str(part) for part in first["loc"]) or "options"
            if first["type"] == "extra_forbidden":
                known = ", ".join(sorted(cls.model_fields))
                takes = f"its own options are: {known}" if known else "it has no options of its own"
                reason = f"backend '{backend}' has no such option ({takes})"
            else:
                reason = f"{first['msg'].removeprefix('Value error, ')} (backend '{backend}')"
            raise OptionError(option, reason) from None


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
    options_model: ClassVar[type[BackendOptions]] = BackendOptions
    #: how a reply's structure is held when the reply's meta does not say: "grammar",
    #: "provider schema", "tool" or "validated after" (see `structured.py`)
    enforced: ClassVar[str] = "validated after"

    def __init__(self, model: str) -> None:
        self.model = model
        #: the member's `name` in panel.toml, set by the registry; the label when given
        self.member_name: str | None = None

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

    def form_key(self) -> str:
        """What a structured-output form found for this backend is remembered under."""
        where = {"backend": self.name, "model": self.model, "base_url": getattr(self, "base_url", None)}
        return json.dumps(where, sort_keys=True)

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
