"""A backend that needs no model: it writes schema-valid replies, or whatever a test asks.

Used by the test suite and for trying the pipeline without a model. Replies are
deterministic from the request, and verdicts vary across tools and personas; a head-to-head
ask is answered from strengths planted per tool (`panel.backends.planted`). It keeps a
count of its calls, never the calls: a long run must not grow with them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable

from ..depth import Depth
from .base import Backend, Reply, Request, Usage
from .planted import planted_head_to_head
from .schema_fill import fill

__all__ = ["FakeBackend", "Responder"]

Responder = Callable[[Request, int], str | Awaitable[str]]


class FakeBackend(Backend):
    name = "fake"
    default_concurrency = 8
    default_model = "schema"

    def __init__(self, model: str = "schema", responder: Responder | None = None) -> None:
        super().__init__(model)
        self.responder = responder
        #: how many requests it was sent; the responder gets the number of each
        self.sent = 0

    def default_depth(self) -> Depth:
        """Brief: its placeholder answers are a sentence long whatever it is asked."""
        return "brief"

    async def generate(self, request: Request) -> Reply:
        self.sent += 1
        if self.responder is not None:
            result = self.responder(request, self.sent)
            text = result if isinstance(result, str) else await result
        else:
            body = json.dumps([request.messages, self.model], sort_keys=True)
            seed = hashlib.sha256(body.encode()).hexdigest()
            # A head-to-head ask gets a planted answer, so a ranking on this backend has an
            # order to find; any other ask a value that fits its schema.
            planted = planted_head_to_head(request.schema, request.messages, seed)
            text = json.dumps(planted if planted is not None else fill(request.schema, seed))
        prompt_chars = sum(len(m["content"]) for m in request.messages)
        usage = Usage(input_tokens=prompt_chars // 4 + 1, output_tokens=len(text) // 4 + 1)
        return Reply(text=text, usage=usage, finish_reason="stop", latency_s=0.0)
