"""`panel batches cancel RUN`: ask the providers to stop a run's batches still in flight.

The members' backends are made again from the specs the run recorded (as `--resume` does),
so the cancel goes out with each member's own key and server. What the provider finished
before it stopped stays readable: `panel review --resume RUN` downloads it, and stores the
requests the cancel cut off as failed, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..backends.base import Backend
from ..backends.batch import METADATA_KEY, METADATA_RUN, BatchStatus
from ..backends.registry import create_backend, recorded_member
from ..errors import BackendError, ConfigError, UserError
from ..store import BatchRow, Store

__all__ = ["CancelOutcome", "cancel_batches"]

#: states in which the provider has nothing left to stop
_OVER = frozenset({"ended", "failed", "expired", "cancelling", "cancelled"})


@dataclass(frozen=True)
class CancelOutcome:
    """What became of one unfinished batch of the run."""

    row: BatchRow
    #: the state the provider gave after the cancel (or the one it had), None if unknown
    state: str | None
    #: what was done, for a person: 'cancel asked', 'already ended', an error...
    note: str


async def cancel_batches(store: Store, run_id: str) -> list[CancelOutcome]:
    """Cancel every batch of `run_id` not yet collected, at its provider; record the state."""
    run = store.get_run(run_id)
    if run is None:
        raise UserError(f"no run '{run_id}' in {store.path}")
    rows = store.batches(run_id, unfinished_only=True)
    if not rows:
        return []
    if "member_specs" not in run.config:
        raise ConfigError(f"run '{run_id}' was recorded without its members: its batches cannot be reached")
    specs = [recorded_member(run_id, i, m) for i, m in enumerate(run.config["member_specs"])]
    wanted = {row.member for row in rows}
    backends: dict[str, Backend] = {}
    for spec in [s for s in specs if s.key in wanted] or specs:
        backend = create_backend(spec)
        backends[backend.label] = backend
    outcomes = []
    try:
        for row in rows:
            outcomes.append(await _cancel(store, row, backends.get(row.member)))
    finally:
        for backend in backends.values():
            await backend.aclose()
    return outcomes


async def _cancel(store: Store, row: BatchRow, backend: Backend | None) -> CancelOutcome:
    if row.state in _OVER:
        return CancelOutcome(row, row.state, f"already {row.state} at the provider")
    api = backend.batch_api() if backend is not None else None
    if api is None:
        return CancelOutcome(row, None, f"member {row.member} is no longer a batch member of the run")
    try:
        provider_id = row.provider_batch_id
        if provider_id is None:
            # Recorded but never acknowledged: the provider may have it under our batch key.
            metadata = {METADATA_KEY: row.batch_key, METADATA_RUN: row.run_id}
            custom_ids = [cid for cid, _ in store.batch_custom_ids(row.batch_key)]
            found = await api.find(metadata, custom_ids, since=row.created_at)
            if found is None:
                return CancelOutcome(row, None, "never reached the provider: nothing to cancel")
            store.batch_submitted(row.batch_key, found.provider_batch_id, found.state, found.counts)
            provider_id = found.provider_batch_id
        status: BatchStatus = await api.cancel(provider_id)
    except BackendError as exc:
        return CancelOutcome(row, None, f"cancel failed: {exc}")
    finally:
        await api.aclose()
    store.batch_progress(row.batch_key, status.state, status.counts, status.error)
    store.commit()
    return CancelOutcome(row, status.state, "cancel asked")
