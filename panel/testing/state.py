"""The fake provider's knobs and its books: the rate window, the counters, the fault draw.

Kept apart from the HTTP handling in `fake_provider`; everything here runs under the one
lock of `State`.
"""

from __future__ import annotations

import copy
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from panel.testing import hostile
from panel.testing.batch_book import Book
from panel.testing.wire import RateState

__all__ = ["FAULT_KINDS", "STRUCTURED_FORMS", "Knobs", "State", "Window"]

FAULT_KINDS: tuple[str, ...] = (
    "500",
    "503",
    "529",
    "reset",
    "hang",
    "malformed",
    "schema_violation",
    "length",
)
#: Structured-output forms as the provider parses them (see `wire.Form`).
STRUCTURED_FORMS: tuple[str, ...] = ("json_schema", "tool", "output_config", "tgi_grammar", "json_object")
#: the poison knobs and the kinds each takes
_POISONS: dict[str, Any] = {
    "poison": hostile.LIVE,
    "batch_poison": hostile.LINES,
    "batch_status_poison": hostile.STATUS,
}
# Advertised when a limit is off, so the headers stay present and still true:
# the server really does accept at least this much.
_NOMINAL_RPM = 1_000_000
_NOMINAL_TPM = 1_000_000_000


@dataclass(frozen=True)
class Knobs:
    """Run-time behaviour; every field is a constructor kwarg, a CLI flag and a config key."""

    latency: float = 0.0  # seconds before each reply
    latency_jitter: float = 0.0  # plus uniform [0, jitter)
    rpm: int = 0  # requests per window, 0 = unlimited
    tpm: int = 0  # tokens (prompt + reply estimate) per window, 0 = unlimited
    rate_window: float = 60.0  # sliding window length; shorten it to test retry waits
    # The period the rate-limit headers state the limit for, in seconds (0: rate_window).
    # 60 with rpm=10 and rate_window=1 is a 600/minute limit counted per second, as said
    # by providers that quantize their per-minute limits.
    limit_period: float = 0.0
    rate_headers: bool = True  # send x-ratelimit-* / anthropic-ratelimit-*; retry-after always
    fault_rate: float = 0.0  # probability that a request draws a fault
    faults: tuple[str, ...] = FAULT_KINDS  # kinds to draw from, uniformly
    fault_seed: int = 0
    hang_seconds: float = 30.0  # how long a `hang` fault stalls before answering
    history: int = 50  # request records kept for `stats()["recent"]`
    # Forms answered as llama-cpp-python answers a response_format it does not know: HTTP 500
    # with a request-validation body.
    refuse_forms: tuple[str, ...] = ()
    # Forms whose schema is ignored: the reply is some JSON object, not the one asked for.
    ignore_forms: tuple[str, ...] = ()
    # The Batch APIs (see `batches`): seconds from creation to the end of a batch (0: ended at
    # the first look after creation), the shares of its requests errored and expired (drawn
    # from `fault_seed`), an output file cut mid-line, and every new batch failing validation.
    batch_seconds: float = 0.0
    batch_error_rate: float = 0.0
    batch_expire_rate: float = 0.0
    batch_partial: bool = False
    batch_fail_validation: bool = False
    # Hostile replies (see `hostile`): a live reply's body poisoned, a batch results line
    # poisoned, for requests whose body contains `poison_match` (all when empty); a batch's
    # answers under each other's custom_ids; every batch object shown bent.
    poison: str = ""
    poison_match: str = ""
    batch_poison: str = ""
    batch_rotate: bool = False
    batch_status_poison: str = ""
    # A server that dies, as llama-cpp-python's does on a grammar it cannot compile: the
    # request after `die_after` requests (0: never), or one whose schema holds a string cap
    # longer than `crash_max_length` beyond its minLength (0: never), has its connection
    # dropped, and the port closes for good: every later connection is refused.
    die_after: int = 0
    crash_max_length: int = 0

    def updated(self, changes: dict[str, Any]) -> Knobs:
        known = {f.name: f for f in fields(self)}
        unknown = set(changes) - set(known)
        if unknown:
            raise ValueError(f"unknown knobs: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for name, raw in changes.items():
            if name == "faults":
                kinds = raw.split(",") if isinstance(raw, str) else list(raw)
                kinds = [str(k).strip() for k in kinds if str(k).strip()]
                bad = set(kinds) - set(FAULT_KINDS)
                if bad or not kinds:
                    raise ValueError(f"faults must be a non-empty subset of {FAULT_KINDS}")
                values[name] = tuple(kinds)
            elif name in ("refuse_forms", "ignore_forms"):
                forms = raw.split(",") if isinstance(raw, str) else list(raw)
                forms = [str(f).strip() for f in forms if str(f).strip()]
                if set(forms) - set(STRUCTURED_FORMS):
                    raise ValueError(f"{name} must be a subset of {STRUCTURED_FORMS}")
                values[name] = tuple(forms)
            elif name in _POISONS:
                kind = str(raw).strip()
                if kind and kind not in _POISONS[name]:
                    raise ValueError(f"{name} must be one of {sorted(_POISONS[name])}")
                values[name] = kind
            elif name == "poison_match":
                values[name] = str(raw)
            elif name in ("rpm", "tpm", "fault_seed", "history", "die_after", "crash_max_length"):
                values[name] = int(raw)
            elif name in ("rate_headers", "batch_partial", "batch_fail_validation", "batch_rotate"):
                values[name] = _flag(raw)
            else:
                values[name] = float(raw)
        new = replace(self, **values)
        if not 0.0 <= new.fault_rate <= 1.0:
            raise ValueError("fault_rate must be within [0, 1]")
        shares = (new.batch_error_rate, new.batch_expire_rate)
        if min(shares) < 0 or sum(shares) > 1.0:
            raise ValueError("batch_error_rate and batch_expire_rate must be >= 0 and sum to <= 1")
        if (
            min(
                new.latency,
                new.latency_jitter,
                new.rpm,
                new.tpm,
                new.hang_seconds,
                new.limit_period,
                new.batch_seconds,
            )
            < 0
        ):
            raise ValueError(
                "latency, jitter, rpm, tpm, hang_seconds, limit_period and batch_seconds must be >= 0"
            )
        if new.rate_window <= 0 or new.history < 1:
            raise ValueError("rate_window must be > 0 and history >= 1")
        return new


def _flag(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a true/false value: {raw!r}")


class Window:
    """Sliding-window request and token accounting shared by all providers."""

    def __init__(self) -> None:
        self.entries: deque[tuple[float, int]] = deque()
        self.tokens = 0

    def decide(self, knobs: Knobs, tokens: int, now: float) -> tuple[bool, RateState]:
        span = knobs.rate_window
        while self.entries and self.entries[0][0] <= now - span:
            self.tokens -= self.entries.popleft()[1]
        over_requests = knobs.rpm > 0 and len(self.entries) + 1 > knobs.rpm
        over_tokens = knobs.tpm > 0 and self.tokens + tokens > knobs.tpm
        admitted = not (over_requests or over_tokens)
        retry_after: float | None = None
        if admitted:
            self.entries.append((now, tokens))
            self.tokens += tokens
        else:
            waits = []
            if over_requests:
                waits.append(self.entries[0][0] + span - now)
            if over_tokens:
                waits.append(self._token_wait(knobs.tpm, tokens, now, span))
            retry_after = max(waits)
        # The headers state the window's limit per `limit_period`, as providers state per minute.
        scale = knobs.limit_period / span if knobs.limit_period else 1.0
        limit_r = round(knobs.rpm * scale) if knobs.rpm else _NOMINAL_RPM
        limit_t = round(knobs.tpm * scale) if knobs.tpm else _NOMINAL_TPM
        oldest = self.entries[0][0] + span - now if self.entries else 0.0
        return admitted, RateState(
            limit_requests=limit_r,
            remaining_requests=max(0, limit_r - round(len(self.entries) * scale)),
            reset_requests=oldest,
            limit_tokens=limit_t,
            remaining_tokens=max(0, limit_t - round(self.tokens * scale)),
            reset_tokens=oldest,
            retry_after=retry_after,
        )

    def _token_wait(self, tpm: int, tokens: int, now: float, span: float) -> float:
        if tokens > tpm:
            return span  # can never fit; a real API says "request too large"
        freed = 0
        for started, used in self.entries:
            freed += used
            if self.tokens - freed + tokens <= tpm:
                return started + span - now
        return span

    def over(self, knobs: Knobs) -> bool:
        return (knobs.rpm > 0 and len(self.entries) > knobs.rpm) or (
            knobs.tpm > 0 and self.tokens > knobs.tpm
        )


class State:
    """Knobs, counters and the rate window behind one lock."""

    def __init__(self, knobs: Knobs, clock: Callable[[], float] = time.monotonic) -> None:
        self.lock = threading.Lock()
        self.knobs = knobs
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        """Zero the counters and the rate window and re-seed the fault RNG; knobs stay."""
        self.window = Window()
        self.fault_rng = random.Random(self.knobs.fault_seed)
        self.jitter_rng = random.Random(self.knobs.fault_seed + 1)
        self.requests = 0
        self.by_provider: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.by_form: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.body_hashes: Counter[str] = Counter()
        self.rate_limited = 0
        self.over_limit_served = 0
        #: requests the rate window let through, and when it counted the first and the last
        self.admitted = 0
        self.admitted_span: list[float] = []
        self.in_flight = 0
        self.in_flight_max = 0
        #: the waits the server chose (latency, hangs), in seconds: tests read these, not a clock
        self.delays: deque[float] = deque(maxlen=self.knobs.history)
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.recent: deque[dict[str, Any]] = deque(maxlen=self.knobs.history)
        #: the Batch APIs' files, batches and counters (see `batches`)
        self.batches = Book()
        self.batch_rng = random.Random(self.knobs.fault_seed + 2)

    def configure(self, changes: dict[str, Any]) -> None:
        new = self.knobs.updated(changes)
        if new.fault_seed != self.knobs.fault_seed:
            self.fault_rng = random.Random(new.fault_seed)
            self.jitter_rng = random.Random(new.fault_seed + 1)
            self.batch_rng = random.Random(new.fault_seed + 2)
        if new.history != self.knobs.history:
            self.recent = deque(self.recent, maxlen=new.history)
        self.knobs = new

    def snapshot(self) -> dict[str, Any]:
        batches = self.batches.snapshot(self.clock())
        return {
            "batches": batches,
            "batch_duplicates": sum(batches["duplicates"].values()),
            "requests": self.requests,
            "by_provider": dict(self.by_provider),
            "by_status": dict(self.by_status),
            "by_form": dict(self.by_form),
            "faults": dict(self.faults),
            "rate_limited": self.rate_limited,
            "over_limit_served": self.over_limit_served,
            "admitted": self.admitted,
            "admitted_span": list(self.admitted_span),
            "in_flight": self.in_flight,
            "in_flight_max": self.in_flight_max,
            "delays": list(self.delays),
            "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens},
            "window": {"requests": len(self.window.entries), "tokens": self.window.tokens},
            "duplicates": sum(1 for n in self.body_hashes.values() if n > 1),
            "body_hashes": dict(self.body_hashes),
            "recent": copy.deepcopy(list(self.recent)),
            "config": self.config(),
        }

    def config(self) -> dict[str, Any]:
        out = asdict(self.knobs)
        out["faults"] = list(self.knobs.faults)
        out["refuse_forms"] = list(self.knobs.refuse_forms)
        out["ignore_forms"] = list(self.knobs.ignore_forms)
        return out
