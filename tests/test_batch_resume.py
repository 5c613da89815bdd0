"""Resuming the batch route: the budget, batches an earlier process left, refusals, a provider
that cannot be reached. Each ends with every cell valid or failed with a reason, and a line
that says what happened."""

from __future__ import annotations

from pathlib import Path

import pytest

from panel.backends.anthropic_batch import AnthropicBatchAPI
from panel.backends.batch import BatchEntry, BatchStatus
from panel.errors import UserError
from panel.run.batch import BatchRunner
from panel.run.plan import Plan
from panel.store import Store
from panel.testing.fake_provider import FakeProvider

from .batches import MODELS, plan_of, resume, run, spec

_spec, _plan, _run, _resume = spec, plan_of, run, resume


def _worst(plan: Plan, member: int = 0) -> float:
    m = plan.members[member]
    assert m.price is not None
    cell = next(plan.cells_for(m.backend))
    return BatchRunner._worst(m.price.for_route("batch"), m.request(cell, plan.prompts, plan.sampling))


def test_a_resume_counts_the_batches_in_flight_against_the_budget(fake: FakeProvider, tmp_path: Path) -> None:
    fake.configure(batch_seconds=3600)
    plan = _plan([_spec(fake, "openai")])
    worst = _worst(plan)
    run_id, stats, store = _run(plan, tmp_path / "runs", max_cost=worst * 5.5, detach=True)
    assert stats.stopped == "budget" and [b.requests for b in store.batches(run_id)] == [5]
    store.close()
    fake.configure(batch_seconds=0)
    fake.advance_batches()
    run_id, stats, store = _resume(tmp_path / "runs", run_id, max_cost=worst * 9.5)
    # The first batch's 5 stay reserved while new cells are submitted: at most 4 more fit.
    assert sum(b.reserved_usd for b in store.batches(run_id)) <= worst * 9.5
    assert [b.requests for b in store.batches(run_id)][1] <= 4
    store.close()


def test_a_stop_does_not_leave_the_batches_in_flight_uncollected(fake: FakeProvider, tmp_path: Path) -> None:
    fake.configure(batch_seconds=3600)
    live, batch = _spec(fake, "openai", route="live", concurrency=1), _spec(fake, "mistral")
    plan = _plan([live, batch])
    cheap = 12 * _worst(plan, 1) + 3.5 * _worst(plan, 0)
    run_id, stats, store = _run(plan, tmp_path / "runs", max_cost=cheap, detach=True)
    assert stats.stopped == "budget"
    spent = store.spent(run_id)
    store.close()
    fake.advance_batches()
    # The live member stops at once on this budget: the batch's results are still collected.
    run_id, stats, store = _resume(tmp_path / "runs", run_id, max_cost=spent + 0.5 * _worst(plan, 0))
    (row,) = store.batches(run_id)
    assert row.state == "collected" and row.error is None
    mistral = [r for r in store.reviews(run_id) if r.member == MODELS["mistral"]]
    assert len(mistral) == 12 and all(r.valid for r in mistral)
    store.close()


def test_two_unrecorded_batches_of_one_size_are_not_taken_for_one(
    fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Dies(BaseException):
        pass

    real = AnthropicBatchAPI.submit
    calls = [0]

    async def dies_second(
        self: AnthropicBatchAPI, entries: list[BatchEntry], metadata: dict[str, str]
    ) -> BatchStatus:
        calls[0] += 1
        if calls[0] == 2:
            raise Dies()  # killed before the second batch's create call
        return await real(self, entries, metadata)

    monkeypatch.setattr(AnthropicBatchAPI, "max_requests", 6)
    monkeypatch.setattr(AnthropicBatchAPI, "submit", dies_second)
    fake.configure(batch_seconds=3600)
    plan = _plan([_spec(fake, "anthropic")])
    with pytest.raises(Dies):
        _run(plan, tmp_path / "runs")
    monkeypatch.setattr(AnthropicBatchAPI, "submit", real)
    with Store(tmp_path / "runs", readonly=True) as store:
        (run_id,) = [r[0] for r in store.db.execute("SELECT id FROM runs")]
    fake.configure(batch_seconds=0)
    fake.advance_batches()
    run_id, stats, store = _resume(tmp_path / "runs", run_id)
    ids = [b.provider_batch_id for b in store.batches(run_id)]
    assert len(ids) == len(set(ids)) == 2
    assert stats.valid == 12 and fake.stats()["batches"]["created"]["anthropic"] == 2
    store.close()


def test_a_batch_refused_at_submission_fails_its_cells_with_the_reason(
    fake: FakeProvider, tmp_path: Path
) -> None:
    fake.configure(batch_fail_validation=True)  # Anthropic answers 400 at creation
    run_id, stats, store = _run(_plan([_spec(fake, "anthropic")]), tmp_path / "runs")
    assert (stats.valid, stats.failed) == (0, 12)
    assert all("batch refused at submission" in (r.error or "") for r in store.reviews(run_id))
    (row,) = store.batches(run_id)
    assert row.state == "collected" and row.error
    store.close()


def test_a_provider_that_cannot_be_reached_while_polling_is_one_line(
    fake: FakeProvider, tmp_path: Path
) -> None:
    fake.configure(batch_seconds=3600)
    run_id, _, store = _run(_plan([_spec(fake, "openai")]), tmp_path / "runs", detach=True)
    store.close()
    fake.stop()
    with pytest.raises(UserError) as stopped:
        _resume(tmp_path / "runs", run_id)
    message = str(stopped.value)
    assert "could not be looked at" in message and f"panel review --resume {run_id}" in message


def test_results_that_cannot_be_read_are_read_again_on_resume(
    fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collections.abc import AsyncIterator

    from panel.backends.batch import BatchOutcome
    from panel.backends.openai_batch import OpenAIBatchAPI
    from panel.errors import TransientError

    real = OpenAIBatchAPI.results

    async def drops_midway(self: OpenAIBatchAPI, status: BatchStatus) -> AsyncIterator[BatchOutcome]:
        n = 0
        async for outcome in real(self, status):
            n += 1
            if n == 5:
                raise TransientError("openai: ServerDisconnectedError")
            yield outcome

    monkeypatch.setattr(OpenAIBatchAPI, "results", drops_midway)
    with pytest.raises(UserError, match="could not be read") as failed:
        _run(_plan([_spec(fake, "openai")]), tmp_path / "runs")
    run_id = str(failed.value).split("--resume ")[1].split("`")[0]
    monkeypatch.setattr(OpenAIBatchAPI, "results", real)
    run_id, _, store = _resume(tmp_path / "runs", run_id)
    assert len(store.reviews(run_id)) == 12 and all(r.valid for r in store.reviews(run_id))
    assert fake.stats()["batches"]["created"]["openai"] == 1  # read again, not sent again
    store.close()
