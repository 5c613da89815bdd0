"""Structured output negotiated per member: the forms on the wire, the fallback when a server
refuses one, one probe however many workers wait, and refusals never retried."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from panel.backends.base import Backend, OptionError, Reply
from panel.backends.local import fit_schema
from panel.backends.registry import create_backend, parse_member
from panel.backends.structured import Negotiator, is_refusal
from panel.errors import CapabilityError
from panel.run.retry import RetryPolicy, call_with_retries
from panel.run.validate import InvalidReply, parse_review
from panel.testing.fake_provider import FakeProvider

from .test_backends_cloud import PERSONA, REQUEST

pytest.importorskip("openai")
pytest.importorskip("huggingface_hub")

LLAMA_CPP_PYTHON_500 = (
    "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
    "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}"
)


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider(history=200) as server:
        yield server


def member(backend: str, fake: FakeProvider, **options: Any) -> Backend:
    opts = {"base_url": fake.base_url(backend), "timeout": 5, **options}  # type: ignore[arg-type]
    model = "smollm2" if backend == "openai" else "acme/small"
    return create_backend(parse_member(f"{backend}:{model}", opts))


def send(backend: Backend, times: int = 1) -> list[Reply]:
    async def go() -> list[Reply]:
        try:
            return list(await asyncio.gather(*(backend.generate(REQUEST) for _ in range(times))))
        finally:
            await backend.aclose()

    return asyncio.run(go())


def test_a_llama_cpp_python_refusal_is_a_capability_error_and_others_are_not() -> None:
    assert is_refusal(500, LLAMA_CPP_PYTHON_500)
    assert is_refusal(400, "response_format json_schema is not supported by this model")
    assert is_refusal(422, "Failed to deserialize: tool_choice: unknown variant")
    # A server error, or a 400 about something else, is no refusal of the form.
    assert not is_refusal(500, "Internal server error")
    assert not is_refusal(400, "This model's maximum context length is 2048 tokens")
    assert not is_refusal(503, "response_format: overloaded")


def test_auto_falls_back_to_json_object_after_one_refusal(fake: FakeProvider) -> None:
    fake.configure(refuse_forms=["json_schema"])
    (reply,) = send(member("openai", fake))
    parse_review(PERSONA.review_model, reply.text)
    assert (reply.meta["form"], reply.meta["enforced"]) == ("json_object", "grammar")
    stats = fake.stats()
    assert stats["by_form"] == {"json_schema": 1, "json_object": 1}
    assert stats["by_status"] == {"500": 1, "200": 1}


def test_many_workers_waiting_send_a_single_probe(fake: FakeProvider) -> None:
    fake.configure(refuse_forms=["json_schema"])
    backend = member("openai", fake, concurrency=8)
    replies = send(backend, times=8)
    assert {r.meta["form"] for r in replies} == {"json_object"}
    assert fake.stats()["by_form"] == {"json_schema": 1, "json_object": 8}
    assert backend.negotiated_form() == "json_object"


def test_a_remembered_form_is_used_without_a_probe(fake: FakeProvider) -> None:
    fake.configure(refuse_forms=["json_schema"])
    backend = member("openai", fake)
    backend.adopt_form("json_object")
    send(backend, times=3)
    assert fake.stats()["by_form"] == {"json_object": 3}


def test_auto_steps_down_to_the_prompt_form(fake: FakeProvider) -> None:
    fake.configure(refuse_forms=["json_schema", "json_object", "tool"])
    (reply,) = send(member("openai", fake))
    assert (reply.meta["form"], reply.meta["enforced"]) == ("prompt", "validated after")
    assert fake.stats()["by_form"] == {"json_schema": 1, "json_object": 1, "tool": 1, "none": 1}


def test_a_server_refusing_every_form_is_asked_each_form_once() -> None:
    sent: list[str] = []

    async def refuse(form: str) -> str:
        sent.append(form)
        raise CapabilityError(f"HTTP 400: {form} is not supported")

    async def go() -> None:
        negotiator = Negotiator("auto", ("json_schema", "json_object", "tools", "prompt"))
        for _ in range(3):
            with pytest.raises(CapabilityError, match="took no structured-output form"):
                await negotiator.send(refuse)

    asyncio.run(go())
    assert sent == ["json_schema", "json_object", "tools", "prompt"]


def test_a_fixed_form_refused_is_never_retried(fake: FakeProvider) -> None:
    fake.configure(refuse_forms=["json_schema"])
    backend = member("openai", fake, structured="json_schema")
    calls = [0]

    async def attempt() -> Reply:
        calls[0] += 1
        return await backend.generate(REQUEST)

    async def go() -> None:
        try:
            await call_with_retries(attempt, RetryPolicy(attempts=4, sleep=_no_sleep))
        finally:
            await backend.aclose()

    with pytest.raises(CapabilityError) as info:
        asyncio.run(go())
    assert info.value.kind == "capability" and "Input should be" in str(info.value)
    assert calls[0] == 1 and fake.stats()["requests"] == 1


async def _no_sleep(seconds: float) -> None:
    return None


@pytest.mark.parametrize(
    ("structured", "wire_form", "enforced"),
    [
        ("json_object", "json_object", "grammar"),
        ("tools", "tool", "tool"),
        ("json_schema", "json_schema", "provider schema"),
    ],
)
def test_each_fixed_form_on_the_wire(
    fake: FakeProvider, structured: str, wire_form: str, enforced: str
) -> None:
    (reply,) = send(member("openai", fake, structured=structured))
    parse_review(PERSONA.review_model, reply.text)
    assert reply.meta["enforced"] == enforced
    record = fake.stats()["recent"][-1]
    assert record["form"] == wire_form
    if structured == "tools":
        assert record["tool_name"] == "builder_review"
        assert record["body"]["tools"][0]["function"]["parameters"] == fit_schema(PERSONA.review_schema, 700)


def test_the_prompt_form_puts_the_schema_in_the_system_message(fake: FakeProvider) -> None:
    (reply,) = send(member("openai", fake, structured="prompt"))
    record = fake.stats()["recent"][-1]
    assert record["form"] == "none" and "response_format" not in record["body"]
    system = record["body"]["messages"][0]
    assert system["role"] == "system" and '"verdict_note"' in system["content"]
    assert reply.meta["enforced"] == "validated after"


def test_hf_against_a_llama_cpp_style_endpoint_gets_valid_reviews(fake: FakeProvider) -> None:
    # llama.cpp's server reads TGI's {"type":"json_object","value":...} as "any JSON object".
    fake.configure(ignore_forms=["tgi_grammar"])
    (reply,) = send(member("hf", fake))
    parse_review(PERSONA.review_model, reply.text)
    assert reply.meta == {"model": "acme/small", "form": "json_object", "enforced": "grammar"}
    # What the SDK alone sends is not held to the schema there.
    (ignored,) = send(member("hf", fake, structured="json_schema"))
    assert fake.stats()["recent"][-1]["form"] == "tgi_grammar"
    with pytest.raises(InvalidReply):
        parse_review(PERSONA.review_model, ignored.text)


def test_sampling_extras_go_where_the_server_reads_them(fake: FakeProvider) -> None:
    extras = {"repeat_penalty": 1.1, "frequency_penalty": 0.2, "top_k": 40}
    for backend in ("openai", "hf"):
        send(member(backend, fake, sampling=extras))
        body = fake.stats()["recent"][-1]["body"]
        assert (body["repeat_penalty"], body["frequency_penalty"], body["top_k"]) == (1.1, 0.2, 40)
    with pytest.raises(OptionError, match="sampling"):
        member("openai", fake, sampling={"temperature": 0.9})


def test_sampling_extras_are_part_of_the_cache_identity(fake: FakeProvider) -> None:
    plain = member("openai", fake)
    tuned = member("openai", fake, sampling={"repeat_penalty": 1.1})
    assert plain.identity() != tuned.identity()
    assert plain.form_key() == tuned.form_key()


# --- through the whole pipeline: recorded per review, remembered in the store ---------------


def _config(path: Path, fake: FakeProvider) -> Path:
    path.write_text(
        "[retry]\nattempts = 4\nbase_wait = 0.01\nmax_wait = 0.05\n"
        "[[members]]\n"
        'spec = "openai:smollm2"\n'
        'name = "small-server"\n'
        f'base_url = "{fake.base_url("openai")}"\n'
        'structured = "auto"\nconcurrency = 4\ntimeout = 5\nprice_input = 0\nprice_output = 0\n'
    )
    return path


def test_the_negotiated_form_is_recorded_shown_and_remembered(
    cli: Any, fake: FakeProvider, tmp_path: Path, runs_dir: Path
) -> None:
    fake.configure(refuse_forms=["json_schema"])
    cfg = _config(tmp_path / "panel.toml", fake)
    first = cli("compare", "ollama", "vllm", "--config", str(cfg), "--out", str(runs_dir), "--json")
    assert first.code == 0, first.err
    record = json.loads(first.out)
    entries = [e for card in record["tools"] for e in card["scorecard"]]
    assert len(entries) == 8 and all(e["valid"] for e in entries)
    assert {e["enforced"] for e in entries} == {"grammar"}
    # One refused probe for the member, and no retry of it.
    assert fake.stats()["by_form"] == {"json_schema": 1, "json_object": 8}
    folder = next(p.parent for p in runs_dir.rglob("comparison.md"))
    # the draft's pages end with how they were made, the structure of the eight reviews in one line
    assert "\nStructure: grammar (8 reviews).\n" in (folder / "comparison.md").read_text()
    html = (folder / "comparison.html").read_text()
    assert '<p class="made-structure">Structure: grammar (8 reviews).</p>' in html
    # A later process on the same store starts from the stored form: no probe at all.
    second = cli("compare", "tesseract", "vllm", "--config", str(cfg), "--out", str(runs_dir), "--no-cache")
    assert second.code == 0, second.err
    assert fake.stats()["by_form"] == {"json_schema": 1, "json_object": 16}


def test_backends_check_reports_the_form_that_worked(
    cli: Any, fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from panel.cli.apps import out_console

    monkeypatch.setattr(out_console, "width", 40)  # a narrow pipe
    fake.configure(refuse_forms=["json_schema"])
    cfg = _config(tmp_path / "panel.toml", fake)
    result = cli("backends", "check", "--config", str(cfg))
    assert result.code == 0, result.out
    assert "small-server" in result.out and "form json_object (grammar)" in result.out
    assert fake.stats()["by_form"] == {"json_schema": 1, "json_object": 1}
    # One line per member, however narrow the output: scripts grep them.
    (line,) = [x for x in result.out.splitlines() if x.startswith("ok")]
    assert "small-server" in line and "out tokens" in line


def test_backends_check_fails_a_reply_that_ignored_the_schema(
    cli: Any, fake: FakeProvider, tmp_path: Path
) -> None:
    fake.configure(ignore_forms=["json_schema"])
    cfg = _config(tmp_path / "panel.toml", fake)
    result = cli("backends", "check", "--config", str(cfg))
    assert result.code == 1
    assert "fail" in result.out and "ignored the schema" in result.out


# --- Anthropic speaks the same vocabulary, through the same negotiator ---------------------


def _anthropic_config(path: Path, fake: FakeProvider, structured: str = "auto") -> Path:
    path.write_text(
        "[retry]\nattempts = 4\nbase_wait = 0.01\nmax_wait = 0.05\n"
        f'[[members]]\nspec = "anthropic:claude-x"\nbase_url = "{fake.base_url("anthropic")}"\n'
        f'structured = "{structured}"\nconcurrency = 4\ntimeout = 5\nprice_input = 0\nprice_output = 0\n'
    )
    return path


def test_anthropic_remembers_the_form_it_settled_on_across_processes(
    cli: Any, fake: FakeProvider, tmp_path: Path, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-anthropic-test")
    fake.configure(refuse_forms=["output_config"])  # the model takes no structured output
    cfg = _anthropic_config(tmp_path / "panel.toml", fake)
    first = cli("compare", "ollama", "vllm", "--config", str(cfg), "--out", str(runs_dir), "--json")
    assert first.code == 0, first.err
    entries = [e for card in json.loads(first.out)["tools"] for e in card["scorecard"]]
    assert len(entries) == 8 and all(e["valid"] for e in entries)
    assert {e["enforced"] for e in entries} == {"tool"}
    assert fake.stats()["by_form"] == {"output_config": 1, "tool": 8}
    # A later process starts from the form in the store: the refused form is not asked again.
    second = cli("compare", "tesseract", "vllm", "--config", str(cfg), "--out", str(runs_dir), "--no-cache")
    assert second.code == 0, second.err
    assert fake.stats()["by_form"] == {"output_config": 1, "tool": 16}


def test_anthropic_takes_the_prompt_form_and_its_old_names(
    fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-anthropic-test")
    (reply,) = send(member("anthropic", fake, structured="prompt"))
    assert (reply.meta["form"], reply.meta["enforced"]) == ("prompt", "validated after")
    body = fake.stats()["recent"][-1]["body"]
    assert '"verdict_note"' in body["system"]  # the schema, in Anthropic's system field
    assert "output_config" not in body and "tools" not in body
    (reply,) = send(member("anthropic", fake, structured="tool"))  # the name it had before
    assert reply.meta["form"] == "tools" and fake.stats()["by_form"] == {"none": 1, "tool": 1}
