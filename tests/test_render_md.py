from __future__ import annotations

from dataclasses import replace

from panel.report.aggregate import build_record
from panel.report.render import render_markdown

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
        "# Alpha vs Beta \\| Pro",  # the pipe escaped, as everywhere in data text
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
    assert "Alpha splits the panel 3–1 (ship/skip): The Futurist says skip." in page
    assert "| The Skeptic | ship | failed |" in page


def test_catalog_and_model_text_cannot_inject_html_or_links() -> None:
    a = tool("alpha").model_copy(
        update={
            "name": "Alpha<img src=x onerror=alert(1)>",
            "description": "See [click](javascript:alert(1)) now",
            "links": {"site": "https://ok.example/a)[x](javascript:alert(1)"},
        }
    )
    rows = [review("alpha", p, "ship") for p in IDS]
    rows[0].data["review"] = "<script>alert(1)</script>"  # type: ignore[index]
    page = render_markdown(build_record("r", 0.0, [a], personas(), ["fake:schema"], rows))
    assert "<img" not in page and "<script>" not in page
    assert "Alpha&lt;img src=x onerror=alert(1)&gt;" in page
    assert "\\[click\\](javascript:alert(1))" in page
    assert "[site](https://ok.example/a%29[x]%28javascript:alert%281%29)" in page


def test_repeats_show_in_their_own_section_never_in_the_split() -> None:
    a, b = tool("alpha"), tool("beta")
    rows = [review(t, p, "ship") for t in ("alpha", "beta") for p in IDS]
    rows += [replace(review(t, p, "skip"), repeat=1) for t in ("alpha", "beta") for p in IDS]
    page = render_markdown(build_record("r", 0.0, [a, b], personas(), ["fake:schema"], rows, repeats=2))
    split = page[page.index("## Reviewer split") : page.index("## Self-consistency")]
    assert "Unanimous on Alpha" in split and "splits the panel" not in split
    assert "| The Builder | ship | ship |" in split
    section = page[page.index("## Self-consistency") : page.index("## Pricing read")]
    assert "0 of 8 comparisons (0%)" in section
    assert "| Reviewer | Repeats with repeat 0's verdict |" in section
    assert "| The Skeptic | 0 of 2 (0%) |" in section
    assert "| Panel ship | **100%** (4 of 4) | **100%** (4 of 4) |" in page


def test_a_partial_run_headline_reads_as_partial() -> None:
    rows = [review("alpha", p, "ship") for p in IDS[:3]]
    record = build_record("r", 0.0, [tool("alpha")], personas(), ["fake:schema"], rows, status="stopped")
    page = render_markdown(record)
    assert (
        "**Partial run: 3 of 4 reviews in; the run stopped. So far 3 of 3 say ship on Alpha (100%).**" in page
    )
    assert "The panel ships" not in page
