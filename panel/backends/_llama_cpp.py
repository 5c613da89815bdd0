"""The `llama-cpp-python` engine of the local backend: one model instance, one sequence at a time.

It compiles from source on most Linux machines (minutes), so it is an option
(`engine = "llama-cpp-python"`, extra `llama-cpp`), not the default.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import FatalError
from .base import Request
from .structured import CONVERTER_MAX_LENGTH
from .threads import META_KEY, choose_threads, fixed_threads, load_average, usable_cores

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_grammar import LlamaGrammar

__all__ = ["LlamaCppEngine"]

_models: dict[tuple[str, int, int], Llama] = {}
_models_lock = threading.Lock()
_decoders: dict[str, ThreadPoolExecutor] = {}


def _decoder(path: Path) -> ThreadPoolExecutor:
    """The one thread that calls into a model file.

    llama.cpp's OpenMP build keeps a team of worker threads per calling thread, and a team
    spins for a while after each call; calls from changing threads would leave teams
    spinning against each other on the same cores.
    """
    key = str(path)
    with _models_lock:
        if key not in _decoders:
            _decoders[key] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="panel-llama")
        return _decoders[key]


def _load(path: Path, n_ctx: int, n_threads: int) -> Llama:
    """Load a model once per process; later calls get the same instance."""
    key = (str(path), n_ctx, n_threads)
    with _models_lock:
        if key not in _models:
            from llama_cpp import Llama

            _models[key] = Llama(
                model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, verbose=False, seed=0
            )
        return _models[key]


class LlamaCppEngine:
    name = "llama-cpp-python"
    module = "llama_cpp"
    extra = "llama-cpp"
    # Its schema converter writes each cap as nested groups: longer ones fail to compile and
    # take the process down (see `CONVERTER_MAX_LENGTH`).
    max_length: int | None = CONVERTER_MAX_LENGTH

    def __init__(self, path: Path, *, n_ctx: int, n_threads: int | None, parallel: int) -> None:
        # One instance decodes one sequence at a time: `parallel` does not apply.
        self.path, self.n_ctx = path, n_ctx
        # No probe here: at most half the cores, those the load average leaves free
        # (`panel.backends.threads`).
        self.choice = (
            fixed_threads(n_threads)
            if n_threads is not None
            else choose_threads(usable_cores(), load_average(), None)
        )
        self.n_threads = self.choice.n_threads
        self.parallel = 1
        self._lock = threading.Lock()

    @property
    def executor(self) -> ThreadPoolExecutor:
        return _decoder(self.path)

    def complete(self, request: Request, schema: dict[str, Any], repeat_penalty: float) -> dict[str, Any]:
        """One chat completion held to `schema` (already fitted), OpenAI-shaped."""
        llm = _load(self.path, self.n_ctx, self.n_threads)
        sampling = request.sampling
        grammar = _grammar(json.dumps(schema, sort_keys=True))
        with self._lock:
            try:
                out: Any = llm.create_chat_completion(
                    messages=request.messages,  # type: ignore[arg-type]
                    grammar=grammar,
                    temperature=sampling.temperature,
                    top_p=sampling.top_p,
                    max_tokens=sampling.max_tokens,
                    seed=sampling.seed,
                    repeat_penalty=repeat_penalty,
                )
            except (ValueError, RuntimeError) as exc:
                # Context overflow and decode failures will not go away on a retry.
                raise FatalError(f"local model failed: {exc}") from None
        result: dict[str, Any] = dict(out)
        result[META_KEY] = self.choice.meta()
        return result


# JSON forbids raw control characters inside strings; the stock rule lets them through.
_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_STRICT_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'


@lru_cache(maxsize=64)
def _grammar(schema_json: str) -> LlamaGrammar:
    from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

    gbnf = json_schema_to_gbnf(schema_json)
    if _LOOSE_CHAR in gbnf:
        gbnf = gbnf.replace(_LOOSE_CHAR, _STRICT_CHAR)
    return LlamaGrammar.from_string(gbnf, verbose=False)
