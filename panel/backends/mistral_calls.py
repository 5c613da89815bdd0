"""What the Mistral backend and its batch API both need of the SDK's calls: the answer as
data, what a failure says, and the request id in the headers."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping
from typing import Any

from . import _provider as p
from .envelope import decode_body

__all__ = ["as_data", "describe", "request_id"]

_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "mistral-correlation-id")


def request_id(headers: Mapping[str, str] | None) -> str | None:
    if not headers:
        return None
    return next((headers[h] for h in _REQUEST_ID_HEADERS if h in headers), None)


async def as_data(send: Awaitable[Any], name: str, secrets: Iterable[str | None]) -> Any:
    """What a call answered, as data: the SDK's object dumped, or, where the SDK refused the
    answer's shape (it checks every field), the body as it came, for the lenient envelopes
    to read (`envelope`, `mistral_batch`); a body that is no JSON is quoted with `secrets`
    masked."""
    from mistralai.client.errors import ResponseValidationError

    try:
        answer = await send
    except ResponseValidationError as exc:
        return decode_body(exc.body.encode(), name, secrets=secrets)
    return answer.model_dump(mode="json", by_alias=True, warnings=False)


def describe(exc: Exception) -> p.Failure | None:
    from mistralai.client.errors import MistralError, NoResponseError

    if isinstance(exc, MistralError):
        return p.Failure(exc.status_code, exc.message, exc.headers, request_id(exc.headers))
    if isinstance(exc, NoResponseError):
        return p.Failure(detail=exc.message, transient=True)
    return None
