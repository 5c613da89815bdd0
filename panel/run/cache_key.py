"""The cache key of a request: what a stored reply is found again by."""

from __future__ import annotations

import hashlib
import json

from ..backends.base import Backend, Request
from ..memo import ByIdentity

__all__ = ["cache_key"]


def cache_key(backend: Backend, request: Request, persona_version: str) -> str:
    """Hash of what changes a reply: never timeouts, limits, retries or keys.

    It is the sha256 of this JSON, keys sorted:
    `{"backend", "messages", "model", "persona", "sampling", "schema", "source"}`. The schema
    is the same for every request of a persona, so its part of the text is written once and
    the hash is fed in pieces: the same bytes, so the same keys as ever.
    """
    head = {
        "backend": backend.name,
        "messages": request.messages,
        "model": backend.model,
        "persona": persona_version,
        "sampling": request.sampling.as_dict(),
    }
    digest = hashlib.sha256(json.dumps(head, sort_keys=True)[:-1].encode())
    digest.update(b', "schema": ')
    digest.update(_sorted_json(request.schema))
    digest.update(b', "source": ')
    digest.update(json.dumps(backend.identity(), sort_keys=True).encode())
    digest.update(b"}")
    return digest.hexdigest()


_sorted_json: ByIdentity[bytes] = ByIdentity(lambda value: json.dumps(value, sort_keys=True).encode())
