"""Benchmark of the local panel: wall time of `panel compare`, and the pipeline's overhead.

    python bench/bench_local.py [--rounds 3] [--cli-runs 3] [--tools smolvlm2-2b mistral-large-3]

1. Wall time of the real command `panel compare A B` (2 tools x 4 personas on the embedded
   model), run `--cli-runs` times in fresh processes, so model load and start-up are in it.
2. Generation speed inside the pipeline against the raw engine (the member's default:
   xllamacpp, or llama-cpp-python with `--engine`) on the same prompts, in the same process
   and the same model instance, rounds interleaved so that drift on a shared machine hits
   both alike. The raw side calls the engine with the same messages, the same fitted schema
   and the same sampling settings, on the engine's own threads, as many at once as the
   pipeline has in flight, and nothing else: no validation, no store, no asyncio, no re-ask.
   Tokens/s = tokens generated / wall time of the whole batch.
   Overhead = 1 - pipeline tokens/s / raw tokens/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from panel.backends.base import Request, Sampling  # noqa: E402
from panel.backends.local import REPEAT_PENALTY, LocalBackend, fit_schema  # noqa: E402
from panel.config import PanelConfig, load_config  # noqa: E402
from panel.run.plan import plan_compare, run_plan  # noqa: E402
from panel.store import Store  # noqa: E402


def cli_wall_times(tools: list[str], runs: int) -> list[float]:
    times = []
    for i in range(runs):
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "panel", "compare", *tools, "--out", out, "--json"],
                check=True,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            times.append(time.perf_counter() - started)
        print(f"  panel compare run {i + 1}: {times[-1]:.1f} s", flush=True)
    return times


def pipeline_round(tools: list[str], sampling: Sampling, config: PanelConfig) -> tuple[int, float, int]:
    """Tokens generated, seconds, and calls made by one pipeline run of the panel."""
    plan = plan_compare(tools, sampling=sampling, config=config)
    with tempfile.TemporaryDirectory() as out, Store(out) as store:
        started = time.perf_counter()
        asyncio.run(run_plan(plan, store, "bench"))
        elapsed = time.perf_counter() - started
        tokens, calls = store.db.execute("SELECT SUM(output_tokens), COUNT(*) FROM replies").fetchone()
    return int(tokens), elapsed, int(calls)


def raw_round(requests: list[Request], backend: LocalBackend) -> tuple[int, float]:
    """The same first-ask prompts straight through the engine, on its own threads."""
    engine = backend.engine

    def one(request: Request) -> int:
        schema = fit_schema(request.schema, request.sampling.max_tokens)
        return int(engine.complete(request, schema, REPEAT_PENALTY)["usage"]["completion_tokens"])

    started = time.perf_counter()
    tokens = sum(engine.executor.map(one, requests))
    return tokens, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tools", nargs=2, default=["smolvlm2-2b", "mistral-large-3"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cli-runs", type=int, default=3)
    parser.add_argument("--engine", default="auto", choices=["auto", "xllamacpp", "llama-cpp-python"])
    args = parser.parse_args()
    sampling = Sampling()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "panel.toml"
        path.write_text(f'[[members]]\nspec = "local"\nengine = "{args.engine}"\n')
        config = load_config(path)

    print(f"1. wall time of `panel compare {' '.join(args.tools)}` (2 tools x 4 personas, local)")
    walls = cli_wall_times(args.tools, args.cli_runs) if args.cli_runs else []

    plan = plan_compare(args.tools, sampling=sampling, config=config)
    backend = plan.members[0].backend
    assert isinstance(backend, LocalBackend)
    requests = [c.request(plan.prompts, sampling) for c in plan.cells]
    raw_round(requests[:1], backend)  # load once, outside the timings

    print(f"2. tokens/s, pipeline vs raw {backend.engine.name}, {args.rounds} interleaved rounds")
    pipe_tps, raw_tps, rows = [], [], []
    for i in range(args.rounds):
        p_tokens, p_secs, p_calls = pipeline_round(args.tools, sampling, config)
        r_tokens, r_secs = raw_round(requests, backend)
        pipe_tps.append(p_tokens / p_secs)
        raw_tps.append(r_tokens / r_secs)
        rows.append((p_tokens, p_secs, p_calls, r_tokens, r_secs))
        print(
            f"  round {i + 1}: pipeline {p_tokens} tok in {p_secs:.1f} s ({pipe_tps[-1]:.1f} tok/s, "
            f"{p_calls} calls) | raw {r_tokens} tok in {r_secs:.1f} s ({raw_tps[-1]:.1f} tok/s, "
            f"{len(requests)} calls)",
            flush=True,
        )

    ratio = statistics.median(p / r for p, r in zip(pipe_tps, raw_tps, strict=True))
    summary = {
        "cli_wall_s_median": round(statistics.median(walls), 2) if walls else None,
        "cli_wall_s_all": [round(w, 2) for w in walls],
        "pipeline_tok_s_median": round(statistics.median(pipe_tps), 1),
        "raw_tok_s_median": round(statistics.median(raw_tps), 1),
        "pipeline_over_raw_median_ratio": round(ratio, 3),
        "overhead_pct": round(100 * (1 - ratio), 1),
    }
    print("summary " + json.dumps(summary))


if __name__ == "__main__":
    main()
