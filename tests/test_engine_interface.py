"""The engine's public interface: a run's events reach one sink in order, and a route is a
strategy behind the engine (a route of the test's own drives it through its public
operations, as the live and batch routes do)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from panel.backends.base import Reply, Request
from panel.backends.fake import FakeBackend
from panel.catalog import load_catalog
from panel.errors import UserError
from panel.personas import load_personas
from panel.prompts import PromptSet
from panel.resources import data_dir
from panel.run.cells import Cell, Member
from panel.run.engine import Engine
from panel.run.events import Event, ReviewMade
from panel.run.routes import Route
from panel.store import Store
from panel.testing.schema_fill import fill

from .conftest import EXAMPLE_CATALOG

TOOLS = ("ollama", "vllm")


def _cells(backend: Any) -> list[Cell]:
    catalog = load_catalog(EXAMPLE_CATALOG)
    personas = sorted(load_personas(data_dir("personas")).values(), key=lambda p: p.id)
    return [Cell(catalog.get(t), p, backend) for t in TOOLS for p in personas[:2]]


def _engine(tmp_path: Path, member: Member, events: list[Event]) -> Engine:
    store = Store(tmp_path / "runs")
    if store.get_run("r") is None:
        store.create_run("r", "test", None, {}, [], [])
    return Engine(store, "r", PromptSet(), [member], on_event=events.append)


def test_the_sink_gets_each_review_in_the_order_it_was_made_with_the_counts_of_that_moment(
    tmp_path: Path,
) -> None:
    backend = FakeBackend(responder=lambda request, n: "no json" if "vllm" in str(request.messages) else
                          json.dumps(fill(request.schema, "x")))  # fmt: skip
    cells = _cells(backend)
    events: list[Event] = []
    engine = _engine(tmp_path, Member(backend, 1), events)

    stats = asyncio.run(engine.run(lambda b: iter(cells), len(cells)))

    assert all(isinstance(e, ReviewMade) for e in events)
    made = [e for e in events if isinstance(e, ReviewMade)]
    # one worker: the order the cells came in; each event's counts are those after its review
    assert [e.result.cell.key for e in made] == [c.key for c in cells]
    assert [(e.stats.done, e.stats.valid, e.stats.failed) for e in made] == [
        (1, 1, 0),
        (2, 2, 0),
        (3, 2, 1),
        (4, 2, 2),
    ]
    assert [e.result.valid for e in made] == [True, True, False, False]
    assert (stats.done, stats.valid, stats.failed) == (4, 2, 2)


@dataclass
class CannedRoute:
    """A route that asks no model: each cell's reply is written by the test, and goes through
    the engine's public operations only (reserve, judge, finish), as a route's must."""

    engine: Engine

    def workers(self, member: Member, cells: Iterator[Cell]) -> list[Coroutine[Any, Any, None]]:
        return [self._work(cells)]

    async def _work(self, cells: Iterator[Cell]) -> None:
        engine = self.engine
        for cell in cells:
            if engine.done_before(cell):
                continue
            request = engine.request(cell)
            request_id = engine.reserve(cell, request, 1)
            reply = Reply(json.dumps(fill(request.schema, "canned")))
            engine.store.finish_request(request_id, reply, 1)
            result = engine.judge(cell, reply, request_id, 1, engine.fingerprint(cell), "sent")
            assert not isinstance(result, str)
            engine.finish(result)


def canned(engine: Engine) -> Route:
    return CannedRoute(engine)  # a Route by its shape: the Protocol asks for `workers` only


def test_a_route_of_its_own_drives_the_engine_and_a_resume_skips_what_it_stored(tmp_path: Path) -> None:
    class Unasked(FakeBackend):
        async def generate(self, request: Request) -> Reply:
            raise AssertionError("the canned route asks no model")

    backend = Unasked()
    cells = _cells(backend)
    events: list[Event] = []
    engine = _engine(tmp_path, Member(backend, 1, route="canned"), events)
    engine.routes["canned"] = canned

    stats = asyncio.run(engine.run(lambda b: iter(cells), len(cells)))

    rows = engine.store.reviews("r")
    assert sorted(r.tool_id for r in rows) == sorted(c.tool.id for c in cells)
    assert all(r.valid for r in rows) and stats.valid == len(cells) and len(events) == len(cells)
    assert {json.loads(r.raw_reply or "")["verdict"] for r in rows} <= {"ship", "skip"}
    engine.store.close()

    # A second process of the same run: every review is stored, so the route makes none.
    again: list[Event] = []
    resumed = _engine(tmp_path, Member(backend, 1, route="canned"), again)
    resumed.routes["canned"] = canned
    stats = asyncio.run(resumed.run(lambda b: iter(cells), len(cells)))
    assert again == [] and stats.done == len(cells) and len(resumed.store.reviews("r")) == len(cells)


def test_a_member_on_a_route_the_run_does_not_have_is_one_line_naming_it(tmp_path: Path) -> None:
    backend = FakeBackend()
    engine = _engine(tmp_path, Member(backend, 1, route="pigeon"), [])
    with pytest.raises(UserError, match=r'fake:schema: this run has no route "pigeon"'):
        asyncio.run(engine.run(lambda b: iter(_cells(b)), 4))
