"""A member's options, typed: the fields every member takes, and the base each backend's own
options model extends.

Options are validated once, where they are read (panel.toml, a `-b` spec with a recorded
run's options), into the backend's model; from there the member carries that object to its
backend, its rate limiter, its price, its depth and the engine. Adding an option is one field
on one model (and whatever reads it).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, TypeAdapter, ValidationError, field_validator

from ..catalog import maker_problem
from ..depth import Depth
from ..errors import BackendSpecError, shown
from .structured import FORMS, Form, Structured
from .urls import credentials_problem

__all__ = ["NOT_IN_CACHE_KEY", "MemberOptions", "OptionError", "StructuredOptions"]

_HTTP_URL: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)

#: Options that never change what a model says, left out of a member's identity and so of
#: every cache key: how long to wait, how fast to send, which key, what it costs, and headers
#: (they may carry secrets). `base_url` is resolved by the backend (it may come from the
#: environment) and enters the identity as resolved; `depth` and `max_tokens` reach the
#: request itself (its prompt and token limit), which the key hashes as sent.
NOT_IN_CACHE_KEY = frozenset(
    {
        "api_key_env",
        "timeout",
        "concurrency",
        "rpm",
        "tpm",
        "headroom",
        "route",
        "price_input",
        "price_output",
        "base_url",
        "depth",
        "max_tokens",
        "headers",
        "organization",
        "project",
        "maker",
        "recuse",
    }
)


class OptionError(BackendSpecError):
    """An option a backend does not take, or a value it cannot use; names the option."""

    def __init__(self, option: str, reason: str) -> None:
        super().__init__(f"{option}: {reason}")
        self.option = option
        self.reason = reason


class MemberOptions(BaseModel):
    """What every member takes whatever its backend; each backend's model adds its own fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = Field(default=None, description="The server's URL (unset: the provider's).")
    api_key_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="The environment variable holding the key (unset: the backend's usual one).",
    )
    timeout: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="Seconds to wait for one reply."
    )
    concurrency: int | None = Field(default=None, ge=1, description="Requests in flight at once.")
    rpm: float | None = Field(default=None, gt=0, allow_inf_nan=False, description="Requests per minute.")
    tpm: float | None = Field(default=None, gt=0, allow_inf_nan=False, description="Tokens per minute.")
    headroom: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="The fraction of a rate limit used (unset: the limiter's default, 0.98).",
    )
    route: Literal["live", "batch"] | None = Field(
        default=None, description="live (default) or batch: the provider's Batch API, at its batch price."
    )
    price_input: float | None = Field(default=None, ge=0, description="USD per million input tokens.")
    price_output: float | None = Field(default=None, ge=0, description="USD per million output tokens.")
    depth: Depth | None = Field(
        default=None,
        description="brief or full: how much the member writes (unset: by backend, see panel.depth).",
    )
    max_tokens: int | None = Field(
        default=None, ge=32, description="Token limit of a reply (unset: by depth)."
    )
    maker: str | None = Field(
        default=None,
        min_length=1,
        description='The organisation that made the model ("Meta", "Alibaba"; unset: the backend\'s '
        "own for OpenAI, Anthropic and Mistral AI, else unknown).",
    )
    recuse: Literal["maker", "none"] | None = Field(
        default=None,
        description='"maker": the member does not review tools whose catalog maker is its own; '
        '"none": it reviews every tool (unset: as the panel\'s `recuse` says, else every tool).',
    )

    @field_validator("maker")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        problem = None if value is None else maker_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        problem = credentials_problem(value)
        if problem is not None:
            raise ValueError(problem)
        try:
            url = _HTTP_URL.validate_python(value)
        except ValidationError:
            url = None
        if url is None or not url.host:
            raise ValueError(f"must be an http:// or https:// URL, not {shown(value)}")
        return value  # as written: the server is part of the cache key

    @classmethod
    def own_fields(cls) -> list[str]:
        """The options this backend takes beyond the ones every member takes."""
        return sorted(set(cls.model_fields) - set(MemberOptions.model_fields))

    @classmethod
    def of(cls, backend: str, options: Mapping[str, Any] | MemberOptions | None = None) -> Self:
        """The options as this backend's model; an `OptionError` naming the first bad one."""
        if isinstance(options, cls):
            return options
        given = options.written() if isinstance(options, MemberOptions) else dict(options or {})
        if "api_key" in given:
            # A key written into a config file ends up in version control and in logs.
            raise OptionError(
                "api_key",
                "do not put an API key in the options: set it in an environment variable "
                "and name that variable with api_key_env",
            )
        try:
            return cls.model_validate(given)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            option = ".".join(str(part) for part in first["loc"]) or "options"
            message = first["msg"].removeprefix("Value error, ")
            if first["type"] == "extra_forbidden":
                own = cls.own_fields()
                takes = f"its own options are: {', '.join(own)}" if own else "it has no options of its own"
                reason = f"backend '{backend}' has no such option ({takes})"
            elif option in MemberOptions.model_fields:
                reason = message  # the same for every backend
            else:
                reason = f"{message} (backend '{backend}')"
            raise OptionError(option, reason) from None

    def written(self) -> dict[str, Any]:
        """The options as set (in panel.toml, on the command line, or by the run): what a run
        records, so a resume reads them back the same."""
        return self.model_dump(mode="json", exclude_unset=True)

    @cached_property
    def _identity(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude=set(NOT_IN_CACHE_KEY), exclude_defaults=True)

    def identity(self) -> dict[str, Any]:
        """The options that can change what a model says and are set to other than their
        default: part of the member's identity, and so of every cache key."""
        return dict(self._identity)  # worked out once: the options never change

    def with_(self, backend: str, **changes: Any) -> Self:
        """A copy with `changes` set (as if written), validated like the rest: an `OptionError`
        names a bad one."""
        return type(self).of(backend, {**self.written(), **changes})


class StructuredOptions(MemberOptions):
    """A backend that holds the reply to the schema in one of the shared forms
    (`panel.backends.structured`); each says which forms it takes."""

    #: the forms this backend can send a schema in; `structured` names one of them, or auto
    forms: ClassVar[tuple[Form, ...]] = FORMS
    #: this backend's older names for some forms, still read
    aliases: ClassVar[dict[str, Form]] = {}

    structured: Structured = Field(
        default="auto",
        description="How the reply is held to the review schema: auto (the strongest form the "
        "server takes), json_schema, json_object, tools or prompt, as the backend takes them.",
    )

    @field_validator("structured", mode="before")
    @classmethod
    def _a_form_it_takes(cls, value: object) -> object:
        value = cls.aliases.get(value, value) if isinstance(value, str) else value
        if value != "auto" and value not in cls.forms:
            takes = ", ".join(f'"{form}"' for form in ("auto", *cls.forms))
            raise ValueError(f"structured takes {takes}, not {shown(value)}")
        return value
