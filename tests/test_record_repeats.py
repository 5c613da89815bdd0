"""A real run with repeats and a run left unfinished, read back by `load_record`.

Repeat 0 is the panel; later repeats appear only in the record's self-consistency part.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from panel.backends.base import Request
from panel.backends.fake import FakeBackend
from panel.report.aggregate import build_record
from panel.report.load import load_record
from panel.report.record import ComparisonRecord
from panel.report.render import render_html, render_markdown
from panel.run.plan import plan_compare, run_plan
from panel.store import Store
from panel.testing.schema_fill import fill

from .conftest import EXAMPLE_CATALOG
from .factories import personas, review, tool


def _ship_then_skip(request: Request, calls: int) -> str:
    """Repeat 0 says ship, repeat 1 says skip: the repeats disagree on every cell."""
    data = fill(request.schema, f"seed-{calls}")
    data["verdict"] = "ship" if request.sampling.seed == 1234 else "skip"
    return json.dumps(data)


def _two_repeat_run(tmp_path: Path) -> ComparisonRecord:
    plan = plan_compare(["ollama", "vllm"], catalog=EXAMPLE_CATALOG, backends=["fake"], repeats=2)
    plan.members[0].backend = FakeBackend(responder=_ship_then_skip)
    with Store(tmp_path / "runs") as store:
        run_id, _ = asyncio.run(run_plan(plan, store, "test"))
        return load_record(store, run_id)


def test_a_two_repeat_run_whose_repeats_disagree_reads_repeat_0(tmp_path: Path) -> None:
    record = _two_repeat_run(tmp_path)
    for card in record.tools:
        assert (card.panel.ship, card.panel.valid, card.panel.display) == (4, 4, "100%")
        assert len(card.scorecard) == 4 and {e.verdict for e in card.scorecard} == {"ship"}
    assert all(s.unanimous and s.skip == [] for s in record.split.within_tools)
    assert "splits the panel" not in record.split.summary
    assert all(a.splits_tools is False for a in record.split.across_tools)
    assert record.counts.reviews == 8
    assert record.run.model_dump() == {
        "status": "done", "planned": 16, "stored": 16, "missing": 0, "complete": True,
    }  # fmt: skip
    assert record.headline.text.startswith("A tie at 100%: the panel backs Ollama and vLLM alike.")

    sc = record.self_consistency
    assert sc is not None and (sc.agree, sc.compared, sc.display) == (0, 8, "0%")
    assert [c.verdicts for c in sc.cells] == [["ship", "skip"]] * 8
    assert "0 of 8 comparisons (0%)" in sc.summary

    page = render_markdown(record)
    assert "splits the panel" not in page
    section = page[page.index("## Self-consistency") : page.index("## Pricing read")]
    assert "Changed on a repeat: Ollama · The Builder (ship → skip)" in section
    assert "| The Builder | 0 of 2 (0%) |" in section
    assert page.index("## Reviewer split") < page.index("## Self-consistency")

    html = render_html(record)
    assert 'id="consistency"' in html and 'href="#consistency"' in html
    assert "Changed on a repeat: Ollama · The Builder (ship → skip)" in html


def test_one_repeat_pages_have_no_self_consistency_section(tmp_path: Path) -> None:
    plan = plan_compare(["ollama", "vllm"], catalog=EXAMPLE_CATALOG, backends=["fake"])
    with Store(tmp_path / "runs") as store:
        run_id, _ = asyncio.run(run_plan(plan, store, "test"))
        record = load_record(store, run_id)
    assert record.self_consistency is None
    assert "Self-consistency" not in render_markdown(record)
    assert 'id="consistency"' not in render_html(record)


def test_load_record_of_an_unfinished_run_carries_its_status_and_missing_cells(tmp_path: Path) -> None:
    plan = plan_compare(["ollama", "vllm"], catalog=EXAMPLE_CATALOG, backends=["fake"], repeats=2)
    with Store(tmp_path / "runs") as store:
        run_id, _ = asyncio.run(run_plan(plan, store, "test"))
        store.db.execute(
            "DELETE FROM reviews WHERE run_id = ? AND tool_id = 'vllm' AND persona_id != 'builder'",
            (run_id,),
        )
        store.mark_run(run_id, "interrupted")
        record = load_record(store, run_id)
        written = load_record(store, run_id, status="done")
    assert record.run.model_dump() == {
        "status": "interrupted", "planned": 16, "stored": 10, "missing": 6, "complete": False,
    }  # fmt: skip
    assert record.headline.pick is None
    assert record.headline.text.startswith(
        "Partial run: 10 of 16 reviews in; the run was interrupted. So far"
    )
    assert "Partial run: 10 of 16 reviews in" in render_markdown(record)
    assert written.run.status == "done" and written.run.complete is False


def test_pages_of_an_unfinished_run_say_so_beside_the_run_id() -> None:
    rows = [review("alpha", p, "ship") for p in ("builder", "skeptic")]
    record = build_record("r", 0.0, [tool("alpha")], personas(), ["fake:schema"], rows, status="stopped")
    assert "· unfinished: run stopped, 2 of 4 reviews missing ·" in render_markdown(record)
    assert "Unfinished: run stopped, 2 of 4 reviews missing" in render_html(record)
    rows += [review("alpha", p, "skip") for p in ("futurist", "business_analyst")]
    done = build_record("r", 0.0, [tool("alpha")], personas(), ["fake:schema"], rows)
    assert "unfinished" not in render_markdown(done).lower()
