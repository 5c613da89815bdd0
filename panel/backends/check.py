"""`panel backends`: what is installed and configured, and a one-request check of each member."""

from __future__ import annotations

import importlib.util
import os
import time
from dataclasses import dataclass

from pydantic import BaseModel

from ..depth import Depth, member_depth
from ..errors import BackendError, PanelError
from ..run.validate import InvalidReply, parse_review
from .base import Backend, MemberSpec, Request, Sampling
from .registry import BACKENDS, backend_class, create_backend

__all__ = ["BackendStatus", "CheckResult", "backend_statuses", "check_member", "check_request"]


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


def check_request(backend: Backend, depth: Depth, max_tokens: int) -> tuple[Request, type[BaseModel]]:
    """The request a check sends: a review of the first example tool by the first persona, made
    by the engine's own `Cell.request` at this depth and token limit (the same schema, so the
    same string caps), and the model its reply must satisfy."""
    from ..catalog import load_catalog
    from ..personas import load_personas
    from ..prompts import PromptSet
    from ..resources import data_dir
    from ..run.cells import Cell

    personas = load_personas(data_dir("personas")).values()
    persona = min(personas, key=lambda p: (p.order, p.id))
    tool = next(iter(load_catalog(data_dir("examples") / "catalog.yaml")))
    cell = Cell(tool, persona, backend)
    request = cell.request(PromptSet(), Sampling(max_tokens=max_tokens, temperature=0.0), depth)
    return request, persona.review_model


async def check_member(spec: MemberSpec) -> CheckResult:
    """Send one review request as a run would, at the member's depth: report the latency, the
    structured-output form that worked and whether the reply is a valid review, or the exact
    error. A server that cannot take the review schema (one whose converter dies on its string
    caps) fails here, before a run sends it every cell."""
    try:
        backend = create_backend(spec)
    except PanelError as exc:
        return CheckResult(spec.key, False, None, str(exc))
    label = backend.label  # the member's name in the config, else backend:model
    depth, max_tokens = member_depth(spec.options.depth, spec.options.max_tokens, backend.default_depth())
    request, review_model = check_request(backend, depth, max_tokens)
    what = f"{request.schema_name} schema at depth {depth}"
    started = time.perf_counter()
    try:
        reply = await backend.generate(request)
    except BackendError as exc:
        return CheckResult(label, False, None, f"{exc.kind} error on the {what}: {exc}")
    except Exception as exc:  # report whatever the SDK raised, then carry on with the others
        return CheckResult(label, False, None, f"{type(exc).__name__} on the {what}: {exc}")
    finally:
        await backend.aclose()
    latency = time.perf_counter() - started
    form = reply.meta.get("form")
    enforced = reply.meta.get("enforced") or backend.enforced
    how = f"form {form} ({enforced})" if form else enforced
    tokens = f"{reply.usage.input_tokens} in / {reply.usage.output_tokens} out tokens"
    try:
        parse_review(review_model, reply.text, reply.finish_reason)
    except InvalidReply as exc:
        # A 200 whose reply is no valid review is no working member.
        detail = f"{how}: the reply ignored the schema (the {what}): {exc}"
        return CheckResult(label, False, latency, detail, form)
    return CheckResult(label, True, latency, f"{how}, {tokens}: a valid review on the {what}", form)
