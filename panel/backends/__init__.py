"""Model backends: one module each, behind the contract in `base`, found through `registry`."""

from .base import Backend, MemberSpec, Reply, Request, Usage
from .registry import BACKENDS, create_backend, parse_member

__all__ = [
    "BACKENDS",
    "Backend",
    "MemberSpec",
    "Reply",
    "Request",
    "Usage",
    "create_backend",
    "parse_member",
]
