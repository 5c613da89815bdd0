"""Throughput of a whole `panel review` process against a zero-latency provider.

    python bench/bench_throughput.py [--tools 2000] [--concurrency 64] [--rounds 3]
                                     [--baseline REF] [--profile FILE]

The loopback fake provider runs in a process of its own with no latency and no limit; a
`panel review` process reviews a generated catalog (`--tools` tools x 4 personas) through
the `openai` backend (the OpenAI SDK on its aiohttp transport), with `--concurrency`
requests in flight. For each run: reviews/s over the process's whole life (start-up,
imports, the records and files it writes included); reviews/s of the engine alone (first
request stored to last review stored); the process's CPU time (user + system) per review;
and the provider's CPU per request, so the share of the two cores each side took shows.

`--baseline REF` runs the same thing, interleaved round by round, on the tree of a git
commit (exported with `git archive` to a temporary folder), and prints the ratio of the two
per round: before and after, side by side in one run on one noisy machine.

`--profile FILE` runs one extra round of the working tree under cProfile and writes the
stats to FILE (read them with `python -m pstats FILE`); a FILE ending in `.txt` gets a
sampling profile from py-spy instead (folded stacks, `pip install py-spy`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_engine import write_catalog  # noqa: E402

KEY = "sk-bench-not-a-real-key"


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a live process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_provider(tree: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "panel.testing.fake_provider", "--port", "0", "--latency", "0"],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    return proc, line.removeprefix("listening on ")


def one_run(
    tree: Path,
    provider: subprocess.Popen[str],
    url: str,
    catalog: Path,
    concurrency: int,
    profile: Path | None,
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as work:
        config = Path(work) / "panel.toml"
        config.write_text(
            "[[members]]\n"
            'spec = "openai:gpt-4.1-mini"\n'
            f'base_url = "{url}/v1"\n'
            f"concurrency = {concurrency}\n"
            "timeout = 30\n"
        )
        command = [sys.executable]
        if profile is not None and profile.suffix == ".txt":
            # a sampling profile (py-spy, folded stacks): no per-call overhead to distort it
            command = ["py-spy", "record", "--format", "raw", "-r", "250", "-o", str(profile), "--", *command]
        elif profile is not None:
            command += ["-m", "cProfile", "-o", str(profile)]
        command += ["-m", "panel", "review", str(catalog), "--out", str(Path(work) / "runs")]
        command += ["--progress", "quiet", "--no-cache", "--config", str(config)]
        env = {**os.environ, "PYTHONPATH": str(tree), "OPENAI_API_KEY": KEY}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        provider_cpu = _cpu_of(provider.pid)
        started, started_at = time.perf_counter(), time.time()
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
        wall, ended_at = time.perf_counter() - started, time.time()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        provider_cpu = _cpu_of(provider.pid) - provider_cpu
        if done.returncode != 0:
            raise SystemExit(f"panel review exited {done.returncode}: {done.stderr.strip()[-2000:]}")
        lines = [json.loads(x) for x in next(Path(work, "runs").glob("*/reviews.jsonl")).open()]
        with contextlib.closing(sqlite3.connect(Path(work, "runs", "panel.db"))) as db:
            first, last = db.execute(
                "SELECT (SELECT MIN(created_at) FROM requests), (SELECT MAX(created_at) FROM reviews)"
            ).fetchone()
    valid = sum(1 for r in lines if r.get("valid"))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "reviews": len(lines),
        "valid": valid,
        "wall_s": round(wall, 3),
        "reviews_per_s": round(len(lines) / wall, 1),
        # first request stored to last review stored: the engine alone, without start-up
        # and without the files written at the end
        "engine_reviews_per_s": round(len(lines) / (last - first), 1),
        "start_s": round(first - started_at, 2),  # to the first request stored
        "end_s": round(ended_at - last, 2),  # from the last review stored: records, files
        "cpu_ms_per_review": round(1000 * cpu / len(lines), 3),
        "provider_cpu_ms_per_request": round(1000 * provider_cpu / len(lines), 3),
    }


def export(ref: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tools", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", help="git ref to compare against, run interleaved")
    parser.add_argument("--profile", type=Path, help="write a cProfile of one more round here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        catalog = write_catalog(Path(tmp) / "catalog.jsonl", args.tools)
        trees = {"current": ROOT}
        if args.baseline:
            base = Path(tmp) / "baseline"
            base.mkdir()
            trees = {"baseline": export(args.baseline, base), "current": ROOT}
        # One provider for every run, from the working tree, so both sides meet the same server.
        provider, url = start_provider(ROOT)
        try:
            results: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
            for k in range(args.rounds):
                for name, tree in trees.items():
                    r = one_run(tree, provider, url, catalog, args.concurrency, None)
                    results[name].append(r)
                    print(f"round {k + 1} {name:>8}: {json.dumps(r)}", flush=True)
            if args.profile:
                one_run(ROOT, provider, url, catalog, args.concurrency, args.profile)
                print(f"profile written to {args.profile}")
        finally:
            provider.terminate()
            provider.wait()

    summary: dict[str, object] = {"tools": args.tools, "concurrency": args.concurrency}
    for name, runs in results.items():
        for key in (
            "reviews_per_s",
            "engine_reviews_per_s",
            "cpu_ms_per_review",
            "provider_cpu_ms_per_request",
            "wall_s",
        ):
            summary[f"{name}_{key}_median"] = statistics.median(r[key] for r in runs)
        summary[f"{name}_valid"] = [r["valid"] for r in runs]
    if "baseline" in results:
        ratios = [
            c["reviews_per_s"] / b["reviews_per_s"]
            for b, c in zip(results["baseline"], results["current"], strict=True)
        ]
        cpu = [
            c["cpu_ms_per_review"] / b["cpu_ms_per_review"]
            for b, c in zip(results["baseline"], results["current"], strict=True)
        ]
        summary["speedup_per_round"] = [round(x, 2) for x in ratios]
        summary["speedup_median"] = round(statistics.median(ratios), 2)
        summary["cpu_ratio_median"] = round(statistics.median(cpu), 3)
        engine = [
            c["engine_reviews_per_s"] / b["engine_reviews_per_s"]
            for b, c in zip(results["baseline"], results["current"], strict=True)
        ]
        summary["engine_speedup_median"] = round(statistics.median(engine), 2)
    print("summary " + json.dumps(summary))


if __name__ == "__main__":
    main()
