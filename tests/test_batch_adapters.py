"""The Anthropic and Mistral Batch API adapters: the wire body they send, how they read result
lines, and how a batch submitted by a process that died before recording it is found again."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from panel.backends.anthropic import AnthropicBackend
from panel.backends.anthropic_batch import _Line
from panel.backends.base import Request
from panel.backends.batch import BatchAPI, BatchEntry, read_line
from panel.backends.mistral import MistralBackend
from panel.errors import CapabilityError, FatalError, RateLimitError, TransientError
from panel.personas import load_persona
from panel.resources import data_dir
from panel.run.plan import RunOptions, run_plan
from panel.store import Store
from panel.store.batches import Batches
from panel.testing.fake_provider import FakeProvider

from .test_batch_route import _plan, _run

anthropic = pytest.importorskip("anthropic")
httpx2 = pytest.importorskip("httpx2")
mistral_client = pytest.importorskip("mistralai.client")

PERSONA = load_persona(data_dir("personas") / "builder.yaml")
REQUEST = Request(
    messages=[
        {"role": "system", "content": "You are the builder on a review panel. Answer in JSON only."},
        {"role": "user", "content": "Review the tool Quillpad, a shared notebook for prompts."},
    ],
    schema=PERSONA.review_schema,
    schema_name="builder_review",
)


class Clock:
    """The fake server's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _entries(prefix: str, n: int) -> list[BatchEntry]:
    return [BatchEntry(f"{prefix}-{i}", REQUEST) for i in range(n)]


# --- The body on the wire is the live one ---------------------------------------------------


def test_batch_requests_carry_the_live_body(fake: FakeProvider) -> None:
    sent: list[dict[str, Any]] = []

    async def hook(request: Any) -> None:
        if request.content:
            sent.append(json.loads(request.content))

    async def main() -> None:
        http = httpx2.AsyncClient(event_hooks={"request": [hook]})
        ac = anthropic.AsyncAnthropic(
            api_key="k", base_url=fake.base_url("anthropic"), http_client=http, max_retries=0
        )
        claude = AnthropicBackend("claude-haiku-4-5", client=ac)
        mc = mistral_client.Mistral(
            api_key="k", server_url=fake.base_url("mistral"), client=httpx2.Client(), async_client=http
        )
        mistral = MistralBackend("mistral-small-latest", client=mc)
        for backend in (claude, mistral):
            await backend.generate(REQUEST)
            api = backend.batch_api()
            await api.submit(_entries("wire", 1), {"panel_batch": "b", "panel_run": "r"})
        await http.aclose()

    asyncio.run(main())
    claude_live, claude_batch, mistral_live, mistral_batch = sent
    assert claude_batch["requests"][0]["params"] == claude_live
    # The SDK adds `stream: false` to a live call; a batch line takes no streaming at all.
    assert mistral_batch["requests"][0]["body"] == {k: v for k, v in mistral_live.items() if k != "stream"}
    assert mistral_batch["metadata"] == {"panel_batch": "b", "panel_run": "r"}


# --- Anthropic: result lines ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "kind"),
    [
        ({"type": "errored", "error": {"type": "api_error", "message": "boom"}}, TransientError),
        ({"type": "errored", "error": {"type": "overloaded_error", "message": "busy"}}, TransientError),
        ({"type": "errored", "error": {"type": "rate_limit_error", "message": "slow"}}, RateLimitError),
        ({"type": "errored", "error": {"type": "invalid_request_error", "message": "bad"}}, FatalError),
        ({"type": "expired"}, TransientError),
        ({"type": "canceled"}, TransientError),
    ],
)
def test_anthropic_result_lines_become_the_live_errors(result: dict[str, Any], kind: type) -> None:
    backend = AnthropicBackend("claude-haiku-4-5", api_key="k", base_url="http://127.0.0.1:9")
    api = backend.batch_api()
    error = result.get("error")
    wire = {"type": result["type"], **({"error": {"type": "error", "error": error}} if error else {})}
    line = read_line(json.dumps({"custom_id": "req-1", "result": wire}).encode(), _Line, "anthropic batch")
    assert isinstance(line, _Line)
    outcome = api._outcome(line)  # type: ignore[attr-defined]
    assert outcome.reply is None and type(outcome.error) is kind
    assert not isinstance(outcome.error, CapabilityError)
    assert result.get("error", {"message": result["type"][:6]})["message"] in str(outcome.error)
    asyncio.run(backend.aclose())


# --- Anthropic: finding a batch again, with no metadata -----------------------------------------


def test_anthropic_find_knows_an_ended_batch_by_its_custom_ids(fake: FakeProvider) -> None:
    async def main() -> None:
        backend = AnthropicBackend("claude-haiku-4-5", api_key="k", base_url=fake.base_url("anthropic"))
        api = backend.batch_api()
        ours = await api.submit(_entries("req", 4), {})
        await api.submit(_entries("other", 4), {})  # same size, newer, not ours
        await api.submit(_entries("req", 3), {})  # some of our ids, another size
        ids = [f"req-{i}" for i in range(4)]
        found = await api.find({}, ids)
        assert found is not None and found.provider_batch_id == ours.provider_batch_id
        assert found.state == "ended" and found.counts["total"] == 4
        assert await api.find({}, [f"req-{i}" for i in range(4, 8)]) is None
        await backend.aclose()

    asyncio.run(main())


def test_anthropic_find_takes_a_batch_not_yet_ended_only_after_the_ledger_recorded_it() -> None:
    clock = Clock()
    with FakeProvider(clock=clock, batch_seconds=100) as fake:

        async def main() -> None:
            backend = AnthropicBackend("claude-haiku-4-5", api_key="k", base_url=fake.base_url("anthropic"))
            api = backend.batch_api()
            recorded = time.time()
            ours = await api.submit(_entries("req", 4), {})
            ids = [f"req-{i}" for i in range(4)]
            found = await api.find({}, ids, since=recorded)
            assert found is not None and found.provider_batch_id == ours.provider_batch_id
            assert found.state == "in_progress"
            # Without the ledger's time, or with one after the batch was made, a batch whose
            # custom_ids cannot be read yet is not taken for ours.
            assert await api.find({}, ids) is None
            assert await api.find({}, ids, since=recorded + 3600) is None
            assert await api.find({}, [*ids, "req-9"], since=recorded) is None
            await backend.aclose()

        asyncio.run(main())


class Killed(Exception):
    """The process dies between the provider's acceptance and the ledger's record of it."""


def _die_once_after_submission(monkeypatch: pytest.MonkeyPatch) -> None:
    real = Batches.batch_submitted

    def dying(self: Batches, *args: Any, **kwargs: Any) -> None:
        monkeypatch.setattr(Batches, "batch_submitted", real)
        raise Killed()

    monkeypatch.setattr(Batches, "batch_submitted", dying)


async def _decoy(fake: FakeProvider, provider: str) -> None:
    backend: AnthropicBackend | MistralBackend
    if provider == "anthropic":
        backend = AnthropicBackend("claude-haiku-4-5", api_key="k", base_url=fake.base_url(provider))
    else:
        backend = MistralBackend("mistral-small-latest", api_key="k", base_url=fake.base_url(provider))
    await backend.batch_api().submit(
        _entries("other", 12), {"panel_batch": "b-other-1", "panel_run": "other"}
    )
    await backend.aclose()


@pytest.mark.parametrize("provider", ["anthropic", "mistral"])
def test_a_batch_submitted_but_not_recorded_is_found_again_on_resume(
    fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    _die_once_after_submission(monkeypatch)
    store = Store(tmp_path / "runs")
    options = RunOptions(poll_interval=0.0)
    with pytest.raises(Killed):
        asyncio.run(run_plan(_plan(fake, provider=provider), store, "test", options=options))
    ((run, _, _),) = store.list_runs()
    run_id = run.id
    (row,) = store.batches(run_id)
    assert row.state == "submitting" and row.provider_batch_id is None
    store.close()
    # Another batch of the same size arrives in between: not ours (other ids, other metadata).
    asyncio.run(_decoy(fake, provider))

    _, stats, store = _run(_plan(fake, provider=provider), tmp_path / "runs", run_id=run_id)
    assert (stats.valid, stats.failed) == (12, 0)
    batches = fake.stats()["batches"]
    assert batches["created"] == {provider: 2}  # ours once, and the decoy
    assert fake.stats()["batch_duplicates"] == 0
    (row,) = store.batches(run_id)
    assert row.state == "collected"
    ours = [b for b in batches["list"] if b["id"] == row.provider_batch_id]
    assert ours and ours[0]["counts"]["total"] == 12
    store.close()


# --- Mistral ----------------------------------------------------------------------------------


def test_mistral_find_by_metadata(fake: FakeProvider) -> None:
    async def main() -> None:
        backend = MistralBackend("mistral-small-latest", api_key="k", base_url=fake.base_url("mistral"))
        api = backend.batch_api()
        ours = await api.submit(_entries("req", 2), {"panel_batch": "b-1", "panel_run": "r1"})
        await api.submit(_entries("req", 2), {"panel_batch": "b-2", "panel_run": "r1"})
        found = await api.find({"panel_batch": "b-1", "panel_run": "r1"}, ["req-0", "req-1"])
        assert found is not None and found.provider_batch_id == ours.provider_batch_id
        assert found.metadata == {"panel_batch": "b-1", "panel_run": "r1"}
        assert await api.find({"panel_batch": "b-3", "panel_run": "r1"}, ["req-0"]) is None
        await backend.aclose()

    asyncio.run(main())


def test_mistral_uploads_a_file_past_the_inline_limit(
    fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import panel.backends.mistral_batch as mistral_batch

    monkeypatch.setattr(mistral_batch, "INLINE_REQUESTS", 5)
    run_id, stats, store = _run(_plan(fake, provider="mistral"), tmp_path / "runs")
    assert stats.valid == 12
    (row,) = store.batches(run_id)
    with mistral_client.Mistral(api_key="k", server_url=fake.base_url("mistral")) as client:
        job = client.batch.jobs.get(job_id=row.provider_batch_id)
    assert len(job.input_files) == 1 and job.total_requests == 12
    store.close()


def test_mistral_status_names_are_ours(fake: FakeProvider) -> None:
    fake.configure(batch_fail_validation=True)

    async def main() -> BatchAPI:
        backend = MistralBackend("mistral-small-latest", api_key="k", base_url=fake.base_url("mistral"))
        api = backend.batch_api()
        queued = await api.submit(_entries("req", 2), {})
        assert queued.state == "validating"
        failed = await api.status(queued.provider_batch_id)
        assert failed.state == "failed" and failed.finished
        await backend.aclose()
        return api

    asyncio.run(main())
