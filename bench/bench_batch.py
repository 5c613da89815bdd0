"""The batch route at catalog scale, against the loopback provider's Batch APIs.

    python bench/bench_batch.py [--tools 1000] [--members openai,anthropic,mistral]
                                [--error-rate 0] [--expire-rate 0] [--batch-seconds 2]

The fake provider runs in a process of its own (batches take `--batch-seconds` of its clock
from creation to end, `--error-rate` and `--expire-rate` of their requests error or expire).
A child process reviews `--tools` generated tools x 4 personas with one batch member per
provider named in `--members`, polling every 0.2 s. Printed: reviews valid and failed (each
failed one with its reason), batches per member and attempt, the wall time until every
first batch was submitted and until the last result was stored, the child's peak memory,
and the spend at batch prices beside what the live route would have cost the same replies.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_engine import write_catalog  # noqa: E402

KEYS = {
    "OPENAI_API_KEY": "sk-bench-openai",
    "ANTHROPIC_API_KEY": "sk-ant-bench",
    "MISTRAL_API_KEY": "bench-mistral",
}
MODELS = {
    "openai": "openai:gpt-4.1-mini",
    "anthropic": "anthropic:claude-haiku-4-5",
    "mistral": "mistral:mistral-small-latest",
}

_CHILD = """
import asyncio, json, sys, time
from pathlib import Path
from panel.backends.registry import parse_member
from panel.catalog import load_catalog
from panel.personas import load_personas
from panel.resources import data_dir
from panel.run.plan import Plan, RunOptions, build_members, run_plan
from panel.run import batch as batch_module
from panel.run.events import BatchSeen
from panel.store import Store

catalog, out, members = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
specs = [parse_member(spec, {"base_url": url, "timeout": 120, "route": "batch"}) for spec, url in members]
plan = Plan(tools=list(load_catalog(catalog)), personas=list(load_personas(data_dir("personas")).values()),
            members=build_members(specs), specs=specs, catalog_path=catalog)
started = time.perf_counter()
submitted = {}
runners = []

def on_event(event):
    if isinstance(event, BatchSeen):
        submitted.setdefault(event.key, time.perf_counter() - started)

original = batch_module.BatchRunner.run
async def run(self, member, cells):
    runners.append(self)
    return await original(self, member, cells)
batch_module.BatchRunner.run = run

with Store(out) as store:
    options = RunOptions(poll_interval=0.2)
    run_id, stats = asyncio.run(run_plan(plan, store, "bench", options=options, on_event=on_event))
    ended = time.perf_counter() - started
    rows = store.batches(run_id)
    reviews = store.reviews(run_id)
    reasons = {}
    for r in reviews:
        if not r.valid:
            reasons[(r.error or "")[:80]] = reasons.get((r.error or "")[:80], 0) + 1
    firsts = [submitted[r.batch_key] for r in rows if r.attempt == 1 and r.batch_key in submitted]
    print(json.dumps({
        "reviews": len(reviews), "valid": stats.valid, "failed": stats.failed,
        "failed_reasons": reasons,
        "batches": {f"{r.member} attempt {r.attempt}": r.requests for r in rows},
        "batch_count": len(rows),
        "first_batches_submitted_s": round(max(firsts), 2) if firsts else None,
        "last_result_stored_s": round(ended, 2),
        "spent_usd_batch_route": round(store.spent(run_id), 6),
        "batch_spent_usd": round(stats.batch_spent, 6),
        "same_replies_at_live_prices_usd": round(stats.batch_at_live, 6),
    }))
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tools", type=int, default=1000)
    parser.add_argument("--members", default="openai,anthropic,mistral")
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--expire-rate", type=float, default=0.0)
    parser.add_argument("--batch-seconds", type=float, default=2.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        catalog = write_catalog(Path(tmp) / "catalog.jsonl", args.tools)
        provider = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "panel.testing.fake_provider",
                "--port",
                "0",
                "--batch-seconds",
                str(args.batch_seconds),
                "--batch-error-rate",
                str(args.error_rate),
                "--batch-expire-rate",
                str(args.expire_rate),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert provider.stdout is not None
        url = provider.stdout.readline().strip().removeprefix("listening on ")
        try:
            members = [
                (MODELS[name], f"{url}/{name}" + ("/v1" if name == "openai" else ""))
                for name in args.members.split(",")
            ]
            env = {**os.environ, "PYTHONPATH": str(ROOT), **KEYS}
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, str(catalog), str(Path(tmp) / "runs"), json.dumps(members)],
                env=env,
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - started
            peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            if done.returncode != 0:
                raise SystemExit(done.stderr[-3000:])
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            stats = json.loads(
                subprocess.run(
                    ["curl", "-s", f"{url}/_fake/stats"], capture_output=True, text=True, check=True
                ).stdout
            )
        finally:
            provider.terminate()
            provider.wait()
    figures["child_wall_s"] = round(wall, 2)
    figures["peak_rss_mb"] = round(peak_mb, 1)
    batches = stats["batches"]
    figures["provider"] = {
        "created": batches["created"],
        "requests": batches["requests"],
        "duplicates": stats["batch_duplicates"],
        "redundant": batches["redundant"],
        "live_requests": stats["requests"],
    }
    for key, value in figures.items():
        print(f"{key}: {json.dumps(value)}")
    print("summary " + json.dumps(figures))


if __name__ == "__main__":
    main()
