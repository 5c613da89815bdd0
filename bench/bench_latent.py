"""Benchmark of the latent-truth model (panel.analysis.latent) on a simulated catalog.

    python bench/bench_latent.py [--tools 10000] [--judges 12] [--repeats 5]

A panel of ``--judges`` judges with accuracies spread evenly from 0.55 to 0.95 reviews
``--tools`` tools (70% "ship"; 10% of reviews missing). Reported, as the median of
``--repeats`` interleaved runs: the Dawid-Skene fit, ``accuracy_intervals`` with its
default resamples, and, when crowd-kit is installed, crowd-kit's ``DawidSkene`` fit on the
same verdicts (its default 100 iterations) for scale. Also: EM iterations, distinct rows
of verdicts, and the largest gap between a recovered and a planted accuracy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np

from panel.analysis.latent import DEFAULT_RESAMPLES, accuracy_intervals, dawid_skene


def simulate(n: int, accuracies: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = (rng.random(n) < 0.3).astype(np.int64)
    right = rng.random((n, len(accuracies))) < accuracies
    codes = np.where(right, truth[:, None], 1 - truth[:, None])
    codes[rng.random(codes.shape) < 0.1] = -1
    return codes.astype(np.int64)


def crowdkit_fit(codes: np.ndarray) -> Callable[[], object] | None:
    try:
        import pandas as pd
        from crowdkit.aggregation import DawidSkene
    except ImportError:
        return None
    i, j = np.nonzero(codes != -1)
    data = pd.DataFrame({"task": i, "worker": j, "label": codes[i, j]})

    def fit() -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return DawidSkene().fit(data)

    return fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools", type=int, default=10_000)
    parser.add_argument("--judges", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    planted = np.linspace(0.55, 0.95, args.judges)
    codes = simulate(args.tools, planted)
    categories = ["ship", "skip"]
    model = dawid_skene(codes, categories)
    runs: dict[str, Callable[[], object]] = {
        "dawid_skene fit": lambda: dawid_skene(codes, categories),
        f"accuracy_intervals ({DEFAULT_RESAMPLES} resamples)": lambda: accuracy_intervals(
            codes, categories, model
        ),
    }
    theirs = crowdkit_fit(codes)
    if theirs is not None:
        runs["crowd-kit DawidSkene fit"] = theirs
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    print(f"{args.tools} tools x {args.judges} judges x 2 categories, median of {args.repeats}:")
    for name, seconds in times.items():
        print(f"  {name:<40} {statistics.median(seconds):7.3f} s")
    print(f"  EM iterations {model.iterations}, converged {model.converged}; "
          f"{len(np.unique(codes, axis=0))} distinct rows of verdicts")  # fmt: skip
    gap = float(np.abs(model.accuracy - planted).max())
    print(f"  largest |recovered - planted| accuracy: {gap:.4f}")
    medians = {name: round(statistics.median(seconds), 4) for name, seconds in times.items()}
    summary = {"tools": args.tools, "judges": args.judges, "seconds": medians}
    summary |= {"iterations": model.iterations, "accuracy_gap": round(gap, 4)}
    print("summary " + json.dumps(summary))


if __name__ == "__main__":
    main()
