"""Helpers for the batch route's tests: a batch member per provider with a Batch API, and a
plan run (or resumed) in process. The `fake` fixture of conftest.py sets their keys to KEY."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from panel.backends.registry import MemberSpec, parse_member
from panel.catalog import load_catalog
from panel.personas import load_personas
from panel.resources import data_dir
from panel.run.plan import Plan, RunOptions, build_members, plan_resume, run_plan
from panel.store import Store
from panel.testing.fake_provider import FakeProvider
from panel.testing.wire import Provider

from .cloud import MEMBERS
from .conftest import BATCH_KEY, EXAMPLE_CATALOG

KEY = BATCH_KEY
#: a batch member of each provider with a Batch API, priced in prices.toml
MODELS = {provider: MEMBERS[provider] for provider in ("openai", "anthropic", "mistral")}
PROVIDERS: list[Provider] = ["openai", "anthropic", "mistral"]


def spec(
    fake: FakeProvider, provider: Provider = "openai", route: str = "batch", **options: Any
) -> MemberSpec:
    return parse_member(
        MODELS[provider], {"base_url": fake.base_url(provider), "timeout": 5, "route": route, **options}
    )


def plan_of(specs: list[MemberSpec], tools: int = 3) -> Plan:
    """The first `tools` tools of the example catalog, every persona, these members."""
    return Plan(
        tools=list(load_catalog(EXAMPLE_CATALOG))[:tools],
        personas=list(load_personas(data_dir("personas")).values()),
        members=build_members(specs),
        specs=specs,
        catalog_path=EXAMPLE_CATALOG,
    )


def run(plan: Plan, out: Path, run_id: str | None = None, **options: Any) -> tuple[str, Any, Store]:
    """Run (or finish) a plan in process, polling at once; the store is left open."""
    store = Store(out)
    try:
        opts = RunOptions(**{"poll_interval": 0.0, **options})
        rid, stats = asyncio.run(run_plan(plan, store, "test", options=opts, run_id=run_id))
    except BaseException:
        store.close()
        raise
    return rid, stats, store


def resume(out: Path, run_id: str, **options: Any) -> tuple[str, Any, Store]:
    with Store(out) as store:
        plan = plan_resume(store, run_id)
    return run(plan, out, run_id, **options)
