"""The cache key of a request: what a stored reply is found again by."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..backends.base import Backend, Request
from ..memo import ByIdentity

__all__ = ["cache_key"]


def cache_key(backend: Backend, request: Request, persona_version: str) -> str:
    """Hash of the request as the member sends it: the body in the structured form it uses,
    with its string caps and sampling extras (`Backend.wire`), and where it goes with the
    options that change a reply (`Backend.identity`). Never timeouts, limits, prices or keys:
    the options left out are listed in `panel.backends.options.NOT_IN_CACHE_KEY`, and nothing
    the client sends beside the body (headers, keys) is hashed.

    The run's sampling settings are in it whether or not the provider takes each of them:
    the seed is what makes repeats of a review distinct requests, even to a provider that
    takes no seed.

    It is the sha256 of this JSON, keys sorted, each JSON Schema object in the request
    written as `"sha256:<hex digest of its sorted JSON>"`:
    `{"backend", "persona", "request", "sampling", "source"}`.
    """
    material = {
        "backend": backend.name,
        "persona": persona_version,
        "request": _schemas_hashed(backend.wire(request)),
        "sampling": request.sampling.as_dict(),
        "source": backend.identity(),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _schemas_hashed(value: Any) -> Any:
    """The request with each JSON Schema object in it written as its digest: the same few
    schemas go in every request of a run, so each is written out once, not once a request."""
    if isinstance(value, dict):
        if "properties" in value:
            return _schema_digest(value)
        return {k: _schemas_hashed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_schemas_hashed(v) for v in value]
    return value


_schema_digest: ByIdentity[str] = ByIdentity(
    lambda schema: "sha256:" + hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()
)
