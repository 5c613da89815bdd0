"""What the engine writes to the store for its run: a request before it is sent, a reply
served from the cache as this run's request, a review (or its failure), and a review copied
unchanged from an earlier run (`--since`)."""

from __future__ import annotations

from typing import Any

from ..backends.base import Reply, Request
from ..store import Store
from .cache_key import cache_key
from .cells import Cell, CellResult

__all__ = ["RunRecords"]


class RunRecords:
    """The engine's store writes (`panel.run.engine.Engine` is one; it holds these fields)."""

    store: Store
    run_id: str
    use_cache: bool
    #: a previous run whose unchanged, valid reviews are copied instead of re-made
    since_run: str | None

    def copy_since(self, cell: Cell, fingerprint: str) -> CellResult | None:
        """Copy the cell's review from `since_run` when it is valid and its inputs unchanged."""
        if self.since_run is None:
            return None
        previous = self.store.review(self.since_run, cell.key)
        if previous is None or not previous.valid or previous.fingerprint != fingerprint:
            return None
        self.store.save_review(
            self.run_id,
            cell.key,
            cell.backend.name,
            cell.backend.model,
            data=previous.data,
            error=None,
            raw_reply=previous.raw_reply,
            request_id=None,
            asks=previous.asks,
            fingerprint=fingerprint,
            copied_from=self.since_run,
            enforced=previous.enforced,
        )
        return CellResult(cell, True, previous.verdict, None, previous.asks, "copied")

    def cached(
        self, cell: Cell, request: Request, ask: int, key: str | None = None
    ) -> tuple[int, Reply] | None:
        """The reply of an identical request answered before (any run), recorded as this
        run's request: (request id, reply); None when there is none or the cache is off."""
        if not self.use_cache:
            return None
        key = key or cache_key(cell.backend, request, cell.persona.version)
        stored = self.store.stored_reply(key)
        if stored is None:
            return None
        request_id = self._record(cell, request, ask, key)
        self.store.finish_request(request_id, stored[1], 0, cached_from=stored[0])
        return request_id, stored[1]

    def reserve(self, cell: Cell, request: Request, ask: int, worst: float = 0.0) -> int:
        """Write a request before it is sent, with the worst case it reserves; its id."""
        return self._record(cell, request, ask, cache_key(cell.backend, request, cell.persona.version), worst)

    def _record(self, cell: Cell, request: Request, ask: int, key: str, worst: float = 0.0) -> int:
        return self.store.begin_request(
            self.run_id,
            cell.key,
            cell.backend.name,
            cell.backend.model,
            ask,
            request.messages,
            request.schema_name,
            request.sampling.as_dict(),
            key,
            reserved_usd=worst,
            round_=cell.ROUND,
            rival=cell.rival_id,
        )

    def save(
        self,
        cell: Cell,
        data: dict[str, Any] | None,
        error: str | None,
        raw: str | None,
        request_id: int | None,
        asks: int,
        fingerprint: str,
        source: str,
        enforced: str | None = None,
    ) -> CellResult:
        """Store a cell's review (`data`) or its failure (`error`); not yet counted (`finish`)."""
        self.store.save_review(
            self.run_id,
            cell.key,
            cell.backend.name,
            cell.backend.model,
            data=data,
            error=error,
            raw_reply=raw,
            request_id=request_id,
            asks=asks,
            fingerprint=fingerprint,
            enforced=enforced,
        )
        verdict = data.get("verdict") if data else None
        return CellResult(cell, data is not None, verdict, error, asks, source)
