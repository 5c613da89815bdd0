"""Helpers for the tests that run servers no one here wrote (llama-cpp-python's, llama.cpp's
from the xllamacpp wheel): start one on a free loopback port, and run `panel compare`
through the `openai` backend against it."""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# A poll waits up to _POLL_S for the child to exit, which also spaces the polls out.
_POLL_S = 0.25
_POLLS = 480


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(url: str) -> bool:
    """Whether a server answers `url`/models with at least one model."""
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
            return bool(json.load(response)["data"])
    except (OSError, urllib.error.URLError, ValueError, KeyError):
        return False


@contextlib.contextmanager
def serving(name: str, command: list[str], url: str, log: Path, *, stdin: bool = False) -> Iterator[str]:
    """Run the server `command` until it answers `url`/models, yield `url`, then stop it.

    `stdin=True`: the child serves until its stdin closes (so it also goes when the test
    process dies), and is stopped that way; else it is terminated.
    """
    with log.open("wb") as sink:
        pipe = subprocess.PIPE if stdin else None
        child = subprocess.Popen(command, stdin=pipe, stdout=sink, stderr=subprocess.STDOUT)
        try:
            for _ in range(_POLLS):
                if answers(url):
                    break
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(_POLL_S)
                if child.poll() is not None:
                    tail = log.read_text()[-800:]
                    pytest.fail(f"{name} exited with {child.returncode}: {tail}")
            else:
                pytest.fail(f"{name} did not answer /v1/models after {_POLLS} polls")
            yield url
        finally:
            if child.stdin is not None:
                child.stdin.close()
            else:
                child.terminate()
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def compare_through(
    cli: Any, base_url: str, name: str, tmp_path: Path, runs_dir: Path, max_tokens: int | None = 256
) -> tuple[list[dict[str, Any]], list[str]]:
    """`panel compare ollama tesseract` through an `openai` member on `base_url`, with the
    settings the README gives for a tiny model behind a stock llama.cpp server: the record's
    scorecard entries, and the structured-output forms the store kept. `max_tokens=None`:
    the member's default depth (full) and its token limit."""
    config = tmp_path / "panel.toml"
    config.write_text(
        "[[members]]\n"
        'spec = "openai:smollm2"\n'
        f'name = "{name}"\n'
        f'base_url = "{base_url}"\n'
        'structured = "auto"\n'
        "sampling = { repeat_penalty = 1.1 }\n"
        "concurrency = 1\ntimeout = 300\nprice_input = 0\nprice_output = 0\n"
    )
    limit = [] if max_tokens is None else ["--max-tokens", str(max_tokens)]
    result = cli(
        "compare", "ollama", "tesseract", "--config", str(config), "--out", str(runs_dir),
        *limit, "--json", "--progress", "quiet",
    )  # fmt: skip
    assert result.code == 0, result.err
    record = json.loads(result.out)
    entries = [e for card in record["tools"] for e in card["scorecard"]]
    with contextlib.closing(sqlite3.connect(runs_dir / "panel.db")) as db:
        forms = [row[0] for row in db.execute("SELECT form FROM member_forms")]
    return entries, forms
