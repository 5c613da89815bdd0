"""What the cloud backends share: reading keys and options, wait hints, rate-limit headers,
and turning a provider's failure into the `BackendError` the engine acts on.

Nothing here imports a provider SDK, so a backend module can be imported without its extra.
"""

from __future__ import annotations

import dataclasses
import errno
import math
import os
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from ..errors import (
    BackendError,
    CapabilityError,
    FatalError,
    MissingKeyError,
    RateLimitError,
    TransientError,
    UnreachableError,
)
from ..text import storable
from .options import MemberOptions
from .structured import is_refusal
from .urls import server_url

__all__ = [
    "DEFAULT_TIMEOUT",
    "Connection",
    "Describe",
    "Failure",
    "call",
    "duration_seconds",
    "env_key",
    "error_for_status",
    "finish_reason",
    "is_refused",
    "is_transport_error",
    "json_schema_format",
    "masked",
    "ratelimit_state",
    "reset_seconds",
    "retry_after",
    "scrub",
    "stainless",
]

T = TypeVar("T")

DEFAULT_TIMEOUT = 60.0
# Some SDKs put the whole response body in the message; a log line needs the start of it.
_MAX_DETAIL = 600

# Go-style durations as OpenAI writes its resets: `12ms`, `1.5s`, `6m0s`, `1h2m`.
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|h|m|s)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_STOP = {"stop", "end_turn", "stop_sequence", "eos_token", "tool_use", "tool_calls"}
_LENGTH = {"length", "max_tokens", "model_length"}


# --- keys and options -----------------------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    """Where a server backend sends and with which key, read once from the member's options:
    the server (its `base_url`, else the variable its SDK reads), the key (from `api_key_env`,
    else the backend's usual variables), and the reply timeout."""

    backend: str
    base_url: str | None
    #: the variables the key is read from, in order
    key_variables: tuple[str, ...]
    #: (variable, key) of the first one set, None when none is; never in the repr
    found: tuple[str, str] | None = dataclasses.field(repr=False)
    timeout: float

    @classmethod
    def of(
        cls, backend: str, options: MemberOptions, keys: Sequence[str], url_variable: str | None = None
    ) -> Connection:
        """`keys`: the backend's usual key variables, in order; `url_variable`: the one its SDK
        reads the server from (resolved here, so the server is part of the cache key)."""
        variables = (options.api_key_env,) if options.api_key_env else tuple(keys)
        return cls(
            backend,
            server_url(options.base_url, url_variable),
            variables,
            env_key(variables),
            options.timeout or DEFAULT_TIMEOUT,
        )

    @property
    def variable(self) -> str | None:
        """The variable the key came from."""
        return self.found[0] if self.found else None

    @property
    def key(self) -> str | None:
        return self.found[1] if self.found else None

    def require_key(self) -> str:
        """The key; a `MissingKeyError` naming the variable to set when there is none."""
        if self.found is None:
            raise MissingKeyError(self.backend, self.key_variables[0])
        return self.found[1]


def env_key(names: Iterable[str]) -> tuple[str, str] | None:
    """(variable, key) of the first variable that is set and not blank."""
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return name, value
    return None


#: how much of a secret's start counts as the secret: a quote of a body cut to a length may
#: end inside a key it repeats, and what shows of it is masked too
_SECRET_START = 8


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """Mask any secret that a server or SDK echoed back into a message, and any start of one
    (its first 8 characters and however many more follow) that a cut quote left."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = _masked_starts(text.replace(secret, "***"), secret)
    return text


def _masked_starts(text: str, secret: str) -> str:
    head = secret[:_SECRET_START]
    if len(secret) <= _SECRET_START or head not in text:
        return text
    kept, at = [], 0
    while (found := text.find(head, at)) >= 0:
        end, matched = found + len(head), len(head)
        while end < len(text) and matched < len(secret) and text[end] == secret[matched]:
            end, matched = end + 1, matched + 1
        kept += [text[at:found], "***"]
        at = end
    return "".join([*kept, text[at:]])


def masked(error: BackendError, secrets: Iterable[str | None]) -> BackendError:
    """The error with any secret its message quotes masked: a reply read after the call (a
    body that is no message, a string where an object belongs) is quoted in the reason a
    run stores, and a careless server may have put the caller's key in it."""
    text = scrub(str(error), secrets)
    if text == str(error):
        return error
    return type(error)(text, status=error.status, retry_after=error.retry_after, request_id=error.request_id)


# --- headers --------------------------------------------------------------------------------


def _lower(headers: Mapping[str, str] | None) -> dict[str, str]:
    # httpx2 headers are case-insensitive already; plain dicts (and tests) may not be.
    return {k.lower(): v for k, v in headers.items()} if headers else {}


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _seconds_until(when: datetime, now: datetime | None) -> float:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def retry_after(headers: Mapping[str, str] | None, now: datetime | None = None) -> float | None:
    """Seconds the provider asked us to wait: `retry-after-ms` wins over `retry-after`,
    which may be seconds or an HTTP date (counted from `now`, default the clock's)."""
    found = _lower(headers)
    ms = _number(found.get("retry-after-ms"))
    if ms is not None:
        return ms / 1000
    raw = found.get("retry-after")
    if raw is None:
        return None
    seconds = _number(raw)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return _seconds_until(when, now)


def duration_seconds(text: str) -> float | None:
    """`6m0s` -> 360.0; None when the text is not a Go-style duration."""
    text = text.strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def reset_seconds(text: str, now: datetime | None = None) -> float | None:
    """A reset as seconds from `now`, whether written as a duration, plain seconds or RFC 3339."""
    for parse in (duration_seconds, _number):
        value = parse(text)
        if value is not None:
            return value
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return _seconds_until(when, now)


def ratelimit_state(headers: Mapping[str, str] | None, now: datetime | None = None) -> dict[str, float | int]:
    """The provider's rate-limit headers in one shape; only the keys that were present.

    Anthropic writes `anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`;
    OpenAI (and servers copying it) writes `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`.
    """
    found = _lower(headers)
    names: dict[str, str] = {}
    for what in ("requests", "tokens"):
        for field in ("limit", "remaining", "reset"):
            candidates = [f"anthropic-ratelimit-{what}-{field}", f"x-ratelimit-{field}-{what}"]
            if what == "tokens":
                # Some Anthropic tiers only report input tokens.
                candidates.append(f"anthropic-ratelimit-input-tokens-{field}")
            name = next((c for c in candidates if c in found), None)
            if name is not None:
                names[f"{field}_{what}" if field != "reset" else f"reset_{what}_s"] = found[name]
    state: dict[str, float | int] = {}
    for key, raw in names.items():
        if key.startswith("reset_"):
            seconds = reset_seconds(raw, now)
            if seconds is not None:
                state[key] = round(seconds, 3)
        else:
            number = _number(raw)
            if number is not None:
                state[key] = int(number)
    return state


# --- outcomes -------------------------------------------------------------------------------


def finish_reason(raw: object) -> str | None:
    """`stop`, `length`, or whatever else the provider said (enums are read by value)."""
    if raw is None:
        return None
    value = str(getattr(raw, "value", raw))
    if value in _LENGTH:
        return "length"
    return "stop" if value in _STOP else value


#: Words of a 429 that means the account has no quota left (OpenAI's `insufficient_quota`).
_NO_QUOTA = ("insufficient_quota", "exceeded your current quota")


def error_for_status(
    backend: str,
    status: int | None,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> BackendError:
    """The error the engine should see for an HTTP failure."""
    cls: type[BackendError]
    if status == 429 and any(word in detail for word in _NO_QUOTA):
        # Out of credit, not over a rate: waiting never helps, and a 429 is waited out for
        # minutes before a review gives up.
        cls = FatalError
    elif status == 429:
        cls = RateLimitError
    elif is_refusal(status, detail):
        # The server does not take the structured-output form: asking again never helps.
        cls = CapabilityError
    elif status is not None and (status in (408, 409) or status >= 500):
        # 529 is Anthropic's "overloaded": a busy server, like a 503.
        cls = TransientError
    else:
        cls = FatalError
    where = f" HTTP {status}" if status is not None else ""
    return cls(
        f"{backend}{where}: {_cut(detail)}",
        status=status,
        retry_after=retry_after(headers),
        request_id=request_id,
    )


@dataclass(frozen=True)
class Failure:
    """What an SDK's exception says, in the terms the engine acts on."""

    #: the HTTP status, when the provider answered at all
    status: int | None = None
    detail: str = ""
    headers: Mapping[str, str] | None = None
    request_id: str | None = None
    #: no answer came (timeout, reset, refused): worth another try
    transient: bool = False


#: Reads one SDK's exception; None when the exception is not that SDK's.
Describe = Callable[[Exception], Failure | None]


async def call(backend: str, secrets: Iterable[str | None], send: Awaitable[T], describe: Describe) -> T:
    """Await one provider call and turn its failure into the `BackendError` the engine acts on.

    An exception neither `describe` nor the transport check knows propagates unchanged: the
    engine stops the run if it is a bug in our code, and fails the review otherwise.
    """
    try:
        return await send
    except Exception as exc:
        failure = describe(exc)
        if failure is None and is_transport_error(exc):
            failure = Failure(detail=f"{type(exc).__name__}: {exc}", transient=True)
        if failure is None:
            raise
        detail = scrub(failure.detail or type(exc).__name__, secrets)
        if failure.transient:
            kind = UnreachableError if is_refused(exc) else TransientError
            error: BackendError = kind(f"{backend}: {_cut(detail)}", request_id=failure.request_id)
        else:
            error = error_for_status(
                backend, failure.status, detail, headers=failure.headers, request_id=failure.request_id
            )
    # Raised out here so the SDK's exception, which may quote the key, is not chained.
    raise error


def stainless(sdk: Any) -> Describe:
    """`Describe` for the SDKs that share one generated error tree (openai, anthropic)."""

    def describe(exc: Exception) -> Failure | None:
        if isinstance(exc, sdk.APIStatusError):
            # `api_message` (the body's own message) is new in the 2.x anthropic SDKs.
            detail = getattr(exc, "api_message", None) or exc.message
            return Failure(exc.status_code, detail, exc.response.headers, exc.request_id)
        if isinstance(exc, sdk.APIConnectionError):  # also timeouts, resets and refused connections
            return Failure(detail=str(exc), transient=True)
        if isinstance(exc, sdk.APIError):
            return Failure(detail=str(exc))
        return None

    return describe


def _cut(detail: str) -> str:
    """The detail on one line (an SDK may quote a whole multi-line body), cut to a readable
    length, storable (an SDK's parser leaves the lone surrogates a body escapes)."""
    detail = " ".join(storable(detail).split())
    return detail[:_MAX_DETAIL] + "…" if len(detail) > _MAX_DETAIL else detail


def is_refused(exc: BaseException, depth: int = 8) -> bool:
    """Whether a failed request met a closed port (nothing listens at the address): the
    exception or one it was raised from is the socket's refusal, or a group of errors (one
    for each address of the host's name, as anyio raises them) each of which is one."""
    seen: BaseException | None = exc
    for _ in range(depth):  # the SDKs wrap the socket's error two or three times
        if seen is None:
            return False
        if isinstance(seen, BaseExceptionGroup):  # `localhost` is often ::1 and 127.0.0.1
            return all(is_refused(each, depth - 1) for each in seen.exceptions)
        cause = getattr(seen, "os_error", None)  # aiohttp's connector error holds the socket's
        if isinstance(seen, ConnectionRefusedError) or getattr(seen, "errno", None) == errno.ECONNREFUSED:
            return True
        if isinstance(cause, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def is_transport_error(exc: BaseException) -> bool:
    """Timeouts, refused, reset or dropped connections: worth another try."""
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    try:
        import httpx2
    except ImportError:
        return False
    return isinstance(exc, httpx2.TimeoutException | httpx2.NetworkError | httpx2.RemoteProtocolError)


def json_schema_format(schema_name: str, schema: dict[str, Any], *, strict: bool = True) -> dict[str, Any]:
    """The `response_format` of an OpenAI-style chat request that holds the reply to a schema.

    The review schemas are already strict-shaped (closed objects, every field required).
    """
    spec: dict[str, Any] = {"name": schema_name, "schema": schema}
    if strict:
        spec["strict"] = True
    return {"type": "json_schema", "json_schema": spec}
