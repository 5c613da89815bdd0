"""The editor's data in the store: review history, edits beside the models' text, approvals;
and every existing reader (records, agreement, resume) reading the current review only."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from panel.analysis.long import long_table
from panel.backends.base import Reply, Usage
from panel.errors import UserError
from panel.report.load import load_record
from panel.store import CellKey, Store

KEY = CellKey("ollama", "builder", "fake:schema")


def _regenerate(store: Store, run_id: str, key: CellKey, verdict: str, note: str) -> None:
    """What a regenerate does after `archive_review`: a new request, its reply, a new review."""
    old = store.review_history(run_id, key)[-1].review
    rid = store.begin_request(run_id, key, "fake", "schema", 0, [], "review", {"seed": 99})
    store.finish_request(rid, Reply(text="{}", usage=Usage(7, 11), latency_s=0.5), 1, cost_usd=0.25)
    data = dict(old.data or {}, verdict=verdict, verdict_note=note)
    store.save_review(
        run_id, key, "fake", "schema", data=data, error=None, raw_reply="{}", request_id=rid, asks=1
    )


def test_archiving_keeps_the_old_review_whole_and_frees_its_cell(store: Store, made: str) -> None:
    before = store.review(made, KEY)
    assert before is not None and before.input_tokens > 0
    hid = store.archive_review(made, KEY, "too vague")
    assert store.review(made, KEY) is None and not store.has_review(made, KEY)
    (kept,) = store.review_history(made, KEY)
    assert kept.id == hid and kept.reason == "too vague" and kept.archived_at >= kept.created_at
    assert kept.review == before  # text, verdict, tokens, cost and latency, as they were

    _regenerate(store, made, KEY, "skip", "regenerated note")
    now = store.review(made, KEY)
    assert now is not None and (now.verdict, now.verdict_note) == ("skip", "regenerated note")
    # the new review counts its own request only, not the one of the review set aside
    assert (now.input_tokens, now.output_tokens, now.cost_usd) == (7, 11, 0.25)
    assert [h.review for h in store.review_history(made, KEY)] == [before]

    store.archive_review(made, KEY, "still weak")
    assert [h.reason for h in store.review_history(made, KEY)] == ["too vague", "still weak"]


def test_edits_sit_beside_the_models_text_and_the_latest_wins(store: Store, made: str) -> None:
    model = store.review(made, KEY)
    assert model is not None
    store.edit_review(made, KEY, "verdict_note", "first try", editor="ana")
    store.edit_review(made, KEY, "verdict_note", "  Solid local runner.  ", editor="ana")
    store.edit_review(made, KEY, "verdict", "skip")
    store.edit_review(made, KEY, "answers.gripe", "Ten minutes.")
    assert store.review(made, KEY) == model  # the model's review is untouched
    raw = sqlite3.connect(store.path).execute(
        "SELECT verdict_note, data FROM reviews WHERE tool_id = 'ollama' AND persona_id = 'builder'"
    )
    assert raw.fetchone() == (model.verdict_note, json.dumps(model.data))
    edits = {(e.field, e.value, e.editor) for e in store.edits(made)}
    assert edits == {
        ("answers.gripe", "Ten minutes.", None),
        ("verdict", "skip", None),
        ("verdict_note", "Solid local runner.", "ana"),
    }
    store.edit_review(made, KEY, "verdict", None)  # back to the model's verdict
    assert {e.field for e in store.edits(made)} == {"answers.gripe", "verdict_note"}


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("verdict", "maybe", "verdict 'maybe' of ollama by builder on fake:schema: use one of ship, skip"),
        ("score", "9", "cannot edit 'score' of a review: edit one of verdict, verdict_note, review"),
        (
            "answers.nope",
            "x",
            "'answers.nope' of ollama by builder on fake:schema: the persona asks",
        ),
        ("review", "   ", "review of ollama by builder on fake:schema: give some text"),
    ],
)
def test_a_bad_edit_is_one_clear_line(store: Store, made: str, field: str, value: str, says: str) -> None:
    with pytest.raises(UserError) as caught:
        store.edit_review(made, KEY, field, value)
    assert says in str(caught.value) and "\n" not in str(caught.value)
    assert store.edits(made) == []


def test_a_missing_or_failed_review_cannot_be_edited(store: Store, made: str) -> None:
    with pytest.raises(UserError, match="no review of ghost by builder on fake:schema in run"):
        store.edit_review(made, CellKey("ghost", "builder", "fake:schema"), "verdict", "ship")
    store.archive_review(made, KEY, "broken")
    store.save_review(made, KEY, "fake", "schema", data=None, error="timeout", raw_reply=None,
                      request_id=None, asks=2)  # fmt: skip
    with pytest.raises(UserError, match="failed: regenerate it rather than edit it"):
        store.edit_review(made, KEY, "verdict_note", "x")


def test_approvals_latest_wins_and_stay_with_the_review_they_approved(store: Store, made: str) -> None:
    store.approve(made, KEY, editor="ana")
    store.approve(made, CellKey("vllm", "skeptic", "fake:schema"))
    store.approve(made, CellKey("vllm", "skeptic", "fake:schema"), approved=False)
    found = store.approvals(made)
    assert (found[KEY].approved, found[KEY].editor) == (True, "ana")
    assert found[CellKey("vllm", "skeptic", "fake:schema")].approved is False
    store.edit_review(made, KEY, "verdict_note", "edited before the regenerate")
    store.approve(made, KEY, editor="ana")  # the edited text, approved again

    store.archive_review(made, KEY, "regenerate")
    _regenerate(store, made, KEY, "ship", "new")
    # the new review starts unedited and unapproved; the old one keeps what it had
    assert not store.approvals(made)[KEY].approved and store.edits(made) == []
    (old,) = store.review_history(made, KEY)
    assert old.approval is not None and old.approval.approved and old.approval.editor == "ana"
    assert [(e.field, e.value) for e in old.edits] == [("verdict_note", "edited before the regenerate")]


def test_an_edit_or_a_regenerate_takes_an_approval_back_and_says_why(store: Store, made: str) -> None:
    other = CellKey("vllm", "skeptic", "fake:schema")
    store.approve(made, KEY, editor="ana")
    store.approve(made, other, editor="ana")
    store.edit_review(made, KEY, "verdict_note", "Sharper.", editor="ben")
    found = store.approvals(made)
    assert (found[KEY].approved, found[KEY].editor, found[KEY].reason) == (False, "ben", "edited")
    assert found[other].approved and found[other].reason is None  # the other review is as it was
    store.edit_review(
        made, KEY, "verdict_note", None, editor="ben"
    )  # back to the model's: no approval to take
    assert store.approvals(made)[KEY].reason == "edited"

    store.archive_review(made, other, "too vague", editor="cy")
    withdrawn = store.approvals(made)[other]
    assert (withdrawn.approved, withdrawn.editor, withdrawn.reason) == (False, "cy", "regenerated")
    (history,) = store.review_history(made, other)
    assert history.editor == "cy" and history.approval is not None and history.approval.approved
    _regenerate(store, made, other, "ship", "new")
    assert store.approvals(made)[other].reason == "regenerated"  # the new review: the page says why


def test_records_and_the_long_table_read_the_current_review_only(store: Store, made: str) -> None:
    before = long_table(store, [made])
    store.archive_review(made, KEY, "regenerate")
    _regenerate(store, made, KEY, "skip", "the regenerated one")
    rows = long_table(store, [made])
    assert len(rows) == len(before) == 4
    mine = [r for r in rows if (r["tool"], r["persona"]) == ("ollama", "builder")]
    assert [(r["verdict"], r["input_tokens"]) for r in mine] == [("skip", 7)]
    record = load_record(store, made)
    assert record.counts.reviews == 4 and record.run.missing == 0
    notes = [e.verdict_note for t in record.tools for e in t.scorecard]
    assert notes.count("the regenerated one") == 1 and len(notes) == 4


def test_panel_render_shows_the_regenerated_review_and_not_the_old(
    store: Store, made: str, cli: Any, runs_dir: Path
) -> None:
    old = store.review(made, KEY)
    assert old is not None and old.verdict_note
    store.archive_review(made, KEY, "regenerate")
    _regenerate(store, made, KEY, "skip", "Regenerated verdict note")
    store.close()
    page = cli("render", made, "--format", "md", "--runs", str(runs_dir))
    assert page.code == 0, page.err
    assert "Regenerated verdict note" in page.out
    assert old.verdict_note not in page.out


def test_resume_reviews_a_cell_set_aside_again_and_nothing_else(
    store: Store, made: str, cli: Any, runs_dir: Path
) -> None:
    store.archive_review(made, KEY, "regenerate")
    store.mark_run(made, "stopped")
    others = {r.key: r for r in store.reviews(made)}
    store.close()
    resumed = cli("review", "--resume", made, "--out", str(runs_dir), "--progress", "quiet")
    assert resumed.code == 0, resumed.err
    with Store(runs_dir, readonly=True) as after:
        assert after.has_review(made, KEY) and len(after.review_history(made, KEY)) == 1
        assert {r.key: r for r in after.reviews(made) if r.key != KEY} == others
        assert after.review_counts(made) == (4, 0)


def test_a_store_read_before_its_migration_has_no_edits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import panel.store.connection as connection
    from panel.store import MIGRATIONS

    monkeypatch.setattr(connection, "MIGRATIONS", MIGRATIONS[:4])
    Store(tmp_path).close()
    monkeypatch.undo()
    with Store(tmp_path, readonly=True) as old:
        assert old.edits("r") == [] and old.approvals("r") == {} and old.review_history("r", KEY) == []
        assert old.reviews("r") == []
