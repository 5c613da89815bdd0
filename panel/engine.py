"""The engine: runs every (tool, persona, member) cell, validates, re-asks once, stores."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from .backends.base import Backend, Request, Sampling
from .catalog import Tool
from .errors import BackendError
from .personas import Persona
from .prompts import PromptSet
from .retry import RetryPolicy, call_with_retries
from .store import Store
from .validate import InvalidReply, parse_review

__all__ = ["Cell", "CellResult", "Engine"]


@dataclass(frozen=True)
class Cell:
    """One review to make: a tool, read by a persona, on a panel member."""

    tool: Tool
    persona: Persona
    backend: Backend

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.tool.id, self.persona.id, self.backend.label)


@dataclass
class CellResult:
    cell: Cell
    valid: bool
    verdict: str | None
    error: str | None
    asks: int


@dataclass
class Engine:
    store: Store
    run_id: str
    prompts: PromptSet
    sampling: Sampling = field(default_factory=Sampling)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: max requests in flight per member label; defaults to the backend's own default
    concurrency: dict[str, int] = field(default_factory=dict)
    on_result: Callable[[CellResult], None] | None = None
    _limits: dict[str, asyncio.Semaphore] = field(default_factory=dict, init=False)

    async def run(self, cells: Iterable[Cell]) -> list[CellResult]:
        return list(await asyncio.gather(*(self._bounded(cell) for cell in cells)))

    async def _bounded(self, cell: Cell) -> CellResult:
        label = cell.backend.label
        if label not in self._limits:
            limit = self.concurrency.get(label, cell.backend.default_concurrency)
            self._limits[label] = asyncio.Semaphore(max(1, limit))
        async with self._limits[label]:
            result = await self.review(cell)
        if self.on_result is not None:
            self.on_result(result)
        return result

    async def review(self, cell: Cell) -> CellResult:
        """Ask for one review; on an invalid reply ask once more with the error; store it."""
        persona, backend = cell.persona, cell.backend
        request = Request(
            messages=self.prompts.review_messages(persona, cell.tool),
            schema=persona.review_schema,
            schema_name=f"{persona.id}_review",
            sampling=self.sampling,
        )
        raw: str | None = None
        error = "no reply"
        request_id: int | None = None
        for ask in (1, 2):
            request_id = self.store.begin_request(
                self.run_id, cell.key, backend.name, backend.model, ask,
                request.messages, request.schema_name, self.sampling.as_dict(),
            )
            try:
                reply, tries = await call_with_retries(
                    lambda: self._generate(backend, request), self.retry
                )
            except BackendError as exc:
                error = f"{exc.kind} error from {backend.label}: {exc}"
                self.store.finish_request(request_id, None, self.retry.attempts, error=error)
                return self._save(cell, None, error, raw, request_id, ask)
            self.store.finish_request(request_id, reply, tries)
            raw = reply.text
            try:
                review = parse_review(persona.review_model, reply.text, reply.finish_reason)
            except InvalidReply as exc:
                error = str(exc)
                request = replace(
                    request, messages=self.prompts.reask_messages(request.messages, raw, error)
                )
                continue
            return self._save(cell, review.model_dump(mode="json"), None, raw, request_id, ask)
        return self._save(cell, None, f"invalid after re-ask: {error}", raw, request_id, 2)

    async def _generate(self, backend: Backend, request: Request) -> Any:
        try:
            return await backend.generate(request)
        except BackendError:
            raise
        except Exception as exc:  # an adapter bug or an SDK error it did not map
            raise backend.as_backend_error(exc) from exc

    def _save(
        self,
        cell: Cell,
        data: dict[str, Any] | None,
        error: str | None,
        raw: str | None,
        request_id: int | None,
        asks: int,
    ) -> CellResult:
        self.store.save_review(
            self.run_id, cell.key, cell.backend.name, cell.backend.model,
            data=data, error=error, raw_reply=raw, request_id=request_id, asks=asks,
        )
        verdict = data.get("verdict") if data else None
        return CellResult(cell, data is not None, verdict, error, asks)
