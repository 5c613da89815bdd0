"""Benchmark of the embedded model: the demo's wall time by setting, and the pipeline against
the engine itself.

    python bench/bench_local.py [--rounds 3] [--slots 4] [--skip-demo] [--skip-engine]
                                [--before DIR] [--busy]

1. The demo: the real command `panel compare A B --no-cache` (2 tools x 4 personas on the
   embedded model) in fresh processes, for each setting of the local member: the defaults,
   `n_threads = 2`, `n_threads = 2, parallel = N`. With `--before DIR` (a checkout of an
   earlier tree, e.g. `git worktree add /tmp/before <rev>`) the same settings also run on that
   tree, so before and after are measured in one sitting. Rounds interleave every setting;
   with `--busy` each round runs twice, once quiet and once beside a process spinning on one
   core (`python -c 'while True: pass'`). Per run: wall time, the review phase (first request
   sent to last reply stored, model load included), valid reviews, the threads chosen.
2. The engine: generation inside the pipeline against raw llama.cpp (the engine's own
   `xllamacpp.Server`, called directly) on the same prompts, fitted schemas and sampling,
   each side in a fresh process of its own, rounds interleaved, for 1 slot and for N: tokens/s
   (generated tokens / wall time of the batch), median time to the first token (the server's
   own prompt timing) and reviews/min. Pipeline / raw tokens/s should stay at 0.95 or above.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from panel.backends._xllamacpp import XLlamaCppEngine  # noqa: E402
from panel.backends.base import Request, Sampling  # noqa: E402
from panel.backends.local import REPEAT_PENALTY, LocalBackend  # noqa: E402
from panel.config import PanelConfig, load_config  # noqa: E402
from panel.run.plan import plan_compare, run_plan  # noqa: E402
from panel.store import Store  # noqa: E402

SPIN = "while True: pass"


# ---------------------------------------------------------------- 1. the demo, by setting


def settings(slots: int) -> dict[str, str]:
    """Setting name -> the local member's panel.toml lines ('' is the defaults)."""
    return {
        "defaults": "",
        "n_threads = 2": "n_threads = 2\n",
        f"n_threads = 2, parallel = {slots}": f"n_threads = 2\nparallel = {slots}\n",
    }


def demo_run(tree: Path, tools: list[str], member: str) -> dict[str, Any]:
    """One `panel compare --no-cache` in a fresh process on `tree`; its figures."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "runs"
        command = [
            sys.executable,
            "-m",
            "panel",
            "compare",
            *tools,
            "--no-cache",
            "--out",
            str(out),
            "--json",
        ]
        if member:
            config = Path(tmp) / "panel.toml"
            config.write_text(f'[[members]]\nspec = "local"\n{member}')
            command += ["--config", str(config)]
        env = {**os.environ, "PYTHONPATH": str(tree)}
        started = time.perf_counter()
        subprocess.run(
            command, check=True, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wall = time.perf_counter() - started
        db = sqlite3.connect(out / "panel.db")
        try:
            replies = db.execute("SELECT created_at, latency_s, meta FROM replies").fetchall()
            valid = db.execute("SELECT COUNT(*) FROM reviews WHERE valid").fetchone()[0]
            reviews = db.execute("SELECT COUNT(*) FROM reviews").fetchone()[0]
        finally:
            db.close()
    first = min(created - latency for created, latency, _ in replies)
    threads = sorted({json.loads(meta or "{}").get("n_threads") for *_, meta in replies} - {None})
    return {
        "wall": wall,
        "review_phase": max(created for created, _, _ in replies) - first,
        "valid": f"{valid}/{reviews}",
        "threads": ",".join(map(str, threads)) or "-",
    }


def demo_table(args: argparse.Namespace) -> None:
    trees = {"after": ROOT} | ({"before": Path(args.before).resolve()} if args.before else {})
    conditions = ["quiet", "busy"] if args.busy else ["quiet"]
    rows: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    print(
        f"1. `panel compare {' '.join(args.tools)} --no-cache`, {args.rounds} interleaved rounds", flush=True
    )
    for round_ in range(args.rounds):
        for condition in conditions:
            spinner = subprocess.Popen([sys.executable, "-c", SPIN]) if condition == "busy" else None
            try:
                for tree_name, tree in trees.items():
                    for name, member in settings(args.slots).items():
                        figures = demo_run(tree, args.tools, member)
                        rows.setdefault((condition, tree_name, name), []).append(figures)
                        print(
                            f"  round {round_ + 1} {condition:5} {tree_name:6} {name:28} "
                            f"wall {figures['wall']:6.1f} s  reviews {figures['review_phase']:6.1f} s  "
                            f"valid {figures['valid']}  threads {figures['threads']}",
                            flush=True,
                        )
            finally:
                if spinner is not None:
                    spinner.kill()
                    spinner.wait()
    print(
        "\n| machine | tree | local member | wall time, median (all) | review phase, median "
        "| valid | threads |"
    )
    print("|---|---|---|---|---|---|---|")
    for (condition, tree_name, name), runs in rows.items():
        walls = [r["wall"] for r in runs]
        phases = [r["review_phase"] for r in runs]
        valid = ", ".join(sorted({r["valid"] for r in runs}))
        threads = ", ".join(sorted({r["threads"] for r in runs}))
        print(
            f"| {condition} | {tree_name} | {name} | {statistics.median(walls):.1f} s "
            f"({', '.join(f'{w:.1f}' for w in walls)}) | {statistics.median(phases):.1f} s "
            f"| {valid} | {threads} |"
        )


# ---------------------------------------------------------------- 2. pipeline against the engine


def member_config(slots: int) -> PanelConfig:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "panel.toml"
        path.write_text(f'[[members]]\nspec = "local"\nparallel = {slots}\n')
        return load_config(path)


def pipeline_round(tools: list[str], config: PanelConfig) -> dict[str, float]:
    plan = plan_compare(tools, sampling=Sampling(), config=config)
    with tempfile.TemporaryDirectory() as out, Store(out) as store:
        started = time.perf_counter()
        asyncio.run(run_plan(plan, store, "bench"))
        elapsed = time.perf_counter() - started
        tokens = store.db.execute("SELECT SUM(output_tokens) FROM replies").fetchone()[0]
        metas = [json.loads(m or "{}") for (m,) in store.db.execute("SELECT meta FROM replies")]
    firsts = [m["first_token_s"] for m in metas if "first_token_s" in m]
    return {
        "tokens": int(tokens),
        "seconds": elapsed,
        "reviews": len(plan.cells),
        "first_token_s": statistics.median(firsts) if firsts else float("nan"),
    }


def worker(side: str, tools: list[str], slots: int) -> dict[str, Any]:
    """One measured round of one side in this process, alone: a second llama.cpp server in the
    same process was seen to slow the first by 40% (34.7 s against 48.9 s for the same 8
    reviews), so each side runs in a process of its own. The model loads and its threads are
    measured before the clock, by the engine either way."""
    config = member_config(slots)
    plan = plan_compare(tools, sampling=Sampling(), config=config)
    backend = plan.members[0].backend
    assert isinstance(backend, LocalBackend) and isinstance(backend.engine, XLlamaCppEngine)
    requests = [c.request(plan.prompts, Sampling()) for c in plan.cells]
    schemas = [backend._schema(r) for r in requests]
    # The engine's own server, called below with no panel code in between.
    server = backend.engine._server().server
    raw_round(server, requests[-1:], schemas[-1:], 1)  # warm up (another tool: the rules are cached)
    figures = (
        pipeline_round(tools, config) if side == "pipeline" else raw_round(server, requests, schemas, slots)
    )
    choice = backend.engine.choice
    assert choice is not None
    return {**figures, "n_threads": choice.n_threads, "why": choice.why}


def run_worker(side: str, tools: list[str], slots: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", side, "--slots", str(slots), "--tools", *tools]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def raw_round(
    server: Any, requests: list[Request], schemas: list[dict[str, Any]], slots: int
) -> dict[str, float]:
    def one(pair: tuple[Request, dict[str, Any]]) -> tuple[int, float]:
        request, schema = pair
        s = request.sampling
        out = server.handle_chat_completions(
            {
                "messages": request.messages,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": request.schema_name, "schema": schema},
                },
                "temperature": s.temperature,
                "top_p": s.top_p,
                "max_tokens": s.max_tokens,
                "seed": s.seed,
                "repeat_penalty": REPEAT_PENALTY,
                "cache_prompt": True,
            }
        )
        return int(out["usage"]["completion_tokens"]), out["timings"]["prompt_ms"] / 1000

    started = time.perf_counter()
    with ThreadPoolExecutor(slots) as pool:
        results = list(pool.map(one, zip(requests, schemas, strict=True)))
    elapsed = time.perf_counter() - started
    return {
        "tokens": sum(t for t, _ in results),
        "seconds": elapsed,
        "reviews": len(requests),
        "first_token_s": statistics.median(f for _, f in results),
    }


def engine_table(args: argparse.Namespace) -> None:
    print(f"\n2. pipeline against raw xllamacpp, {args.rounds} interleaved rounds per slot count", flush=True)
    summary = []
    for slots in (1, args.slots):
        pipe, raw = [], []
        for i in range(args.rounds):
            pipe.append(run_worker("pipeline", args.tools, slots))
            raw.append(run_worker("raw", args.tools, slots))
            p, r = pipe[-1], raw[-1]
            print(
                f"  {slots} slot(s), round {i + 1}: pipeline {p['tokens']} tok in {p['seconds']:.1f} s "
                f"({p['tokens'] / p['seconds']:.1f} tok/s; {p['why']}) | raw {r['tokens']} tok in "
                f"{r['seconds']:.1f} s ({r['tokens'] / r['seconds']:.1f} tok/s; {r['why']})",
                flush=True,
            )
        threads = ",".join(sorted({str(x["n_threads"]) for x in pipe + raw}))
        summary.append((slots, threads, pipe, raw))
    print(
        "\n| slots | threads | side | tokens/s, median | time to first token, median | reviews/min, median |"
    )
    print("|---|---|---|---|---|---|")
    for slots, n_threads, pipe, raw in summary:
        for side, rounds in (("pipeline", pipe), ("raw xllamacpp", raw)):
            tps = statistics.median(r["tokens"] / r["seconds"] for r in rounds)
            ttft = statistics.median(r["first_token_s"] for r in rounds)
            rpm = statistics.median(60 * r["reviews"] / r["seconds"] for r in rounds)
            print(f"| {slots} | {n_threads} | {side} | {tps:.1f} | {ttft:.2f} s | {rpm:.1f} |")
        ratio = statistics.median(
            (p["tokens"] / p["seconds"]) / (r["tokens"] / r["seconds"])
            for p, r in zip(pipe, raw, strict=True)
        )
        print(f"|  |  | pipeline / raw (median of the rounds' ratios) | **{ratio:.3f}** |  |  |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tools", nargs=2, default=["smolvlm2-2b", "mistral-large-3"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--slots", type=int, default=4, help="the N of N slots (parallel)")
    parser.add_argument("--before", metavar="DIR", help="a checkout of an earlier tree, measured alongside")
    parser.add_argument("--busy", action="store_true", help="each demo round also beside a spinning process")
    parser.add_argument("--worker", choices=["pipeline", "raw"], help=argparse.SUPPRESS)
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-engine", action="store_true")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.tools, args.slots)))
        return
    if not args.skip_demo:
        demo_table(args)
    if not args.skip_engine:
        engine_table(args)


if __name__ == "__main__":
    main()
