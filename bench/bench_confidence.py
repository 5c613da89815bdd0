"""Benchmark of each verdict's confidence (panel.report.confidence) on a simulated review run.

    python bench/bench_confidence.py [--tools 10000] [--judges 12] [--repeats 3]

A store holds one done run of ``--tools`` tools reviewed by ``--judges`` judges (personas
on one member) with accuracies spread from 0.55 to 0.95 (70% "ship" tools; 10% of reviews
failed), and an earlier done run of the same tools. Reported, as the median of
``--repeats`` runs: ``run_confidence`` whole (reading the store, one Dawid-Skene fit, the
bootstrap of every tool's interval, the previous run's verdicts) and the count of
contested tools.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import numpy as np

from panel.report.confidence import run_confidence
from panel.store import CellKey, Store


def fill(store: Store, run_id: str, n: int, judges: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    accuracies = np.linspace(0.55, 0.95, judges)
    truth = rng.random(n) < 0.7
    right = rng.random((n, judges)) < accuracies
    ship = np.where(right, truth[:, None], ~truth[:, None])
    failed = rng.random((n, judges)) < 0.1
    tools = [f"t{i}" for i in range(n)]
    personas = [f"p{j}" for j in range(judges)]
    store.create_run(
        run_id,
        "bench",
        None,
        {"members": ["a:x"]},
        tools=[(t, "fp", {"id": t}) for t in tools],
        personas=[(p, "v", {"id": p}) for p in personas],
    )
    store.group_commits(True)
    for i, t in enumerate(tools):
        for j, p in enumerate(personas):
            verdict = None if failed[i, j] else ("ship" if ship[i, j] else "skip")
            data = {"verdict": verdict} if verdict else None
            error = None if verdict else "failed"
            key = CellKey(t, p, "a:x")
            store.save_review(
                run_id, key, "a", "x", data=data, error=error, raw_reply=None, request_id=None, asks=1
            )
    store.group_commits(False)
    store.finish_run(run_id, "done")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tools", type=int, default=10_000)
    parser.add_argument("--judges", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        store = Store(root)
        fill(store, "earlier", args.tools, args.judges, 1)
        time.sleep(0.01)
        fill(store, "now", args.tools, args.judges, 2)
        seconds, contested = [], 0
        for _ in range(args.repeats):
            start = time.perf_counter()
            found = run_confidence(store, "now")
            seconds.append(time.perf_counter() - start)
            contested = sum(c.contested for c in found.values())
        methods = sorted({c.method for c in found.values()})
        figures = {
            "tools": args.tools,
            "judges": args.judges,
            "median_s": round(statistics.median(seconds), 3),
            "each_s": [round(s, 3) for s in seconds],
            "contested": contested,
            "methods": methods,
        }
        print(json.dumps(figures))
        store.close()


if __name__ == "__main__":
    main()
