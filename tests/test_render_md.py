from __future__ import annotations

from panel.aggregate import build_record
from panel.render import render_markdown

from .factories import personas, review, tool

IDS = ["builder", "skeptic", "futurist", "business_analyst"]


def _page() -> str:
    a = tool("alpha", ship=3, skip=1, pricing="paid")
    b = tool("beta")
    b = b.model_copy(update={"name": "Beta | Pro"})
    rows = [review("alpha", p, v) for p, v in zip(IDS, ["ship", "ship", "skip", "ship"], strict=True)]
    rows += [review("beta", p, v) for p, v in zip(IDS, ["ship", None, "skip", "skip"], strict=True)]
    return render_markdown(build_record("run-7", 0.0, [a, b], personas(), ["fake:schema"], rows))


def test_page_has_every_section_in_order() -> None:
    page = _page()
    sections = [
        "# Alpha vs Beta | Pro",
        "## Which one should you ship with?",
        "## Alpha",
        "## Reviewer scorecard",
        "### The Builder",
        "### The Business Analyst",
        "## Reviewer split",
        "## Pricing read",
        "## Community vs panel",
    ]
    positions = [page.index(s) for s in sections]
    assert positions == sorted(positions)


def test_summary_table_shows_figures_and_escapes_pipes() -> None:
    page = _page()
    assert "| | Alpha | Beta \\| Pro |" in page
    assert "| Panel ship | **75%** (3 of 4) | **33%** (1 of 3; 1 failed) |" in page
    assert "| Community | 75% of 4 votes | — |" in page
    assert "| Entry | Paid | Free |" in page


def test_failed_review_shows_its_reason() -> None:
    page = _page()
    assert "FAILED" in page and "the reply is not valid JSON" in page


def test_headline_and_split_are_written_as_sentences() -> None:
    page = _page()
    assert "**Ship with Alpha: the panel backs it 3 of 4 (75%)" in page
    assert "Alpha splits the panel 3–1: The Futurist says skip." in page
    assert "| The Skeptic | ship | failed |" in page
