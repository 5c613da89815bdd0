"""The requests of a new batch: reading and validating them, drawing their fate, answering them.

See `batches` for the rules as a client sees them.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import replace
from random import Random
from typing import TYPE_CHECKING, Any, cast

from panel.testing import wire
from panel.testing.batch_book import Batch, Item, Outcome
from panel.testing.wire import Provider

if TYPE_CHECKING:
    from panel.testing.state import Knobs, State

__all__ = ["answer", "new_batch", "read_lines"]

_ANTHROPIC_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_CONTENT_FAULTS = ("malformed", "schema_violation", "length")
Line = tuple[str, dict[str, Any]]  # (custom_id, request body)


def read_lines(
    provider: Provider, sources: list[Any], endpoint: str
) -> tuple[list[Line], list[dict[str, Any]]]:
    """The requests in `sources` (JSONL bytes, or lists of objects), and the validation errors."""
    records: list[Any] = []
    for src in sources:
        if isinstance(src, bytes):
            for raw in src.splitlines():
                if raw.strip():
                    try:
                        records.append(json.loads(raw))
                    except ValueError:
                        records.append(ValueError)
        elif isinstance(src, list) and src:
            records.extend(src)
        else:
            raise ValueError("`requests` must be a non-empty list")
    lines: list[Line] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    key = "params" if provider == "anthropic" else "body"
    for n, rec in enumerate(records, start=1):
        problem = _problem(provider, rec, key, endpoint, seen)
        if problem:
            errors.append({"code": problem[0], "message": problem[1], "line": n, "param": problem[2]})
            continue
        seen.add(rec["custom_id"])
        lines.append((rec["custom_id"], rec[key]))
    if not records:
        errors.append(
            {"code": "empty_file", "message": "the input has no requests", "line": None, "param": None}
        )
    return lines, errors


def _problem(
    provider: Provider, rec: Any, key: str, endpoint: str, seen: set[str]
) -> tuple[str, str, str] | None:
    if not isinstance(rec, dict):
        return "invalid_json_line", "This line is not a JSON object.", ""
    cid = rec.get("custom_id")
    if not isinstance(cid, str) or not cid:
        return "missing_required_parameter", "Missing required parameter: 'custom_id'.", "custom_id"
    if provider == "anthropic" and not _ANTHROPIC_ID.fullmatch(cid):
        return "invalid_custom_id", f"custom_id {cid!r} must match ^[a-zA-Z0-9_-]{{1,64}}$", "custom_id"
    if cid in seen:
        return "duplicate_custom_id", f"The custom_id {cid!r} is used more than once.", "custom_id"
    if not isinstance(rec.get(key), dict):
        return "missing_required_parameter", f"Missing required parameter: '{key}'.", key
    if provider == "openai" and rec.get("method") != "POST":
        return "invalid_method", "The method of every line must be POST.", "method"
    if provider == "openai" and rec.get("url") != endpoint:
        return "invalid_url", f"The url of every line must be the batch's endpoint {endpoint}.", "url"
    return None


def new_batch(
    state: State,
    provider: Provider,
    lines: list[Line],
    errors: list[dict[str, Any]],
    endpoint: str,
    metadata: dict[str, Any] | None,
    model: str | None,
    file_ids: list[str],
) -> Batch:
    """Draw each request's fate, answer them, and register the batch on `state`'s books."""
    with state.lock:
        knobs = state.knobs
        if knobs.batch_fail_validation and provider != "anthropic":
            message = "Batch rejected at validation (fake provider: batch_fail_validation)."
            errors = [
                *errors,
                {"code": "fake_validation_failure", "message": message, "line": None, "param": None},
            ]
        fates = [] if errors else [_draw(state.batch_rng, knobs) for _ in lines]
        order = list(range(len(lines)))
        if not errors:
            state.batch_rng.shuffle(order)
    if errors:
        items = [Item(cid, "ok") for cid, _ in lines]
    else:
        items = [
            answer(provider, body, model, fate, knobs, cid)
            for (cid, body), fate in zip(lines, fates, strict=True)
        ]
    if knobs.batch_poison:
        for (_, body), item in zip(lines, items, strict=True):
            item.poisoned = knobs.poison_match in json.dumps(body, ensure_ascii=False)
    prefix = {"openai": "batch_", "anthropic": "msgbatch_"}.get(provider)
    batch = Batch(
        id=prefix + uuid.uuid4().hex[:24] if prefix else str(uuid.uuid4()),
        provider=provider,
        items=items,
        order=order,
        endpoint=endpoint,
        metadata=metadata,
        model=model or (str(lines[0][1].get("model")) if lines and lines[0][1].get("model") else None),
        input_file_ids=file_ids,
        seconds=knobs.batch_seconds,
        partial=knobs.batch_partial,
        errors=errors,
        created_clock=0.0,
        created_at=state.batches.wall(),
        poison=knobs.batch_poison,
        rotate=knobs.batch_rotate,
    )
    with state.lock:
        # The clock starts once the batch is registered: answering takes no batch time.
        batch.created_clock = state.clock()
        state.batches.add_batch(batch, batch.created_clock)
    return batch


def _draw(rng: Random, knobs: Knobs) -> tuple[Outcome, str | None]:
    roll = rng.random()
    outcome: Outcome = "ok"
    if roll < knobs.batch_error_rate:
        outcome = "errored"
    elif roll < knobs.batch_error_rate + knobs.batch_expire_rate:
        outcome = "expired"
    kinds = [k for k in knobs.faults if k in _CONTENT_FAULTS]
    fault = None
    if knobs.fault_rate and kinds and rng.random() < knobs.fault_rate:
        fault = rng.choice(kinds)
    return outcome, fault


def answer(
    provider: Provider,
    body: dict[str, Any],
    model: str | None,
    fate: tuple[Outcome, str | None],
    knobs: Knobs,
    custom_id: str,
) -> Item:
    """The live endpoint's answer to `body`, unless `fate` says the request errs or expires."""
    outcome, fault = fate
    request_id = wire.new_id("req_")
    if outcome == "expired":
        return Item(custom_id, outcome)
    if outcome == "errored":
        message = "Internal server error (fake batch fault)"
        return Item(custom_id, outcome, 500, wire.error_body(provider, 500, message, request_id))
    if model and not body.get("model"):
        body = {**body, "model": model}  # Mistral's job-level model
    try:
        parsed = wire.parse(provider, "messages" if provider == "anthropic" else "chat", body)
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        message = str(exc) or type(exc).__name__
        return Item(custom_id, outcome, 400, wire.error_body(provider, 400, message, request_id))
    if parsed.form in knobs.refuse_forms:
        return Item(custom_id, outcome, 500, wire.refusal_body(parsed.form))
    if parsed.form in knobs.ignore_forms:
        parsed = replace(parsed, schema=wire.BARE_JSON_SCHEMA)
    reply = wire.make_reply(parsed, cast(wire.ContentFault, fault))
    return Item(
        custom_id, outcome, 200, wire.success_body(parsed, reply, request_id), faulted=fault is not None
    )
