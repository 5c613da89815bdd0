"""The store the view's tests read: a compare run with a hostile tool, a stopped compare run
and a review run, all made by the `fake` backend (shared by the TestClient and browser tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml

from panel.run.plan import RunOptions, plan_compare, plan_run, run_plan
from panel.store import Store

from .conftest import EXAMPLE_CATALOG

__all__ = ["CONTROLS", "INJECTED_IMG", "INJECTED_NAME", "build_store", "run_ids"]

INJECTED_NAME = "<script>document.title='pwned'</script>"
INJECTED_IMG = "<img src=x onerror=\"document.title='pwned'\">"
CONTROLS = "\x1b]8;;http://evil.example\x07click\x1b]8;;\x07 \x1b[2J\u202e"


def build_store(tmp: Path) -> Path:
    """The runs folder under `tmp`: the tool `ollama` renamed to INJECTED_NAME, its description
    ending in INJECTED_IMG and CONTROLS, compared with vllm on two members."""
    source = yaml.safe_load(EXAMPLE_CATALOG.read_text(encoding="utf-8"))
    tools = {t["id"]: t for t in source["tools"]}
    hostile = dict(tools["ollama"], name=INJECTED_NAME)
    hostile["description"] = f"{hostile['description']} {INJECTED_IMG} {CONTROLS}"
    catalog = tmp / "catalog.yaml"
    catalog.write_text(yaml.safe_dump({"tools": [*list(tools.values())[:4], hostile, tools["vllm"]]}))
    runs = tmp / "runs"
    with Store(runs) as store:
        plan = plan_compare(["ollama", "vllm"], catalog=catalog, backends=["fake", "fake:other"])
        asyncio.run(run_plan(plan, store, "panel compare ollama vllm", options=RunOptions(kind="compare")))
        plan = plan_compare(["smolvlm2-2b", "moondream2"], catalog=catalog, backends=["fake"])
        stopped, _ = asyncio.run(run_plan(plan, store, "panel compare", options=RunOptions(kind="compare")))
        store.finish_run(stopped, "stopped")
        plan = plan_run(["smolvlm2-2b", "mistral-large-3", "moondream2"], catalog=catalog, backends=["fake"])
        asyncio.run(run_plan(plan, store, "panel review", options=RunOptions(kind="review")))
    return runs


def run_ids(runs: Path) -> dict[str, str]:
    """Run id by a short name: hostile (compare), stopped (compare), review."""
    with Store(runs, readonly=True) as store:
        found = store.list_runs(10)
    by_status = {run.status: run.id for run, _, _ in found if run.status == "stopped"}
    done = [run.id for run, _, _ in reversed(found) if run.status == "done"]
    return {"hostile": done[0], "stopped": by_status["stopped"], "review": done[1]}
