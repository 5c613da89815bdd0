"""Benchmark of the editors' labels (panel.store.labels) on a simulated catalog run.

    python bench/bench_labels.py [--tools 2000] [--repeats 3]

A simulated run of ``--tools`` tools x 2 personas x 2 members is written into a fresh store
for each repeat. Reported, as medians of ``--repeats``: "Approve all" of the whole run in one
transaction (what the app's route does) with the label each approval writes, beside the same
approvals with the label write switched off, and their ratio; then reading the labels in
force (``labels_in_force``) and a later run's carried reliabilities (``judge_reliabilities``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from panel.analysis.editor_reliability import judge_reliabilities
from panel.store import Store
from panel.store.labels import Labels
from panel.testing.simulate import simulate_panel, write_simulated_run


def _approve_all(folder: Path, tools: int, labelled: bool) -> tuple[float, Store]:
    panel = simulate_panel(tools, ("builder", "skeptic"), ("sim:a", "sim:b"), run_id="bench", seed=1)
    run = write_simulated_run(folder, panel)
    store = Store(folder)
    keys = [r.key for r in store.reviews(run) if r.valid]
    original = Labels._label_review
    if not labelled:
        Labels._label_review = lambda *args, **kwargs: None  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        with store.transaction():
            for key in keys:
                store.approve(run, key, True, editor="bench")
        took = time.perf_counter() - start
    finally:
        Labels._label_review = original  # type: ignore[method-assign]
    return took, store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with_labels, without, reading, carried = [], [], [], []
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            took, store = _approve_all(Path(tmp) / "off", args.tools, labelled=False)
            store.close()
            without.append(took)
            took, store = _approve_all(Path(tmp) / "on", args.tools, labelled=True)
            with_labels.append(took)
            start = time.perf_counter()
            found = store.labels_in_force("bench")
            reading.append(time.perf_counter() - start)
            start = time.perf_counter()
            judge_reliabilities(store, "bench", ["ship", "skip"])
            carried.append(time.perf_counter() - start)
            store.close()
        print(f"repeat {i + 1}: {len(found)} tool labels in force")
    on, off = statistics.median(with_labels), statistics.median(without)
    reviews = args.tools * 4
    print(f"approve all, {reviews} reviews: {on:.2f} s with labels, {off:.2f} s without ({on / off:.2f}x)")
    print(f"labels_in_force: {statistics.median(reading):.3f} s")
    print(f"judge_reliabilities (no earlier run): {statistics.median(carried):.3f} s")
    summary = {
        "reviews": reviews,
        "approve_all_s": round(on, 3),
        "approve_all_without_labels_s": round(off, 3),
        "ratio": round(on / off, 2),
        "labels_in_force_s": round(statistics.median(reading), 3),
        "judge_reliabilities_s": round(statistics.median(carried), 3),
    }
    print("summary " + json.dumps(summary))


if __name__ == "__main__":
    main()
