"""One try of one request to a member's model: under its rate limiter, with a timeout
backstop, its errors mapped, and what it shows of its server and its limits noted."""

from __future__ import annotations

import asyncio

from ..backends.base import Reply, Request
from ..errors import BackendError, TransientError, UnreachableError
from .cells import Member
from .outage import MemberStopped
from .usage import believed

__all__ = ["call_member"]


async def call_member(member: Member, request: Request, estimate: int, what: str) -> Reply:
    """The reply of one try (`estimate`: the tokens reserved of the member's limiter; `what`:
    the request as a line about the member's server names it)."""
    if member.watch.stopped is not None:
        raise MemberStopped(member.watch.stopped)
    reservation = await member.limiter.acquire(estimate)
    backend = member.backend
    try:
        # The client's own timeout should fire first; this one is the backstop. A timeout
        # scope, unlike wait_for, costs no task of its own per request.
        async with asyncio.timeout(member.timeout + 5 if member.timeout else None):
            reply = await backend.generate(request)
    except TimeoutError:
        raise TransientError(f"no reply within {member.timeout:.0f} s") from None
    except BackendError as exc:
        member.limiter.failed(reservation, exc)  # a 429 slows the whole member down
        if not isinstance(exc, UnreachableError):
            member.watch.took(what)  # the server is there: it answered, or broke
        raise
    except Exception as exc:  # our bug stops the run; an SDK error we did not map fails the review
        raise backend.bug(exc) or backend.as_backend_error(exc) from exc
    member.watch.took(what)
    reply.usage = believed(reply.usage, request)
    used = reply.usage.input_tokens + reply.usage.output_tokens
    member.limiter.settle(reservation, estimate if reply.usage.unknown else used)
    member.limiter.observe(reply.meta.get("ratelimit"))
    return reply
