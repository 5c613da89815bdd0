"""`panel view` jobs: background work with live progress, one at a time, its page and its
server-sent events; and regenerating one review through the view."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from panel.backends.base import Reply, Usage
from panel.backends.base import Request as BackendRequest
from panel.backends.fake import FakeBackend
from panel.errors import UserError
from panel.run.cells import Cell, CellResult
from panel.run.events import ReviewMade, Sink
from panel.run.stats import RunStats
from panel.store import CellKey, Store
from panel.view import jobs
from panel.view.actions import anchor
from panel.view.app import create_app
from panel.view.jobs import UNEXPECTED, Job, JobRegistry, Work, job_events, start_job
from panel.view.security import CSRF_FIELD

from .view_session import csrf, sign_in

BASE = "http://127.0.0.1:8765"
HOSTILE = "<script>document.title='pwned'</script>\nevent: done"


def _result(tool: str, verdict: str | None) -> CellResult:
    cell = cast(Cell, SimpleNamespace(key=CellKey(tool, "builder", "fake", 0)))
    return CellResult(cell, verdict is not None, verdict, None if verdict else "bad", 1)


def _stats(done: int, valid: int, failed: int, total: int = 2) -> RunStats:
    return RunStats(total=total, done=done, valid=valid, failed=failed, spent=0.001 * done)


def _client(runs: Path, works: dict[str, Work]) -> TestClient:
    """An app with POST /start/{name}, which starts the job `works[name]`."""

    async def start(request: Request) -> Response:
        name = request.path_params["name"]
        return start_job(request, f"job {name}", works[name], total=2, run_id=request.query_params.get("run"))

    app = create_app(
        runs, token=None, port=8765, extra_routes=[Route("/start/{name}", start, methods=["POST"])]
    )
    return TestClient(app, base_url=BASE)


def _post(client: TestClient, url: str, **fields: Any) -> Any:
    if "Editing as" not in client.get("/editor").text:
        sign_in(client, "Ana")  # a regenerate carries the editor's name
    return client.post(url, data={**fields, CSRF_FIELD: csrf(client)}, follow_redirects=False)


def read_events(client: TestClient, url: str) -> list[tuple[str, dict[str, Any]]]:
    """Every event of a job's stream, read until the server ends it."""
    found: list[tuple[str, dict[str, Any]]] = []
    with client.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                found.append((kind, json.loads(line.removeprefix("data: "))))
    return found


def _two_results(run_id: str, tool: str = "ollama") -> Work:
    async def work(store: Store, on_event: Sink) -> str:
        assert not store.readonly  # the job's own writable store
        on_event(ReviewMade(_result(tool, "ship"), _stats(1, 1, 0)))
        on_event(ReviewMade(_result("vllm", None), _stats(2, 1, 1)))
        return run_id

    return work


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    return tmp_path / "runs"


def test_a_job_answers_303_to_its_page_and_streams_progress_then_done(runs: Path) -> None:
    with _client(runs, {"a": _two_results("RUN-1")}) as client:
        started = _post(client, "/start/a")
        assert started.status_code == 303
        url = started.headers["location"]
        assert url.startswith("/jobs/")
        events = read_events(client, f"{url}/events")
        assert [kind for kind, _ in events] == ["progress", "progress", "done"]
        assert events[0][1]["last"] == "ollama · builder · fake: ship"
        assert events[1][1]["last"] == "vllm · builder · fake: failed"
        assert events[1][1] | {"last": None} == {
            "done": 2, "total": 2, "valid": 1, "failed": 1, "spent_usd": 0.002, "last": None
        }  # fmt: skip
        assert events[-1][1]["state"] == "done"
        assert events[-1][1]["run_id"] == "RUN-1" and events[-1][1]["url"] == "/runs/RUN-1"
        page = client.get(url)
        assert page.status_code == 200
        assert '<progress id="job-progress" value="2" max="2">' in page.text
        assert "<li>ollama · builder · fake: ship</li>" in page.text
        assert 'href="/runs/RUN-1"' in page.text
        assert 'http-equiv="refresh"' not in page.text  # finished: no more refreshing
        # a stream opened after some events starts after them (as the page asks, and on reconnect)
        assert [kind for kind, _ in read_events(client, f"{url}/events?after=2")] == ["done"]
        resumed = client.get(f"{url}/events", headers={"last-event-id": "1"})
        assert resumed.text.count("event: progress") == 1 and "id: 3\nevent: done" in resumed.text


def test_a_running_job_page_refreshes_without_js_and_loads_only_local_script(runs: Path) -> None:
    gate = threading.Event()

    async def waits(store: Store, on_event: Sink) -> str:
        on_event(ReviewMade(_result("ollama", "ship"), _stats(1, 1, 0)))
        await asyncio.to_thread(gate.wait)
        return "RUN-2"

    with _client(runs, {"w": waits}) as client:
        url = _post(client, "/start/w").headers["location"]
        try:
            page = client.get(url)
            head = page.text.split("</head>")[0]
            assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in head
            assert '<script src="/static/job.js" defer></script>' in head
            assert "<script>" not in page.text and "style=" not in page.text
            assert f'data-events="{url}/events?after=1"' in page.text  # the one result shown
            # the page's script may open the event stream (connect-src), and nothing else
            assert "connect-src 'self'" in page.headers["content-security-policy"]
            script = client.get("/static/job.js")
            assert (
                script.status_code == 200 and "textContent" in script.text and "innerHTML" not in script.text
            )
        finally:
            gate.set()
        assert read_events(client, f"{url}/events")[-1][1]["state"] == "done"


def test_a_second_job_while_one_runs_is_409_naming_it(runs: Path) -> None:
    gate = threading.Event()

    async def waits(store: Store, on_event: Sink) -> str:
        await asyncio.to_thread(gate.wait)
        return "RUN-3"

    with _client(runs, {"w": waits, "b": _two_results("RUN-4")}) as client:
        first = _post(client, "/start/w").headers["location"]
        try:
            second = _post(client, "/start/b")
            assert second.status_code == 409
            assert "A job is already running: job w" in second.text and first in second.text
        finally:
            gate.set()
        assert read_events(client, f"{first}/events")[-1][1]["run_id"] == "RUN-3"
        # once it has ended, the next one starts
        assert _post(client, "/start/b").status_code == 303


def test_a_store_another_process_holds_is_409_with_the_holders_sentence(runs: Path) -> None:
    with _client(runs, {"a": _two_results("RUN-5")}) as client:
        with Store(runs):
            refused = _post(client, "/start/a")
        assert refused.status_code == 409
        assert f"{runs} is in use by another panel process" in refused.text
        # the refused job is not kept as running: the next start goes ahead
        assert _post(client, "/start/a").status_code == 303


def test_a_failed_job_shows_its_line_and_an_unexpected_one_a_generic_sentence(
    runs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def user_error(store: Store, on_event: Sink) -> str:
        raise UserError("no review of ollama by builder on fake in run 'R'")

    async def bug(store: Store, on_event: Sink) -> str:
        raise RuntimeError("secret internals")

    with _client(runs, {"u": user_error, "x": bug}) as client:
        url = _post(client, "/start/u?run=RUN-F").headers["location"]
        end = read_events(client, f"{url}/events")[-1][1]
        assert end["run_id"] == "RUN-F" and end["url"] == "/runs/RUN-F"  # the run it was working on
        assert (
            end["state"] == "failed" and end["error"] == "no review of ollama by builder on fake in run 'R'"
        )
        assert "Failed: no review of ollama by builder on fake in run &#39;R&#39;" in client.get(url).text
        with caplog.at_level(logging.ERROR, logger="panel.view.jobs"):
            url = _post(client, "/start/x").headers["location"]
            end = read_events(client, f"{url}/events")[-1][1]
        assert end["error"] == UNEXPECTED and "secret internals" not in client.get(url).text
        assert "secret internals" in caplog.text  # the log says what


def test_hostile_text_in_a_result_is_escaped_in_the_page_and_json_in_the_events(runs: Path) -> None:
    with _client(runs, {"h": _two_results("RUN-6", tool=HOSTILE)}) as client:
        url = _post(client, "/start/h").headers["location"]
        events = read_events(client, f"{url}/events")
        assert [kind for kind, _ in events] == ["progress", "progress", "done"]  # no forged event
        assert events[0][1]["last"] == f"{HOSTILE} · builder · fake: ship"
        page = client.get(url).text
        assert "<script>document" not in page
        assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in page


def test_an_unknown_job_is_404(runs: Path) -> None:
    with _client(runs, {}) as client:
        assert client.get("/jobs/nope").status_code == 404
        assert client.get("/jobs/nope/events").status_code == 404


def test_finished_jobs_are_kept_up_to_a_bound_and_one_runs_at_a_time() -> None:
    registry = JobRegistry(keep=2)
    made = []
    for n in range(4):
        job = registry.add(f"job {n}", 1)
        job.finish(f"R{n}", None)
        made.append(job)
    running = registry.add("job 4", 1)
    assert [registry.get(j.id) is not None for j in made] == [False, False, True, True]
    assert registry.running() is running
    with pytest.raises(HTTPException, match="already running: job 4") as busy:
        registry.add("job 5", 1)
    assert busy.value.status_code == 409  # the browser is told "conflict", not a server error
    assert registry.running() is running  # job 4 still the one running


def test_the_event_stream_ends_when_the_client_goes_away(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "KEEPALIVE_S", 0)
    job = Job("j1", "never ends", 1)
    asked: list[bool] = []

    async def gone() -> bool:
        asked.append(True)
        return len(asked) > 1  # still there at the first keep-alive, gone at the second

    async def read() -> list[str]:
        return [chunk async for chunk in job_events(job, 0, gone)]

    assert asyncio.run(read()) == [": waiting\n\n"]
    assert job._waiters == []  # nothing left listening to the job


KEY = CellKey("ollama", "builder", "fake:schema")


@pytest.fixture
def seeded_fake(monkeypatch: pytest.MonkeyPatch, made: str, runs_dir: Path) -> str:
    """From now on the fake backend writes the review of `made`'s KEY with a note naming the
    request's seed, so a regenerated review shows on the page; returns the old note."""
    with Store(runs_dir, readonly=True) as store:
        old = store.review(made, KEY)
    assert old is not None and old.data is not None

    async def generate(self: FakeBackend, request: BackendRequest) -> Reply:
        data = dict(old.data or {}, verdict_note=f"Regenerated <b>with</b> seed {request.sampling.seed}.")
        return Reply(text=json.dumps(data), usage=Usage(40, 30), finish_reason="stop", latency_s=0.0)

    monkeypatch.setattr(FakeBackend, "generate", generate)
    return str(old.data["verdict_note"])


def _regenerate(client: TestClient, run_id: str, **fields: Any) -> Any:
    form = {"tool": KEY.tool_id, "persona": KEY.persona_id, "member": KEY.member, "repeat": "0"}
    return _post(client, f"/runs/{run_id}/review/regenerate", **{**form, **fields})


def test_regenerate_in_the_view_runs_a_job_and_the_page_shows_the_new_review(
    made: str, runs_dir: Path, seeded_fake: str
) -> None:
    with Store(runs_dir) as store:
        store.approve(made, KEY, editor="Ben")
    with TestClient(create_app(runs_dir, token=None, port=8765), base_url=BASE) as client:
        started = _regenerate(client, made, reason="too vague")
        assert started.status_code == 303 and started.headers["location"].startswith("/jobs/")
        url = started.headers["location"]
        events = read_events(client, f"{url}/events")
        assert [kind for kind, _ in events] == ["progress", "done"]
        assert events[0][1]["last"].startswith("ollama · builder · fake:schema: ")
        assert events[-1][1] | {"spent_usd": None} == {
            "state": "done", "run_id": made, "url": f"/runs/{made}", "error": None,
            "done": 1, "total": 1, "valid": 1, "failed": 0, "spent_usd": None,
        }  # fmt: skip
        job_page = client.get(url).text
        assert "Regenerate ollama · builder · fake:schema" in job_page and f'href="/runs/{made}"' in job_page
        comparison = client.get(f"/runs/{made}").text
        assert "Regenerated &lt;b&gt;with&lt;/b&gt; seed 101237." in comparison  # 1234 + the stride
        article = comparison.split(f'id="{anchor(*KEY)}"')[1].split("</article>")[0]
        assert (
            "Not approved: regenerated by Ana after it was approved, which took the approval back" in article
        )
    with Store(runs_dir, readonly=True) as store:
        (kept,) = store.review_history(made, KEY)
        assert kept.reason == "too vague" and kept.review.verdict_note == seeded_fake
        assert kept.editor == "Ana"
        run = store.get_run(made)
        assert run is not None and run.status == "done"


@pytest.mark.parametrize(
    ("fields", "status", "says"),
    [
        ({"reason": "  "}, 400, "reason: say why this review is regenerated"),
        ({"reason": "x", "tool": ""}, 400, "tool: name the review&#39;s tool."),
        ({"reason": "x", "repeat": "one"}, 400, "repeat: &#39;one&#39; is not a whole number."),
        ({"reason": "x", "persona": "futurist"}, 404, "has no review of ollama by futurist on fake:schema"),
    ],
)
def test_a_bad_regenerate_form_is_refused_naming_the_field(
    made: str, runs_dir: Path, fields: dict[str, str], status: int, says: str
) -> None:
    with TestClient(create_app(runs_dir, token=None, port=8765), base_url=BASE) as client:
        refused = _regenerate(client, made, **fields)
        assert refused.status_code == status and says in refused.text
        assert jobs.jobs_of(client.app).running() is None  # type: ignore[arg-type]
        assert _regenerate(client, "no-such-run", reason="x").status_code == 404
    with Store(runs_dir, readonly=True) as store:
        assert store.review_history(made, KEY) == []


def test_a_review_never_made_is_regenerated_from_its_own_form(made: str, runs_dir: Path) -> None:
    # an interrupted run: one cell never got its review (no history either)
    with Store(runs_dir) as store:
        store.db.execute(
            "DELETE FROM reviews WHERE run_id = ? AND tool_id = ? AND persona_id = ? AND member = ?",
            (made, *KEY[:3]),
        )
        store.finish_run(made, "interrupted")
        store.commit()
    with TestClient(create_app(runs_dir, token=None, port=8765), base_url=BASE) as client:
        article = client.get(f"/runs/{made}").text.split("No review in this run.")[1].split("</article>")[0]
        assert "/review/regenerate" in article  # the page offers it ...
        started = _regenerate(client, made, reason="never written")
        assert started.status_code == 303, started.text  # ... and the form works
        assert read_events(client, f"{started.headers['location']}/events")[-1][1]["state"] == "done"
    with Store(runs_dir, readonly=True) as store:
        assert store.review(made, KEY) is not None and store.review_history(made, KEY) == []
        run = store.get_run(made)
        assert run is not None and run.status == "done"
