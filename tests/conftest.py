"""Shared fixtures. No test may reach past loopback: the guard below refuses any other address."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# A pytest-xdist worker starts with COLUMNS=80 and LINES=24 in its environment; the CLI's rich
# consoles, made at import, would keep that width for good. Without them, as in a serial run,
# the consoles read the width the `cli` fixture sets when they print.
for _variable in ("COLUMNS", "LINES"):
    os.environ.pop(_variable, None)

from panel.store import Store  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CATALOG = ROOT / "examples" / "catalog.yaml"
#: the key the `fake` fixture sets for the providers with a Batch API
BATCH_KEY = "sk-batch-test-9f8e7d6c5b"

_real_connect = socket.socket.connect


def hide_module(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make `importlib.util.find_spec` say `name` is not installed, as on a machine without it."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == name else real(n, *a))


def _loopback_only(self: socket.socket, address: object) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
        host = str(address[0])
        try:
            ok = ipaddress.ip_address(host).is_loopback
        except ValueError:
            ok = host == "localhost"
        if not ok:
            raise ConnectionRefusedError(f"tests may only connect to loopback, not {host}")
    _real_connect(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """The loopback provider, with OpenAI, Anthropic and Mistral keys in the environment
    (test modules with other needs define their own `fake`)."""
    from panel.testing.fake_provider import FakeProvider

    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "MISTRAL_API_KEY"):
        monkeypatch.setenv(variable, BATCH_KEY)
    with FakeProvider() as server:
        yield server


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Run `panel ARGS...` in-process and return its exit code, stdout and stderr."""
    from panel.cli import main

    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["panel", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    yield run


@pytest.fixture
def made(cli: Any, runs_dir: Path) -> str:
    """A finished compare run on the fake backend (ollama vs vllm, builder and skeptic), its id."""
    out = cli("compare", "ollama", "vllm", "-b", "fake", "-p", "builder", "-p", "skeptic", "--json",
              "--out", str(runs_dir))  # fmt: skip
    assert out.code == 0, out.err
    return str(json.loads(out.out)["run_id"])


@pytest.fixture
def store(made: str, runs_dir: Path) -> Iterator[Store]:
    """The store of the run `made`, open for writing (an editor's edits, approvals, history)."""
    with Store(runs_dir) as opened:
        yield opened
