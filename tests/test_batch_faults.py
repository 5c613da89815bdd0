"""Faults on the batch route: each ends with every cell valid or failed with a reason, nothing
lost, nothing submitted twice, and the ledger saying what happened."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from panel.backends.batch import BatchAPI, BatchEntry, BatchOutcome, BatchStatus
from panel.backends.openai import OpenAIBackend
from panel.backends.openai_batch import OpenAIBatchAPI
from panel.errors import TransientError
from panel.store import Store
from panel.testing.fake_provider import FakeProvider

from .batches import plan_of, run, spec


def _run(fake: FakeProvider, out: Path, tools: int = 3) -> tuple[str, Store]:
    run_id, _, store = run(plan_of([spec(fake)], tools), out)
    return run_id, store


def _every_cell_ends(store: Store, run_id: str, cells: int) -> list[Any]:
    reviews = store.reviews(run_id)
    assert len(reviews) == cells
    assert all(r.valid or r.error for r in reviews)
    assert all(b.state == "collected" for b in store.batches(run_id))
    return reviews


def _use(monkeypatch: pytest.MonkeyPatch, api: type[OpenAIBatchAPI]) -> None:
    def batch_api(self: OpenAIBackend) -> BatchAPI:
        return api(self, self._client)

    monkeypatch.setattr(OpenAIBackend, "batch_api", batch_api)


def test_a_batch_refused_at_validation_fails_its_cells_with_the_providers_reason(
    fake: FakeProvider, tmp_path: Path
) -> None:
    fake.configure(batch_fail_validation=True)
    run_id, store = _run(fake, tmp_path / "runs")
    reviews = _every_cell_ends(store, run_id, 12)
    assert not any(r.valid for r in reviews)
    assert all("(failed)" in (r.error or "") for r in reviews)
    # Sending the same lines again could only fail again: no follow-up batch.
    assert fake.stats()["batches"]["created"]["openai"] == 1
    store.close()


def test_a_results_file_cut_short_sends_the_lost_requests_again(
    fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class CutOnce(OpenAIBatchAPI):
        async def submit(self, entries: list[BatchEntry], metadata: dict[str, str]) -> BatchStatus:
            status = await super().submit(entries, metadata)
            fake.configure(batch_partial=False)  # only the first batch's file is cut
            return status

    fake.configure(batch_partial=True)
    _use(monkeypatch, CutOnce)
    run_id, store = _run(fake, tmp_path / "runs")
    reviews = _every_cell_ends(store, run_id, 12)
    first, follow_up = store.batches(run_id)
    assert (first.requests, follow_up.attempt) == (12, 2) and 0 < follow_up.requests < 12
    assert fake.stats()["batches"]["redundant"] == 0
    assert all(r.valid for r in reviews)
    store.close()


def test_half_expired_then_follow_ups(fake: FakeProvider, tmp_path: Path) -> None:
    fake.configure(batch_expire_rate=0.5, fault_seed=11)
    run_id, store = _run(fake, tmp_path / "runs", tools=5)
    reviews = _every_cell_ends(store, run_id, 20)
    rows = store.batches(run_id)
    assert rows[0].attempt == 1 and rows[1].attempt == 2
    # At most the policy's 4 tries each: what still expired is failed, with the reason.
    assert len(rows) <= 4
    for r in reviews:
        if not r.valid:
            assert "expired" in (r.error or "")
    assert fake.stats()["batches"]["redundant"] == 0
    store.close()


def test_result_lines_for_unknown_custom_ids_are_ignored_and_noted(
    fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Stranger(OpenAIBatchAPI):
        async def results(self, status: BatchStatus) -> AsyncIterator[BatchOutcome]:
            yield BatchOutcome("req-999999", error=TransientError("not ours"))
            async for outcome in super().results(status):
                yield outcome

    _use(monkeypatch, Stranger)
    run_id, store = _run(fake, tmp_path / "runs")
    reviews = _every_cell_ends(store, run_id, 12)
    assert all(r.valid for r in reviews)
    (row,) = store.batches(run_id)
    assert row.error == "1 result lines named no request of it: ignored"
    store.close()


def test_a_network_error_while_polling_is_tried_again(
    fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    looks: list[int] = []

    class Flaky(OpenAIBatchAPI):
        async def status(self, provider_batch_id: str) -> BatchStatus:
            looks.append(1)
            if len(looks) <= 3:
                raise TransientError("openai: ServerDisconnectedError")
            return await super().status(provider_batch_id)

    _use(monkeypatch, Flaky)
    run_id, store = _run(fake, tmp_path / "runs")
    assert all(r.valid for r in _every_cell_ends(store, run_id, 12))
    assert len(looks) >= 4
    store.close()


def test_a_cancelled_batch_keeps_what_was_done_and_fails_the_rest(
    fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.configure(batch_seconds=3600)

    class CancelOnFirstLook(OpenAIBatchAPI):
        async def status(self, provider_batch_id: str) -> BatchStatus:
            fake.advance_batches(seconds=1800)  # about half processed
            await self.cancel(provider_batch_id)
            return await super().status(provider_batch_id)

    _use(monkeypatch, CancelOnFirstLook)
    run_id, store = _run(fake, tmp_path / "runs", tools=5)
    reviews = _every_cell_ends(store, run_id, 20)
    done = [r for r in reviews if r.valid]
    cancelled = [r for r in reviews if not r.valid]
    assert done and cancelled
    assert all("(cancelled)" in (r.error or "") for r in cancelled)
    # Cancelled on purpose: nothing is sent again.
    assert fake.stats()["batches"]["created"]["openai"] == 1
    store.close()
