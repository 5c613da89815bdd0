from __future__ import annotations

import pytest

from panel.aggregate import build_record, community_read, entry_read, ship_share

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
