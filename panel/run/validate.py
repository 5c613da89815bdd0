"""Turn a model's raw reply into a validated review, or a reason it cannot be one."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ValidationError

__all__ = ["InvalidReply", "parse_review"]

_FENCED = re.compile(r"^```[a-zA-Z]*\s*\n(.*)\n```\s*$", re.DOTALL)


class InvalidReply(ValueError):
    """The reply is not a valid review; the message is written for the model to fix it."""


def parse_review(model: type[BaseModel], text: str, finish_reason: str | None = None) -> BaseModel:
    data = _extract_json(text, finish_reason)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or 'the object'}: {err['msg']}"
            for err in exc.errors(include_url=False)
        ]
        raise InvalidReply("the JSON does not match the review schema: " + "; ".join(problems[:6])) from None


def _extract_json(text: str, finish_reason: str | None) -> Any:
    stripped = text.strip()
    if not stripped:
        raise InvalidReply("the reply was empty")
    fenced = _FENCED.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()
    start, end = stripped.find("{"), stripped.rfind("}")
    candidate = stripped[start : end + 1] if 0 <= start < end else stripped
    try:
        return json.loads(candidate)
    except json.JSONDecodeError as exc:
        cut = " (the reply was cut off by the token limit)" if finish_reason == "length" else ""
        raise InvalidReply(f"the reply is not valid JSON{cut}: {exc.msg} at character {exc.pos}") from None
