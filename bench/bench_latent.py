"""Benchmark of the latent-truth model (panel.analysis.latent) on a simulated catalog.

    python bench/bench_latent.py [--tools 10000] [--judges 12] [--repeats 5]
    python bench/bench_latent.py --intervals [--judges 12] [--repeats 3]

With ``--intervals``: ``posterior_intervals`` (each verdict's confidence interval) on 1,000
and 10,000 tools, judges planted at 0.6-0.9 and near chance (0.50-0.55), as it runs now
against the refits it ran before every fit (``before``: every resample refitted, whether
the point fit converged or not), interleaved; per panel the medians, their ratio, the EM
iterations of the refits (median and largest), and the largest change of an interval end.

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

from panel.analysis.bootstrap import resample_weights
from panel.analysis.latent import (
    DEFAULT_RESAMPLES,
    LatentModel,
    _e_step,
    _em,
    _rows,
    accuracy_intervals,
    dawid_skene,
)
from panel.analysis.latent_posteriors import posterior_intervals


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


def refitted(codes: np.ndarray, model: LatentModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The intervals as every fit was bootstrapped before (all refits, max_iter 200), and
    each refit's EM iterations."""
    rows = _rows(codes, model.confusion.shape[1])
    start, _ = _e_step(rows, model.confusion[None], model.priors[None])
    drawn, iterations = [], []
    for weights in resample_weights(len(codes), 200, 0):
        fit = _em(rows, rows.per_row(weights), start[:, :, 0], model.smoothing, 200, 1e-4)
        drawn.append(fit.posterior[:, 0, :])
        iterations.append(fit.iterations)
    low, high = np.quantile(np.concatenate(drawn, axis=1), [0.025, 0.975], axis=1)
    return low[rows.inverse], high[rows.inverse], np.concatenate(iterations)


def intervals(judges: int, repeats: int) -> None:
    for name, (lo, hi) in {"planted 0.6-0.9": (0.6, 0.9), "near chance 0.50-0.55": (0.5, 0.55)}.items():
        for n in (1_000, 10_000):
            codes = simulate(n, np.linspace(lo, hi, judges))
            model = dawid_skene(codes, ["ship", "skip"])
            times: dict[str, list[float]] = {"before": [], "after": []}
            for _ in range(repeats):
                start = time.perf_counter()
                old_low, old_high, iterations = refitted(codes, model)
                times["before"].append(time.perf_counter() - start)
                start = time.perf_counter()
                low, high = posterior_intervals(codes, model, 0)
                times["after"].append(time.perf_counter() - start)
            before, after = (statistics.median(times[k]) for k in ("before", "after"))
            moved = float(max(np.abs(low - old_low).max(), np.abs(high - old_high).max()))
            figures = {
                "panel": name, "tools": n, "judges": judges, "fit_converged": model.converged,
                "fit_iterations": model.iterations, "before_s": round(before, 3), "after_s": round(after, 3),
                "ratio": round(before / max(after, 1e-9), 1),
                "refit_iterations_median": float(np.median(iterations)),
                "refit_iterations_max": int(iterations.max()),
                "width_median_before": round(float(np.median(old_high - old_low)), 3),
                "width_median_after": round(float(np.median(high - low)), 3),
                "largest_end_change": round(moved, 4),
            }  # fmt: skip
            print(json.dumps(figures), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools", type=int, default=10_000)
    parser.add_argument("--judges", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--intervals", action="store_true", help="time posterior_intervals (see above)")
    args = parser.parse_args()
    if args.intervals:
        intervals(args.judges, args.repeats)
        return
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
