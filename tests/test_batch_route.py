"""The batch route end to end: the engine, the ledger and each provider's Batch API (OpenAI,
Anthropic, Mistral), against the loopback provider's batch endpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from panel.catalog import load_catalog
from panel.errors import UnreachableError
from panel.personas import load_personas
from panel.resources import data_dir
from panel.run.plan import Plan, build_members
from panel.run.retry import RetryPolicy
from panel.testing.fake_provider import FakeProvider

from .batches import MODELS, PROVIDERS, plan_of, resume, run, spec
from .conftest import EXAMPLE_CATALOG


def _plan(fake: FakeProvider, tools: int = 3, provider: str = "openai", **options: Any) -> Plan:
    return plan_of([spec(fake, provider, **options)], tools)


_run = run


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_cell_goes_in_one_batch_and_comes_back_valid(
    fake: FakeProvider, tmp_path: Path, provider: str
) -> None:
    plan = _plan(fake, provider=provider)
    run_id, stats, store = _run(plan, tmp_path / "runs")
    assert (stats.total, stats.valid, stats.failed) == (12, 12, 0)
    batches = fake.stats()["batches"]
    assert batches["created"] == {provider: 1} and batches["requests"] == {provider: 12}
    assert fake.stats()["batch_duplicates"] == 0
    assert fake.stats()["requests"] == 0  # nothing went live
    (row,) = store.batches(run_id)
    assert row.state == "collected" and row.requests == 12 and row.provider_batch_id
    # The spend is at the batch price: half of what the same replies cost live.
    live = sum(
        plan.members[0].price.cost(r.usage)  # type: ignore[union-attr]
        for r in (store.stored_reply(k)[1] for (k,) in store.db.execute("SELECT cache_key FROM requests"))  # type: ignore[index]
    )
    assert store.spent(run_id) == pytest.approx(live / 2)
    store.close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_errored_and_expired_requests_go_again_in_follow_up_batches(
    fake: FakeProvider, tmp_path: Path, provider: str
) -> None:
    fake.configure(batch_error_rate=0.25, batch_expire_rate=0.25, fault_seed=3)
    plan = _plan(fake, tools=5, provider=provider)
    run_id, stats, store = _run(plan, tmp_path / "runs")
    assert stats.valid + stats.failed == 20
    rows = store.batches(run_id)
    assert len(rows) >= 2 and [r.attempt for r in rows][:2] == [1, 2]
    # The first follow-up carries exactly what errored or expired in the first batch (Mistral
    # leaves expired requests out of its files: they are noticed by their missing custom_ids).
    first = fake.stats()["batches"]["list"][0]["counts"]
    assert first["errored"] and first["expired"]
    assert rows[1].requests == first["errored"] + first["expired"]
    assert all(r.state == "collected" for r in rows)
    # Each follow-up carried only what had not come back: nothing answered went twice.
    assert fake.stats()["batches"]["redundant"] == 0
    failed = [r for r in store.reviews(run_id) if not r.valid]
    assert all(r.error for r in failed)
    store.close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_cached_cell_is_never_submitted(fake: FakeProvider, tmp_path: Path, provider: str) -> None:
    plan = _plan(fake, provider=provider)
    _run(plan, tmp_path / "runs")[2].close()
    run_id, stats, store = _run(_plan(fake, provider=provider), tmp_path / "runs")
    assert stats.cached == 12 and stats.valid == 12
    assert fake.stats()["batches"]["created"] == {provider: 1}  # only the first run's
    assert store.batches(run_id) == []
    store.close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_live_run_after_a_batch_run_is_served_from_the_cache(
    fake: FakeProvider, tmp_path: Path, provider: str
) -> None:
    # The batch line carries the body the live route sends, so both routes key it the same.
    _run(_plan(fake, provider=provider), tmp_path / "runs")[2].close()
    _, stats, store = _run(_plan(fake, provider=provider, route="live"), tmp_path / "runs")
    store.close()
    assert stats.cached == 12 and stats.valid == 12
    assert fake.stats()["requests"] == 0  # nothing went live


def test_the_budget_is_reserved_per_batch_before_it_goes(fake: FakeProvider, tmp_path: Path) -> None:
    plan = _plan(fake)
    price = plan.members[0].price
    assert price is not None
    # Room for the worst case of five requests at the batch price, not six.
    one = _plan(fake).members[0]
    from panel.run.batch import BatchRunner

    cell = next(plan.cells_for(one.backend))
    worst = BatchRunner._worst(price.for_route("batch"), one.request(cell, plan.prompts, plan.sampling))
    run_id, stats, store = _run(plan, tmp_path / "runs", max_cost=worst * 5.5)
    assert stats.stopped == "budget"
    (row,) = store.batches(run_id)
    assert row.requests == 5 and row.state == "collected"
    assert store.spent(run_id) <= worst * 5.5
    assert len(store.reviews(run_id)) == 5  # the rest waits for a resume with more budget
    store.close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_batch_spend_is_half_the_live_spend(fake: FakeProvider, tmp_path: Path, provider: str) -> None:
    batch_id, batch_stats, batch_store = _run(_plan(fake, provider=provider), tmp_path / "batch")
    live_id, live_stats, live_store = _run(_plan(fake, provider=provider, route="live"), tmp_path / "live")
    assert batch_stats.valid == live_stats.valid == 12
    live = live_store.spent(live_id)
    assert live > 0 and batch_store.spent(batch_id) == pytest.approx(live / 2)
    batch_store.close(), live_store.close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_truncated_results_file_leaves_the_lost_lines_to_a_follow_up(
    fake: FakeProvider, tmp_path: Path, provider: str
) -> None:
    fake.configure(batch_partial=True)  # every batch's main results file is cut mid-line
    run_id, stats, store = _run(_plan(fake, provider=provider), tmp_path / "runs")
    assert stats.valid + stats.failed == 12
    first, second, *_ = store.batches(run_id)
    answered = store.db.execute(
        "SELECT COUNT(*) FROM batch_requests br JOIN replies rp ON rp.request_id = br.request_id"
        " WHERE br.batch_key = ? AND rp.error IS NULL",
        (first.batch_key,),
    ).fetchone()[0]
    assert 0 < answered < 12
    assert second.attempt == 2 and second.requests == 12 - answered
    assert fake.stats()["batches"]["redundant"] == 0  # no line that came back whole went again
    assert all(r.error for r in store.reviews(run_id) if not r.valid)
    store.close()


def test_three_batch_members_in_one_run_each_poll_their_own(fake: FakeProvider, tmp_path: Path) -> None:
    specs = [spec(fake, p) for p in PROVIDERS]
    plan = Plan(
        tools=list(load_catalog(EXAMPLE_CATALOG))[:2],
        personas=list(load_personas(data_dir("personas")).values()),
        members=build_members(specs),
        specs=specs,
        catalog_path=EXAMPLE_CATALOG,
    )
    run_id, stats, store = _run(plan, tmp_path / "runs")
    assert (stats.total, stats.valid) == (24, 24)
    assert sorted(r.member for r in store.batches(run_id)) == sorted(MODELS[p] for p in PROVIDERS)
    assert fake.stats()["batches"]["created"] == {p: 1 for p in PROVIDERS}
    store.close()


@pytest.mark.parametrize("reask_live", [False, True], ids=["reask-batch", "reask-live"])
def test_invalid_replies_are_asked_again_once(fake: FakeProvider, tmp_path: Path, reask_live: bool) -> None:
    fake.configure(fault_rate=0.4, faults=["malformed"], fault_seed=2)
    run_id, stats, store = _run(_plan(fake), tmp_path / "runs", reask_live=reask_live)
    assert stats.valid + stats.failed == 12
    asks = dict(store.db.execute("SELECT ask, COUNT(*) FROM requests GROUP BY ask").fetchall())
    assert asks[1] == 12 and asks[2] > 0  # the malformed first replies were asked again
    rows = store.batches(run_id)
    live = fake.stats()["requests"]
    if reask_live:
        assert len(rows) == 1 and live == asks[2]
    else:
        assert len(rows) >= 2 and rows[1].requests == asks[2] and live == 0
    for review in store.reviews(run_id):
        assert review.valid or "invalid after re-ask" in (review.error or "")
    store.close()


def test_two_stores_on_one_account_never_send_the_same_custom_id(fake: FakeProvider, tmp_path: Path) -> None:
    # Request ids restart at 1 in every store; the run id in the custom_id keeps them apart,
    # so a provider without metadata (Anthropic) can tell one store's batches from another's.
    for folder in ("a", "b"):
        _run(_plan(fake, provider="anthropic"), tmp_path / folder)[2].close()
    assert fake.stats()["batches"]["created"]["anthropic"] == 2
    assert fake.stats()["batch_duplicates"] == 0


def test_a_live_reask_to_a_server_gone_leaves_its_cells_for_the_resume(
    fake: FakeProvider, tmp_path: Path
) -> None:
    """The batch's invalid replies are asked again live, and the server refuses every
    connection by then: the member stops, as on the live route, and the cells wait for
    `--resume` instead of being stored as failed (a failed review is kept: a resume would
    not have made them again)."""
    fake.configure(fault_rate=0.4, faults=["malformed"], fault_seed=2)
    plan = _plan(fake)
    backend = plan.members[0].backend

    async def refused(request: Any) -> Any:
        raise UnreachableError(f"{backend.label}: Cannot connect to host")

    backend.generate = refused  # type: ignore[method-assign]
    fast = RetryPolicy(base_wait=0.0, max_wait=0.0)
    run_id, stats, store = _run(plan, tmp_path / "runs", reask_live=True, retry=fast)
    assert list(stats.members_stopped) == [backend.label]
    assert "refused every connection" in stats.members_stopped[backend.label]
    made = store.reviews(run_id)
    assert 0 < len(made) < 12 and all(review.valid for review in made)
    store.close()
    # The server is back: the resume makes the rest.
    run_id, stats, store = resume(tmp_path / "runs", run_id, reask_live=True, retry=fast)
    assert len(store.reviews(run_id)) == 12 and not stats.members_stopped
    store.close()
