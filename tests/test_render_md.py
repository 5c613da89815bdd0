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
