from __future__ import annotations

from dataclasses import replace

import pytest

from panel.report.aggregate import build_record, community_read, entry_read, ship_share
from panel.store import ReviewRow

from .factories import personas, review, tool

IDS = ["builder", "skeptic", "futurist", "business_analyst"]


def _record(verdicts_a: list[str | None], verdicts_b: list[str | None], **tools: object):  # type: ignore[no-untyped-def]
    a, b = tools.get("a", tool("alpha")), tools.get("b", tool("beta"))
    rows = [review(a.id, p, v) for p, v in zip(IDS, verdicts_a, strict=True)]  # type: ignore[attr-defined]
    rows += [review(b.id, p, v) for p, v in zip(IDS, verdicts_b, strict=True)]  # type: ignore[attr-defined]
    return build_record("run-1", 0.0, [a, b], personas(), ["fake:schema"], rows)  # type: ignore[list-item]


def test_three_ship_of_four_is_75_percent() -> None:
    share = ship_share(
        [review("t", p, v) for p, v in zip(IDS, ["ship", "ship", "skip", "ship"], strict=True)]
    )
    assert (share.ship, share.valid, share.failed, share.pct, share.display) == (
        3,
        4,
        0,
        75.0,
        "75%",
    )


def test_failed_reviews_never_count_toward_ship_share() -> None:
    share = ship_share([review("t", p, v) for p, v in zip(IDS, ["ship", None, "skip", None], strict=True)])
    assert (share.ship, share.valid, share.failed) == (1, 2, 2)
    assert share.pct == 50.0


def test_no_valid_review_gives_a_dash_not_zero() -> None:
    share = ship_share([review("t", "builder", None)])
    assert share.pct is None and share.display == "—"


def test_community_share_or_dash() -> None:
    assert community_read(tool("x", ship=3, skip=1)).model_dump() == {
        "ship": 3,
        "skip": 1,
        "total": 4,
        "pct": 75.0,
        "display": "75%",
    }
    assert community_read(tool("x")).display == "—"
    assert community_read(tool("x", ship=0, skip=0)).pct is None


def test_entry_read_uses_the_catalog_note_or_a_default_reason() -> None:
    t = tool("x", pricing="freemium")
    assert entry_read(t).label == "Freemium" and "free tier" in entry_read(t).reason
    noted = t.model_copy(update={"pricing": t.pricing.model_copy(update={"note": "MIT licensed"})})
    assert entry_read(noted).reason == "MIT licensed"


def test_record_counts_headline_and_split() -> None:
    record = _record(["ship", "ship", "skip", "ship"], ["ship", "ship", "ship", None])
    alpha, beta = record.tools
    assert alpha.panel.pct == 75.0 and beta.panel.pct == 100.0
    assert beta.panel.failed == 1
    assert record.counts.model_dump() == {"reviews": 8, "valid": 7, "failed": 1}
    assert record.headline.pick == "beta"
    assert "Beta" in record.headline.text and "3 of 3" in record.headline.text
    split_a = record.split.within_tools[0]
    assert not split_a.unanimous and split_a.skip == ["The Futurist"]
    assert "3–1" in split_a.summary
    split_b = record.split.within_tools[1]
    assert split_b.unanimous and split_b.failed == ["The Business Analyst"]
    across = {a.persona_id: a for a in record.split.across_tools}
    assert across["futurist"].splits_tools is True
    assert across["builder"].splits_tools is False
    assert across["business_analyst"].splits_tools is None  # one side failed: unknown


def test_tie_has_no_pick() -> None:
    record = _record(["ship", "skip", "ship", "skip"], ["skip", "ship", "skip", "ship"])
    assert record.headline.pick is None and record.headline.text.startswith("A tie")


def test_community_vs_panel_gap_in_points() -> None:
    record = _record(
        ["ship", "skip", "skip", "skip"],
        ["ship"] * 4,
        a=tool("alpha", ship=9, skip=1),
        b=tool("beta"),
    )
    alpha, beta = record.community_vs_panel
    assert alpha.gap == pytest.approx(25.0 - 90.0)
    assert "65 points cooler" in alpha.note
    assert beta.community_pct is None and beta.gap is None and "No community votes" in beta.note


def test_members_that_disagree_are_listed() -> None:
    a, b = tool("alpha"), tool("beta")
    members = ["fake:one", "fake:two"]
    rows = [review(t.id, p, "ship", m) for t in (a, b) for p in IDS for m in members]
    rows[0] = review("alpha", "builder", "skip", "fake:one")
    record = build_record("r", 0.0, [a, b], personas(), members, rows)
    assert [(d.tool_id, d.persona_id) for d in record.split.between_members] == [("alpha", "builder")]
    assert record.tools[0].panel_by_member["fake:one"].pct == 75.0
    assert record.tools[0].panel_by_member["fake:two"].pct == 100.0
    assert record.tools[0].panel.pct == 87.5


def test_split_names_every_dissent_with_persona_defined_verdicts() -> None:
    rows = [review("alpha", p, v) for p, v in zip(IDS, ["ship", "ship", "wait", "later"], strict=True)]
    split = build_record("r", 0.0, [tool("alpha")], personas(), ["fake:schema"], rows).split.within_tools[0]
    assert not split.unanimous
    assert split.summary == (
        "Alpha splits the panel 2–1–1 (ship/later/wait): "
        "The Business Analyst says later; The Futurist says wait."
    )
    rows = [review("alpha", p, "wait") for p in IDS]
    split = build_record("r", 0.0, [tool("alpha")], personas(), ["fake:schema"], rows).split.within_tools[0]
    assert split.unanimous and split.summary == "Unanimous on Alpha: every valid review says wait."


def _repeat(row: ReviewRow, k: int) -> ReviewRow:
    return replace(row, repeat=k)


def _two_repeats(first: dict[str, list[str]], second: dict[str, list[str]], members: list[str]):  # type: ignore[no-untyped-def]
    """A 2-repeat run on alpha and beta: verdicts per tool in persona order, for every member."""
    rows = [
        _repeat(review(t, p, v, m), k)
        for k, verdicts in enumerate((first, second))
        for m in members
        for t, column in verdicts.items()
        for p, v in zip(IDS, column, strict=True)
    ]
    return build_record("r", 0.0, [tool("alpha"), tool("beta")], personas(), members, rows, repeats=2)


def test_repeat_0_is_the_panel_and_later_repeats_only_feed_self_consistency() -> None:
    record = _two_repeats(
        {"alpha": ["ship"] * 4, "beta": ["ship", "skip", "skip", "skip"]},
        {"alpha": ["skip"] * 4, "beta": ["skip", "skip", "skip", "skip"]},
        ["fake:schema"],
    )
    alpha, beta = record.tools
    assert (alpha.panel.ship, alpha.panel.valid, alpha.panel.display) == (4, 4, "100%")
    assert (beta.panel.ship, beta.panel.valid, beta.panel.display) == (1, 4, "25%")
    assert alpha.panel_by_member["fake:schema"].pct == 100.0
    assert [(e.persona_id, e.verdict, e.repeat) for e in alpha.scorecard] == [(p, "ship", 0) for p in IDS]
    split = record.split.within_tools[0]
    assert split.unanimous and split.summary == "Unanimous on Alpha: every valid review says ship."
    assert (
        record.split.within_tools[1].summary
        == "Beta splits the panel 3–1 (skip/ship): The Builder says ship."
    )
    across = {a.persona_id: a for a in record.split.across_tools}
    assert across["builder"].verdicts == {"alpha": "ship", "beta": "ship"}
    assert across["builder"].splits_tools is False and across["skeptic"].splits_tools is True
    assert record.counts.model_dump() == {"reviews": 8, "valid": 8, "failed": 0}
    assert record.headline.text.startswith("Ship with Alpha: the panel backs it 4 of 4 (100%)")

    sc = record.self_consistency
    assert sc is not None and sc.repeats == 2
    assert (sc.agree, sc.compared, sc.display) == (3, 8, "38%")
    builder = next(r for r in sc.raters if r.persona_id == "builder")
    assert (builder.agree, builder.compared, builder.display) == (0, 2, "0%")
    changed = [(c.tool_id, c.persona_id, c.verdicts) for c in sc.cells if c.stable is False]
    assert changed == [
        ("alpha", "builder", ["ship", "skip"]),
        ("beta", "builder", ["ship", "skip"]),
        ("alpha", "skeptic", ["ship", "skip"]),
        ("alpha", "futurist", ["ship", "skip"]),
        ("alpha", "business_analyst", ["ship", "skip"]),
    ]
    assert sc.summary.startswith(
        "Self-consistency over 2 repeats (kept out of the panel's figures, which read repeat 0): "
        "later repeats give "
        "repeat 0's verdict in 3 of 8 comparisons (38%). Changed on a repeat: "
        "Alpha · The Builder (ship → skip); Beta · The Builder (ship → skip);"
    )


def test_members_disagreeing_only_on_a_later_repeat_do_not_disagree() -> None:
    members = ["fake:one", "fake:two"]
    same = {"alpha": ["ship"] * 4, "beta": ["ship"] * 4}
    record = _two_repeats(same, {"alpha": ["skip"] * 4, "beta": ["ship"] * 4}, members)
    assert record.split.between_members == []
    assert all(t.panel.pct == 100.0 for t in record.tools)
    assert all(s.unanimous for s in record.split.within_tools)
    sc = record.self_consistency
    assert sc is not None and [r.rater for r in sc.raters][:2] == [
        "The Builder (fake:one)",
        "The Skeptic (fake:one)",
    ]
    assert (sc.agree, sc.compared) == (8, 16)


def test_a_failed_repeat_is_not_compared() -> None:
    record = _two_repeats(
        {"alpha": ["ship"] * 4, "beta": ["ship"] * 4},
        {"alpha": ["ship"] * 4, "beta": ["ship"] * 4},
        ["fake:schema"],
    )
    assert record.self_consistency is not None
    assert record.self_consistency.summary.endswith("No reviewer changed its verdict.")
    rows = [review("alpha", p, "ship") for p in IDS] + [_repeat(review("alpha", "builder", None), 1)]
    record = build_record("r", 0.0, [tool("alpha")], personas(), ["fake:schema"], rows, repeats=2)
    sc = record.self_consistency
    assert sc is not None and (sc.agree, sc.compared) == (0, 0)
    assert sc.cells[0].verdicts == ["ship", None] and sc.cells[0].stable is None
    assert record.tools[0].panel.failed == 0  # the failed repeat is no failed panel review


def test_one_repeat_has_no_self_consistency_and_a_complete_run_state() -> None:
    record = _record(["ship"] * 4, ["skip"] * 4)
    assert record.self_consistency is None
    assert record.run.model_dump() == {
        "status": "done", "planned": 8, "stored": 8, "missing": 0, "complete": True,
    }  # fmt: skip


def test_a_partial_run_says_so_in_its_headline_and_picks_nothing() -> None:
    a, b = tool("alpha"), tool("beta")
    rows = [review("alpha", p, v) for p, v in zip(IDS, ["ship", "ship", "ship", "skip"], strict=True)]
    rows.append(review("beta", "builder", "skip"))
    record = build_record("r", 0.0, [a, b], personas(), ["fake:schema"], rows, status="stopped")
    assert record.run.model_dump() == {
        "status": "stopped", "planned": 8, "stored": 5, "missing": 3, "complete": False,
    }  # fmt: skip
    assert record.headline.pick is None
    assert record.headline.text == (
        "Partial run: 5 of 8 reviews in; the run stopped. "
        "So far Alpha leads: 3 of 4 say ship (75%), against Beta 0% (0 of 1)."
    )
    one = build_record("r", 0.0, [a], personas(), ["fake:schema"], rows[:2], status="interrupted")
    assert one.headline.text == (
        "Partial run: 2 of 4 reviews in; the run was interrupted. So far 2 of 2 say ship on Alpha (100%)."
    )
    none = build_record("r", 0.0, [a], personas(), ["fake:schema"], [], status="running")
    assert (
        none.headline.text == "Partial run: 0 of 4 reviews in; the run is still running. No valid review yet."
    )


def test_a_missing_repeat_counts_as_missing() -> None:
    rows = [review("alpha", p, "ship") for p in IDS]
    record = build_record("r", 0.0, [tool("alpha")], personas(), ["fake:schema"], rows, repeats=2)
    assert (record.run.planned, record.run.stored, record.run.missing) == (8, 4, 4)
    assert record.headline.text.startswith("Partial run: 4 of 8 reviews in; the run is marked done.")
