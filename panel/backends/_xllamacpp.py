"""The `xllamacpp` engine of the local backend: llama.cpp's own server, in process.

A prebuilt wheel (no compiler, seconds to install). One server per model file holds
`parallel` slots and decodes their sequences together (continuous batching), so several
reviews advance at once; the schema goes in as the `json_schema` response format and the
server holds the reply to it while decoding.

The server runs with flash attention off and reuses the prompt prefix a slot already holds.
With flash attention off, the logits of a sequence decoded alone do not depend on the
thread count nor on which part of its prompt was computed earlier: a seeded reply is the
same at 1 or 2 threads and with or without a cached prefix (tests/test_local_speed.py), so
the thread count can be measured at run time (`panel.backends.threads`) and the four
personas' reviews of a tool reuse the system message and the entry they share. What must
still be computed of a prompt is computed as one batch of at least two tokens (see
`complete`). Sequences decoded together in several slots are not bit-identical to one alone.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FatalError
from .base import Request
from .threads import (
    META_KEY,
    RECHECK,
    ThreadChoice,
    choose_threads,
    fixed_threads,
    load_average,
    usable_cores,
)

__all__ = ["XLlamaCppEngine", "per_token_s"]

#: the probe's prompt and length: a short decode whose speed stands for the reviews'
PROBE_MESSAGES = [{"role": "user", "content": "List the months of the year, one per line."}]
PROBE_TOKENS = 24
#: llama_flash_attn_type: LLAMA_FLASH_ATTN_TYPE_DISABLED (-1 is auto, which turns it on here)
FLASH_ATTN_OFF = 0


@dataclass
class _Running:
    """The server one engine setting uses, and how its thread count was reached."""

    server: Any
    choice: ThreadChoice
    requests: int = 0
    #: the messages of the last request sent (one slot: what its cache holds)
    last_messages: Any = None


#: (model path, n_ctx, parallel, n_threads set in panel.toml or None) -> its running server
_running: dict[tuple[str, int, int, int | None], _Running] = {}
_executors: dict[tuple[str, int, int, int | None], ThreadPoolExecutor] = {}
#: one per engine setting, held while its model loads or its threads are measured
_loading: dict[tuple[str, int, int, int | None], threading.Lock] = {}
#: guards the dicts above only, never held while a model loads or decodes
_lock = threading.Lock()


class XLlamaCppEngine:
    name = "xllamacpp"
    module = "xllamacpp"
    extra = "local"
    # llama.cpp's own converter writes a cap as a counted repetition: any cap compiles.
    max_length: int | None = None

    def __init__(self, path: Path, *, n_ctx: int, n_threads: int | None, parallel: int) -> None:
        self.path, self.n_ctx, self.parallel = path, n_ctx, parallel
        self._fixed = n_threads
        self._key = (str(path), n_ctx, parallel, n_threads)

    @property
    def choice(self) -> ThreadChoice | None:
        """How many threads decode and why; None until the first request chose them."""
        if self._fixed is not None:
            return fixed_threads(self._fixed)
        running = _running.get(self._key)
        return running.choice if running else None

    @property
    def executor(self) -> ThreadPoolExecutor:
        """One calling thread per slot: each call blocks until its sequence is done."""
        with _lock:
            if self._key not in _executors:
                _executors[self._key] = ThreadPoolExecutor(self.parallel, thread_name_prefix="panel-xllama")
            return _executors[self._key]

    def _loading_lock(self) -> threading.Lock:
        with _lock:
            return _loading.setdefault(self._key, threading.Lock())

    def _start(self, n_threads: int) -> Any:
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(self.path)
        # Each slot gets n_ctx of its own: the context is split evenly between slots.
        params.n_ctx = self.n_ctx * self.parallel
        params.n_parallel = self.parallel
        params.cpuparams.n_threads = n_threads
        params.cpuparams_batch.n_threads = n_threads
        params.flash_attn_type = FLASH_ATTN_OFF  # see the module's docstring
        # No prompt cache in host memory: a prompt restored whole from it leaves one token to
        # compute, and logits computed for one token alone differ in the last bits from the
        # same token computed among others (a seeded reply at temperature 0.8 changed).
        params.cache_ram_mib = 0
        params.fit_params = False  # keep the context asked for, never shrink it quietly
        params.verbosity = 0  # the server's own log would drown the progress bar
        # The server also listens on a random loopback port: a key no one knows keeps
        # other local processes off it (calls made in process need none).
        params.api_keys = [secrets.token_urlsafe(24)]
        try:
            return xllamacpp.Server(params)
        except (ValueError, RuntimeError) as exc:
            raise FatalError(f"local model {self.path.name} did not load: {exc}") from None

    def _choose(self, current: _Running | None = None) -> _Running:
        """Measure the thread count (`panel.backends.threads`); keep only the chosen server.

        `current`, when choosing again, is a candidate at its own count (no reload) and its
        threads are taken out of the load average: they were this engine's own work.
        """
        servers = {current.choice.n_threads: current.server} if current else {}
        probed: set[int] = set()

        def probe(n_threads: int) -> float:
            if n_threads not in servers:
                servers[n_threads] = self._start(n_threads)
            probed.add(n_threads)
            started = time.perf_counter()
            out = _call(servers[n_threads], _probe_body())
            wall = time.perf_counter() - started
            tokens = _completion_tokens(out)
            return per_token_s(out) or (wall / tokens if tokens else float("inf"))

        own = current.choice.n_threads if current else 0
        choice = choose_threads(usable_cores(), load_average(), probe, own=own)
        server = servers.pop(choice.n_threads, None) or self._start(choice.n_threads)
        servers.clear()
        running = _Running(server, choice)
        if current is not None and server is current.server and choice.n_threads not in probed:
            running.last_messages = current.last_messages  # its slot still holds that prompt
        return running

    def _server(self) -> _Running:
        """Start the server once per process and settings; later calls share it."""
        running = _running.get(self._key)
        if running is not None:
            return running
        with self._loading_lock():
            running = _running.get(self._key)
            if running is None:
                if self._fixed is not None:
                    running = _Running(self._start(self._fixed), fixed_threads(self._fixed))
                else:
                    running = self._choose()
                with _lock:
                    _running[self._key] = running
            return running

    def _after(self, running: _Running, out: dict[str, Any]) -> None:
        """Choose the threads again if this request says the machine changed. One slot only:
        a sequence decoded among others is slower per token whatever the machine does."""
        if running.choice.fixed or self.parallel > 1:
            return
        running.requests += 1
        spent = per_token_s(out)
        slowed = spent is not None and running.choice.too_slow(spent)
        below = running.choice.n_threads < usable_cores() and running.requests % RECHECK == 0
        if not (slowed or below):
            return
        with self._loading_lock():
            if _running.get(self._key) is not running:
                return  # chosen again already
            try:
                chosen = self._choose(running)
            except FatalError:
                return  # a second copy of the model did not load: keep the one that works
            with _lock:
                _running[self._key] = chosen

    def complete(self, request: Request, schema: dict[str, Any], repeat_penalty: float) -> dict[str, Any]:
        """One chat completion held to `schema` (already fitted), OpenAI-shaped; under
        `META_KEY`, the thread count that decoded it and the server's time to the first token."""
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
            # The slot keeps the previous prompt: the system message and the tool's entry,
            # which the next persona's prompt starts with, are not computed again.
            "cache_prompt": True,
        }
        running = self._server()
        if self.parallel == 1:
            # The same prompt again would be cached but its last token, computed alone: see
            # `cache_ram_mib` above. It is computed whole, as it was the first time.
            if running.last_messages == request.messages:
                body["cache_prompt"] = False
            running.last_messages = request.messages
        out = _call(running.server, body)
        first = _timing(out, "prompt_ms")  # the prompt's processing: the time to the first token
        out[META_KEY] = running.choice.meta() | (
            {} if first is None else {"first_token_s": round(first / 1000, 4)}
        )
        self._after(running, out)
        return out


def _probe_body() -> dict[str, Any]:
    return {
        "messages": PROBE_MESSAGES,
        "max_tokens": PROBE_TOKENS,
        "temperature": 0.0,
        "ignore_eos": True,
        "cache_prompt": False,
    }


def _call(server: Any, body: dict[str, Any]) -> dict[str, Any]:
    try:
        out: dict[str, Any] = server.handle_chat_completions(body)
    except (ValueError, RuntimeError) as exc:
        # A schema the server cannot compile, a context overflow: a retry will not help.
        raise FatalError(f"local model failed: {exc}") from None
    if "error" in out:
        error = out["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise FatalError(f"local model failed: {message}")
    return out


def per_token_s(out: dict[str, Any]) -> float | None:
    """Seconds per decoded token, from the server's own timings of a reply (None: none given)."""
    n, ms = _timing(out, "predicted_n", count=True), _timing(out, "predicted_ms")
    if n is None or ms is None or n <= 0:
        return None
    return ms / 1000 / n


def _timing(out: dict[str, Any], key: str, *, count: bool = False) -> float | None:
    """One figure of the server's `timings` of a reply: a finite number, 0 or more, an integer
    if it is a `count` (None: not so)."""
    timings = out.get("timings")
    value = timings.get(key) if isinstance(timings, dict) else None
    kinds = int if count else (int, float)
    if isinstance(value, kinds) and not isinstance(value, bool) and 0 <= value < math.inf:
        return float(value)
    return None


def _completion_tokens(out: dict[str, Any]) -> int:
    usage = out.get("usage")
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    return tokens if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens > 0 else 0
