"""The one retry policy every backend shares (tenacity), honouring the provider's wait hint.

Faults and limits are bounded differently. A transient fault (a 5xx, a dropped connection)
spends one of a review's `attempts`. A 429 spends none: it says "not now", not "broken", so
a review waits it out, for at most `max_rate_wait` seconds of 429 waits in all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception
from tenacity.wait import wait_random_exponential

from ..errors import BackendError

__all__ = ["RetryPolicy", "Sleep", "call_with_retries"]

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    #: tries for a request that meets transient faults; 429s are not counted here
    attempts: int = 4
    base_wait: float = 0.5
    max_wait: float = 30.0
    #: the longest provider-requested wait we honour; longer hints are capped to this
    max_hint: float = 60.0
    #: the most seconds one request spends waiting out 429s before it fails
    max_rate_wait: float = 600.0
    #: how a wait between tries is spent; tests pass one that counts instead of sleeping
    sleep: Sleep = field(default=asyncio.sleep, compare=False, repr=False)


def _retryable(exc: BaseException) -> bool:
    # Fatal and capability errors (a refused structured-output form) never get better.
    return isinstance(exc, BackendError) and exc.kind in ("rate_limit", "transient")


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    on_retry: Callable[[BackendError, float], None] | None = None,
) -> tuple[T, int]:
    """Run `fn` until it succeeds or the policy gives up; return the result and the tries used.

    Rate limits and transient errors are retried with jittered exponential backoff, or after
    the provider's own wait hint when it sent one. Fatal errors are raised at once. A
    transient error spends one of `policy.attempts`; a 429 spends time from
    `policy.max_rate_wait` instead, so a busy provider never fails a review it would answer.
    """
    try:
        # Most calls succeed at once: only a failure pays for tenacity's machinery.
        return await fn(), 1
    except BackendError as exc:
        if not _retryable(exc):
            raise
        first: list[BackendError] = [exc]

    async def again() -> T:
        if first:
            raise first.pop()  # the failure above, replayed as the loop's first try
        return await fn()

    return await _retrying(again, policy, on_retry)


async def _retrying(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    on_retry: Callable[[BackendError, float], None] | None,
) -> tuple[T, int]:
    backoff = wait_random_exponential(multiplier=policy.base_wait, max=policy.max_wait)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hint = exc.retry_after if isinstance(exc, BackendError) else None
        return min(hint, policy.max_hint) if hint is not None else backoff(state)

    def before_sleep(state: RetryCallState) -> None:
        # Called only when another try will really follow, with the wait chosen for it.
        exc = state.outcome.exception() if state.outcome else None
        if on_retry is not None and isinstance(exc, BackendError) and state.next_action is not None:
            on_retry(exc, state.next_action.sleep)

    faults = 0
    rate_waited = 0.0

    def stop(state: RetryCallState) -> bool:
        # Runs after `wait`, so the wait the next try would need is known.
        nonlocal faults, rate_waited
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, BackendError) and exc.kind == "rate_limit":
            rate_waited += state.upcoming_sleep
            return rate_waited > policy.max_rate_wait
        faults += 1
        return faults >= policy.attempts

    tries = 0
    async for attempt in AsyncRetrying(
        stop=stop,
        wait=wait,
        retry=retry_if_exception(_retryable),
        before_sleep=before_sleep,
        sleep=policy.sleep,
        reraise=True,
    ):
        with attempt:
            tries = attempt.retry_state.attempt_number
            result = await fn()
    return result, tries
