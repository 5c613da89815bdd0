"""The batch route reads each results line on its own: a poisoned line fails its cell with the
reason (or keeps it with its usage unknown), the other paid results are stored, and a bent
batch object does not stop the polling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from panel.errors import UserError
from panel.testing.fake_provider import FakeProvider

from .batches import PROVIDERS, plan_of, run, spec

#: the second of the example catalog's first three tools; its four requests are poisoned
POISONED = "Mistral Large 3"

#: a poisoned line's outcome: failed with this in its reason, or valid with its usage unknown
LINE_OUTCOMES = {
    "response_string": ("failed", "the result line carries no re"),
    "deep_line": ("failed", "its result line could not be read: it nests more than 64 levels deep"),
    "cut_line": ("failed", "its result line could not be read: it is not JSON"),
    "usage_string": ("unknown", "usage is 'n/a'"),
    "usage_negative": ("unknown", "-1000000000"),
    "usage_huge": ("unknown", "1000000000000000000000000000000"),
}
#: Mistral answers a small batch inline, in its job object: only JSON can be poisoned there
_NOT_INLINE = {"deep_line", "cut_line"}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("kind", sorted(LINE_OUTCOMES))
def test_a_bad_results_line_costs_its_cell_and_the_rest_are_stored(
    fake: FakeProvider, tmp_path: Path, provider: str, kind: str
) -> None:
    if provider == "mistral" and kind in _NOT_INLINE:
        pytest.skip("Mistral's inline results are JSON objects, never a broken line")
    fake.configure(batch_poison=kind, poison_match=POISONED)
    run_id, stats, store = run(plan_of([spec(fake, provider)]), tmp_path / "runs")
    reviews = store.reviews(run_id)
    assert len(reviews) == 12 and stats.done == 12
    assert store.get_run(run_id).status == "done"  # type: ignore[union-attr]
    outcome, reason = LINE_OUTCOMES[kind]
    others = [r for r in reviews if r.tool_id != "mistral-large-3"]
    assert len(others) == 8 and all(r.valid for r in others)
    poisoned = [r for r in reviews if r.tool_id == "mistral-large-3"]
    if outcome == "failed":
        assert all(not r.valid and reason in (r.error or "") for r in poisoned), [r.error for r in poisoned]
    else:
        assert all(r.valid for r in poisoned)
        rows = store.db.execute(
            """SELECT rp.meta, rp.cost_usd, rq.reserved_usd FROM replies rp
               JOIN requests rq ON rq.id = rp.request_id WHERE rp.meta LIKE '%usage_unknown%'"""
        ).fetchall()
        assert len(rows) == 4 and all(reason in json.loads(meta)["usage_unknown"] for meta, _, _ in rows)
        # Each charged the worst case reserved for it at the batch price: no refund, no overflow.
        assert all(cost == pytest.approx(reserved) and cost > 0 for _, cost, reserved in rows)
    store.close()


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("kind", ["errors_list", "counts_negative"])
def test_a_bent_batch_object_does_not_stop_the_polling(
    fake: FakeProvider, tmp_path: Path, provider: str, kind: str
) -> None:
    fake.configure(batch_status_poison=kind)
    _, stats, store = run(plan_of([spec(fake, provider)]), tmp_path / "runs")
    assert (stats.valid, stats.failed) == (12, 0)
    store.close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_batch_in_a_state_panel_does_not_know_stops_the_run_with_its_name(
    fake: FakeProvider, tmp_path: Path, provider: str
) -> None:
    """A state no provider documents ('paused') is a one-line stop that a resume picks up,
    not a ValueError out of the poll."""
    fake.configure(batch_status_poison="state_unknown")
    with pytest.raises(UserError) as stopped:
        run(plan_of([spec(fake, provider)]), tmp_path / "runs")
    assert "in a state panel does not know: 'paused'" in str(stopped.value)
    assert "panel review --resume" in str(stopped.value) and "\n" not in str(stopped.value)


@pytest.mark.parametrize("kind", ["usage_negative", "usage_inflated"])
def test_usage_in_batch_results_keeps_the_budget_a_ceiling(
    fake: FakeProvider, tmp_path: Path, kind: str
) -> None:
    fake.configure(batch_poison=kind)
    member = spec(fake, "openai", price_input=300.0, price_output=300.0)
    run_id, stats, store = run(plan_of([member], tools=9), tmp_path / "runs", max_cost=5.0)
    assert stats.stopped == "budget"
    assert 0 < store.spent(run_id) <= 5.0
    charges = store.db.execute(
        "SELECT rp.cost_usd, rq.reserved_usd FROM replies rp JOIN requests rq ON rq.id = rp.request_id"
    ).fetchall()
    # No result is charged more than its request's share of the batch's reservation.
    assert charges and all(c <= r + 1e-9 for c, r in charges), [tuple(c) for c in charges]
    store.close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_answers_under_each_others_custom_ids_are_never_taken_for_another_cells(
    fake: FakeProvider, tmp_path: Path, provider: str
) -> None:
    """Rotated among four personas' requests, each answer is another persona's review: none
    is stored as a valid review of a cell it does not answer."""
    fake.configure(batch_rotate=True)
    run_id, stats, store = run(plan_of([spec(fake, provider)], tools=1), tmp_path / "runs")
    assert stats.done == 4 and stats.valid == 0
    assert all(not r.valid and r.error for r in store.reviews(run_id))
    store.close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_answer_naming_the_model_behind_an_alias_is_its_cells(
    fake: FakeProvider, tmp_path: Path, provider: str
) -> None:
    """Each answer names a model other than the member's (an Azure deployment or a proxy's
    alias answers so, live and in batches alike): each is its cell's review, paid once."""
    fake.configure(batch_poison="model_renamed")
    run_id, stats, store = run(plan_of([spec(fake, provider)], tools=1), tmp_path / "runs")
    assert (stats.valid, stats.failed) == (4, 0), [r.error for r in store.reviews(run_id)]
    assert fake.stats()["batches"]["created"].get(provider) == 1  # none was asked again
    store.close()


def test_a_tool_call_to_another_reviews_tool_is_not_its_cells_answer(
    fake: FakeProvider, tmp_path: Path
) -> None:
    fake.configure(batch_rotate=True)
    run_id, stats, store = run(
        plan_of([spec(fake, "openai", structured="tools")], tools=1), tmp_path / "runs"
    )
    errors = [r.error or "" for r in store.reviews(run_id)]
    assert stats.valid == 0 and all("calls the tool" in e for e in errors), errors
    store.close()
