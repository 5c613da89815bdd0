"""Head-to-head answers in the store: both orders of a pair kept side by side, a failed ask
kept with its error, each answer's tokens from its own requests only (not from a review of the
tool shown first), and the stored rows read back into the combined result."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from panel.backends.base import Reply, Usage
from panel.report.head_to_head import answers_from_store, judge_bias, pair_results
from panel.store import HEAD_TO_HEAD_ROUND, CellKey, Store

REVIEW = {"answers": {"angle": "a"}, "review": "r", "verdict_note": "n", "verdict": "ship"}


def _ask(store: Store, shown: tuple[str, str], member: str, tokens: int, text: str) -> int:
    rid = store.begin_request(
        "r",
        CellKey(shown[0], "skeptic", member),
        "fake",
        "m",
        1,
        [],
        "skeptic_head_to_head",
        {},
        round_=HEAD_TO_HEAD_ROUND,
        rival=shown[1],
    )
    store.finish_request(rid, Reply(text=text, usage=Usage(tokens, 1)), 1)
    return rid


def _save(
    store: Store,
    member: str,
    shown: tuple[str, str],
    picked: str | None,
    rid: int | None,
    error: str | None = None,
) -> None:
    store.save_head_to_head(
        "r", "skeptic", member, shown, "fake", "m", picked=picked, reason=picked and "first",
        error=error, raw_reply=None, request_id=rid, asks=1,
    )  # fmt: skip


def test_both_orders_and_a_failed_ask_are_stored_and_read_back(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs")
    store.create_run("r", "compare", None, {}, [], [])
    # A review of the first-shown tool by the same judge: its tokens stay its own.
    rid = store.begin_request("r", CellKey("alpha", "skeptic", "m1"), "fake", "m", 1, [], "skeptic", {})
    store.finish_request(rid, Reply(text="{}", usage=Usage(1000, 100)), 1)
    store.save_review(
        "r",
        CellKey("alpha", "skeptic", "m1"),
        "fake",
        "m",
        data=REVIEW,
        error=None,
        raw_reply="{}",
        request_id=rid,
        asks=1,
    )
    forward = _ask(store, ("alpha", "beta"), "m1", 7, '{"ship_with": "A", "reason": "first"}')
    swapped = _ask(store, ("beta", "alpha"), "m1", 9, '{"ship_with": "A", "reason": "first"}')
    broken = _ask(store, ("alpha", "beta"), "m2", 5, "not json")
    _save(store, "m1", ("alpha", "beta"), "alpha", forward)
    _save(store, "m1", ("beta", "alpha"), "beta", swapped)
    _save(store, "m2", ("alpha", "beta"), None, broken, error="the reply was not JSON")
    store.commit()
    rows = store.head_to_heads("r")
    assert [(r.member, r.first_tool, r.second_tool, r.picked, r.valid) for r in rows] == [
        ("m1", "alpha", "beta", "alpha", True),
        ("m1", "beta", "alpha", "beta", True),
        ("m2", "alpha", "beta", None, False),
    ]
    assert [r.input_tokens for r in rows] == [7, 9, 5]
    assert rows[2].error == "the reply was not JSON"
    (review,) = store.reviews("r")
    assert review.input_tokens == 1000  # no head-to-head ask counted into the review
    results = pair_results(answers_from_store(rows))
    assert [(r.member, r.outcome) for r in results] == [("m1", "first-shown"), ("m2", "failed")]
    by_member = {j.member: j for j in judge_bias(results)}
    assert by_member["m1"].position_bias.value == 1.0
    assert by_member["m2"].failed == 1 and by_member["m2"].consistency.n == 0
    # One answer per order of a pair and judge; a pick must be one of the two tools shown.
    with pytest.raises(sqlite3.IntegrityError):
        _save(store, "m1", ("alpha", "beta"), "alpha", None)
    with pytest.raises(sqlite3.IntegrityError):
        _save(store, "m3", ("alpha", "beta"), "gamma", None)
    store.close()
