"""The two engines of the local backend side by side: xllamacpp against llama-cpp-python.

    python bench/bench_engines.py [--rounds 2] [--requests 8] [--install]

Both run the bundled SmolLM2-135M-Instruct on the same 8 requests as the demo
(`panel compare smolvlm2-2b mistral-large-3`: 2 tools x 4 personas), with the same review
schemas fitted to the same token budget, the same sampling settings and repeat penalty.

1. Generation, each configuration (engine, threads, parallel sequences) in a fresh process,
   configurations interleaved round by round (and the order reversed every other round) so
   that drift on a shared machine hits all alike. The model is loaded and warmed up before
   the clock starts. Tokens/s = completion tokens of the replies / wall time of the whole
   batch (with `parallel` sequences in flight: the aggregate rate).
2. Wall time of the real command `panel compare smolvlm2-2b mistral-large-3` with each
   engine's default settings, fresh processes, once per round after the configurations.
3. With `--install`: time of `pip install --no-cache-dir` of each engine into a fresh venv
   (llama-cpp-python compiles; CMAKE_ARGS=-DGGML_NATIVE=OFF as the Makefile sets it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOOLS = ["smolvlm2-2b", "mistral-large-3"]
# (engine, threads, parallel sequences)
CONFIGS = [
    ("llama-cpp-python", 1, 1),
    ("llama-cpp-python", 2, 1),
    ("xllamacpp", 1, 1),
    ("xllamacpp", 2, 1),
    ("xllamacpp", 1, 4),
    ("xllamacpp", 2, 4),
]
# A process that keeps one core busy, as another job on a shared machine would.
SPINNER = "while True: pass"


def worker(engine: str, threads: int, parallel: int, count: int) -> None:
    """Run in a child process: one configuration, one batch of the demo's first `count` requests."""
    from panel.backends.base import Request, Sampling
    from panel.backends.local import REPEAT_PENALTY, LocalBackend, bundled_model_path, fit_schema
    from panel.run.plan import plan_compare

    sampling = Sampling()
    plan = plan_compare(TOOLS, backends=["fake"], sampling=sampling)
    requests = [c.request(plan.prompts, sampling) for c in plan.cells][:count]
    backend = LocalBackend(bundled_model_path(), n_threads=threads, engine=engine, parallel=parallel)
    eng = backend.engine

    def one(request: Request) -> int:
        out = eng.complete(request, fit_schema(request.schema, sampling.max_tokens), REPEAT_PENALTY)
        return int(out["usage"]["completion_tokens"])

    warm = Request(requests[0].messages, requests[0].schema, "warm", Sampling(max_tokens=32))
    eng.executor.submit(one, warm).result()  # load and warm up outside the clock
    started = time.perf_counter()
    tokens = sum(eng.executor.map(one, requests))
    elapsed = time.perf_counter() - started
    print(json.dumps({"tokens": tokens, "seconds": elapsed}))


def run_config(engine: str, threads: int, parallel: int, count: int, busy: bool) -> dict[str, float]:
    """One configuration in a fresh process; with `busy`, next to a process spinning on one core."""
    spinner = subprocess.Popen([sys.executable, "-c", SPINNER]) if busy else None
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--worker", engine, str(threads), str(parallel), str(count)],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def demo_wall(engine: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "panel.toml"
        config.write_text(f'[[members]]\nspec = "local"\nengine = "{engine}"\n')
        runs = str(Path(tmp) / "runs")
        command = [sys.executable, "-m", "panel", "compare", *TOOLS, "--config", str(config)]
        started = time.perf_counter()
        subprocess.run(
            [*command, "--json", "--out", runs, "--progress", "quiet"],
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        return time.perf_counter() - started


def install_time(package: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        venv.create(tmp, with_pip=True)
        pip = [str(Path(tmp) / "bin" / "python"), "-m", "pip"]
        subprocess.run([*pip, "install", "-q", "--upgrade", "pip"], check=True, capture_output=True)
        env = {**os.environ, "CMAKE_ARGS": "-DGGML_NATIVE=OFF"}
        started = time.perf_counter()
        subprocess.run([*pip, "install", "-q", "--no-cache-dir", package], check=True, env=env)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--requests", type=int, default=8, help="the demo's first N requests (4 = one tool)")
    parser.add_argument("--install", action="store_true")
    parser.add_argument("--engine", choices=["xllamacpp", "llama-cpp-python"], help="only this engine")
    parser.add_argument("--busy", action="store_true", help="also run each configuration next to a busy core")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo's wall time")
    parser.add_argument("--worker", nargs=4, metavar=("ENGINE", "THREADS", "PARALLEL", "COUNT"))
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), int(args.worker[2]), int(args.worker[3]))
        return
    summary: dict[str, object] = {}
    print(f"{args.rounds} rounds; each: every configuration on {args.requests} requests, then the demo")
    rates: dict[str, list[float]] = {}
    walls: dict[str, list[float]] = {}
    for r in range(args.rounds):
        configs = [c for c in CONFIGS if args.engine in (None, c[0])]
        runs = [(c, busy) for c in configs for busy in ([False, True] if args.busy else [False])]
        for (engine, threads, parallel), busy in runs if r % 2 == 0 else runs[::-1]:
            key = f"{engine} threads={threads} parallel={parallel}" + (" busy-neighbour" if busy else "")
            res = run_config(engine, threads, parallel, args.requests, busy)
            rates.setdefault(key, []).append(res["tokens"] / res["seconds"])
            print(f"  round {r + 1} {key}: {res['tokens']} tok in {res['seconds']:.1f} s", flush=True)
        engines = ["xllamacpp", "llama-cpp-python"] if r % 2 == 0 else ["llama-cpp-python", "xllamacpp"]
        for engine in [] if args.no_demo else [e for e in engines if args.engine in (None, e)]:
            walls.setdefault(engine, []).append(demo_wall(engine))
            print(f"  round {r + 1} panel compare {' '.join(TOOLS)}, {engine}: {walls[engine][-1]:.1f} s")
    summary["tok_s_median"] = {k: round(statistics.median(v), 1) for k, v in rates.items()}
    summary["demo_wall_s_median"] = {k: round(statistics.median(v), 1) for k, v in walls.items()}
    if args.install:
        print("pip install --no-cache-dir into a fresh venv", flush=True)
        summary["install_s"] = {p: round(install_time(p), 1) for p in ("xllamacpp", "llama-cpp-python")}
    print("summary " + json.dumps(summary))


if __name__ == "__main__":
    main()
