"""`panel backends`: what is installed and configured, and a one-request check of each member."""

from __future__ import annotations

import importlib.util
import os
import time
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from ..errors import BackendError, PanelError
from ..run.validate import InvalidReply, parse_review
from .base import MemberSpec, Request, Sampling
from .registry import BACKENDS, backend_class, create_backend

__all__ = ["BackendStatus", "CheckResult", "backend_statuses", "check_member"]

_PING_SCHEMA = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}


class _Ping(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    ok: bool


@dataclass(frozen=True)
class BackendStatus:
    name: str
    extra: str | None
    installed: bool
    key_env: str | None
    key_present: bool | None


@dataclass(frozen=True)
class CheckResult:
    member: str
    ok: bool
    latency_s: float | None
    detail: str
    #: the structured-output form the reply came in, when the backend says
    form: str | None = None


def backend_statuses() -> list[BackendStatus]:
    """Each registered backend: is its SDK installed, is its key set (never what the key is)."""
    rows = []
    for name, (_, _, sdk) in BACKENDS.items():
        installed = sdk is None or importlib.util.find_spec(sdk) is not None
        extra = key_env = None
        if installed:
            cls = backend_class(name)
            extra, key_env = cls.extra, cls.key_env
        else:
            extra = name
        present = bool(os.environ.get(key_env)) if key_env else None
        rows.append(BackendStatus(name, extra, installed, key_env, present))
    return rows


async def check_member(spec: MemberSpec) -> CheckResult:
    """Send one tiny schema-constrained request; report the latency, the structured-output form
    that worked and whether the reply matched the schema, or the exact error."""
    try:
        backend = create_backend(spec)
    except PanelError as exc:
        return CheckResult(spec.key, False, None, str(exc))
    label = backend.label  # the member's name in the config, else backend:model
    request = Request(
        messages=[
            {"role": "system", "content": "You check that a connection works."},
            {"role": "user", "content": 'Reply with the JSON object {"ok": true}.'},
        ],
        schema=_PING_SCHEMA,
        schema_name="ping",
        sampling=Sampling(max_tokens=16, temperature=0.0),
    )
    started = time.perf_counter()
    try:
        reply = await backend.generate(request)
    except BackendError as exc:
        return CheckResult(label, False, None, f"{exc.kind} error: {exc}")
    except Exception as exc:  # report whatever the SDK raised, then carry on with the others
        return CheckResult(label, False, None, f"{type(exc).__name__}: {exc}")
    finally:
        await backend.aclose()
    latency = time.perf_counter() - started
    form = reply.meta.get("form")
    enforced = reply.meta.get("enforced") or backend.enforced
    how = f"form {form} ({enforced})" if form else enforced
    tokens = f"{reply.usage.input_tokens} in / {reply.usage.output_tokens} out tokens"
    try:
        parse_review(_Ping, reply.text, reply.finish_reason)
    except InvalidReply as exc:
        # A 200 whose reply ignored the schema is no working member.
        return CheckResult(label, False, latency, f"{how}: the reply ignored the schema: {exc}", form)
    return CheckResult(label, True, latency, f"{how}, {tokens}: {reply.text[:60]!r}", form)
