"""Turn a model's raw reply into a validated review, or a reason it cannot be one."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from .. import jsontext

__all__ = ["InvalidReply", "parse_review"]

_FENCED = re.compile(r"^```[a-zA-Z]*\s*\n(.*)\n```\s*$", re.DOTALL)
#: far more than a review at any depth writes (a full one is under 20,000 characters)
MAX_REPLY_CHARS = 200_000


class InvalidReply(ValueError):
    """The reply is not a valid review; the message is written for the model to fix it."""


def parse_review(
    model: type[BaseModel], text: str, finish_reason: str | None = None, kind: str = "review"
) -> BaseModel:
    """The reply as `model`, or InvalidReply saying what to fix (`kind`: what the reply is,
    as the message names it)."""
    data = _extract_json(text, finish_reason, kind)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or 'the object'}: {err['msg']}"
            for err in exc.errors(include_url=False)
        ]
        raise InvalidReply(f"the JSON does not match the {kind} schema: " + "; ".join(problems[:6])) from None


def _extract_json(text: str, finish_reason: str | None, kind: str = "review") -> Any:
    stripped = text.strip()
    if not stripped:
        raise InvalidReply("the reply was empty")
    if len(stripped) > MAX_REPLY_CHARS:
        raise InvalidReply(f"the reply is {len(stripped):,} characters long, more than a {kind} can be")
    fenced = _FENCED.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()
    start, end = stripped.find("{"), stripped.rfind("}")
    candidate = stripped[start : end + 1] if 0 <= start < end else stripped
    try:
        # A raw line break or tab inside a string (which some grammars let a model write) is
        # read as the character it is, not refused: the text is the model's, and every page
        # and terminal escapes or strips control characters where it shows them.
        return jsontext.loads(candidate, strict=False)
    except jsontext.JSONRefused as exc:
        raise InvalidReply(f"the reply is not a {kind}'s JSON: {exc}") from None
    except json.JSONDecodeError as exc:
        cut = " (the reply was cut off by the token limit)" if finish_reason == "length" else ""
        raise InvalidReply(f"the reply is not valid JSON{cut}: {exc.msg} at character {exc.pos}") from None
