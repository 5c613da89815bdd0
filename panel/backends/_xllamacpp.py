"""The `xllamacpp` engine of the local backend: llama.cpp's own server, in process.

A prebuilt wheel (no compiler, seconds to install). One server per model file holds
`parallel` slots and decodes their sequences together (continuous batching), so several
reviews advance at once; the schema goes in as the `json_schema` response format and the
server holds the reply to it while decoding.
"""

from __future__ import annotations

import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import FatalError
from .base import Request

__all__ = ["XLlamaCppEngine"]

_servers: dict[tuple[str, int, int, int], Any] = {}
_executors: dict[tuple[str, int, int, int], ThreadPoolExecutor] = {}
_lock = threading.Lock()


class XLlamaCppEngine:
    name = "xllamacpp"
    module = "xllamacpp"
    extra = "local"
    # llama.cpp's own converter writes a cap as a counted repetition: any cap compiles.
    max_length: int | None = None

    def __init__(self, path: Path, *, n_ctx: int, n_threads: int, parallel: int) -> None:
        self.path, self.n_ctx, self.n_threads, self.parallel = path, n_ctx, n_threads, parallel
        self._key = (str(path), n_ctx, n_threads, parallel)

    @property
    def executor(self) -> ThreadPoolExecutor:
        """One calling thread per slot: each call blocks until its sequence is done."""
        with _lock:
            if self._key not in _executors:
                _executors[self._key] = ThreadPoolExecutor(self.parallel, thread_name_prefix="panel-xllama")
            return _executors[self._key]

    def _server(self) -> Any:
        """Start the server once per process and settings; later calls share it."""
        with _lock:
            if self._key not in _servers:
                import xllamacpp

                params = xllamacpp.CommonParams()
                params.model.path = str(self.path)
                # Each slot gets n_ctx of its own: the context is split evenly between slots.
                params.n_ctx = self.n_ctx * self.parallel
                params.n_parallel = self.parallel
                params.cpuparams.n_threads = self.n_threads
                params.cpuparams_batch.n_threads = self.n_threads
                params.fit_params = False  # keep the context asked for, never shrink it quietly
                params.verbosity = 0  # the server's own log would drown the progress bar
                # The server also listens on a random loopback port: a key no one knows keeps
                # other local processes off it (calls made in process need none).
                params.api_keys = [secrets.token_urlsafe(24)]
                try:
                    _servers[self._key] = xllamacpp.Server(params)
                except (ValueError, RuntimeError) as exc:
                    raise FatalError(f"local model {self.path.name} did not load: {exc}") from None
            return _servers[self._key]

    def complete(self, request: Request, schema: dict[str, Any], repeat_penalty: float) -> dict[str, Any]:
        """One chat completion held to `schema` (already fitted), OpenAI-shaped."""
        sampling = request.sampling
        body = {
            "messages": request.messages,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": request.schema_name, "schema": schema},
            },
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            "seed": sampling.seed,
            "repeat_penalty": repeat_penalty,
            # A prompt prefix reused from the previous request was computed in another batch
            # shape: its logits differ in the last bits and the seeded reply would drift.
            "cache_prompt": False,
        }
        try:
            out: dict[str, Any] = self._server().handle_chat_completions(body)
        except (ValueError, RuntimeError) as exc:
            # A schema the server cannot compile, a context overflow: a retry will not help.
            raise FatalError(f"local model failed: {exc}") from None
        if "error" in out:
            error = out["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise FatalError(f"local model failed: {message}")
        return out
