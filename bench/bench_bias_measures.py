"""Not a timing: the Biases section's recoveries on planted runs, over seeds.

For each seed, two runs written by `panel.testing.bias_runs` (a planted entry-length, review-length
and first-shown effect; and none of them), and the three measures of each with their intervals:
the planted size beside the median recovered estimate and interval, how often the interval holds
the planted size (where the measure reads it in the planted unit), how often the planted effect's
interval excludes 0 (power) and how often the null's holds 0 (coverage). Prints a Markdown table
and a `summary` JSON line.

    .venv/bin/python bench/bench_bias_measures.py [--seeds 20] [--tools 60] [--resamples 500]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from panel.analysis.bias_length import entry_length, review_length
from panel.analysis.bias_order import order_bias, shown_pairs
from panel.store import Store
from panel.testing.bias_runs import Planted, write_run

KEYS = ("entry_length", "review_length", "rebuttal_order")


def _measure(planted: Planted, resamples: int) -> dict[str, tuple[float, float, float]]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        run = write_run(out, planted)
        with Store(out, readonly=True) as store:
            shown = shown_pairs(store, [run])
            found = [
                entry_length(store, [run], n_resamples=resamples),
                review_length(shown, n_resamples=resamples),
                order_bias(shown, n_resamples=resamples),
            ]
    return {m.key: (m.estimate.point, m.estimate.low, m.estimate.high) for m in found if m.estimate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--tools", type=int, default=60)
    parser.add_argument("--resamples", type=int, default=500)
    parser.add_argument("--entry-effect", type=float, default=1.0, help="log-odds of ship per doubling")
    parser.add_argument("--first-effect", type=float, default=0.5, help="added chance of changing")
    parser.add_argument("--length-effect", type=float, default=0.3, help="added chance per doubling")
    args = parser.parse_args()
    planted = {"planted": [], "null": []}  # type: dict[str, list[dict[str, tuple[float, float, float]]]]
    for seed in range(args.seeds):
        effect = Planted(
            tools=args.tools, entry_effect=args.entry_effect, first_effect=args.first_effect,
            length_effect=args.length_effect, seed=seed,
        )  # fmt: skip
        planted["planted"].append(_measure(effect, args.resamples))
        planted["null"].append(_measure(Planted(tools=args.tools, seed=seed), args.resamples))
    # the planted size in the measure's own unit; the entry's is planted in log-odds of ship, read
    # as a share of ship verdicts, so it is shown but not compared
    sizes = {"entry_length": None, "review_length": args.length_effect, "rebuttal_order": args.first_effect}
    summary: dict[str, dict[str, float | None]] = {}
    print(f"{args.seeds} seeds, {args.tools} tools, {args.resamples} resamples\n")
    print(
        "| measure | planted | recovered: median estimate (median interval) | interval holds planted "
        "| excludes 0 | null: median estimate | holds 0 |"
    )
    print("|---|---|---|---|---|---|---|")
    for key in KEYS:
        hit = [r[key] for r in planted["planted"] if key in r]
        null = [r[key] for r in planted["null"] if key in r]
        power = sum(low > 0 for _, low, _ in hit) / len(hit)
        coverage = sum(low <= 0 <= high for _, low, high in null) / len(null)
        med_hit = statistics.median(p for p, _, _ in hit)
        med_null = statistics.median(p for p, _, _ in null)
        size = sizes[key]
        planted_said = f"{size:+.3f}" if size is not None else f"{args.entry_effect:+.3f} log-odds"
        low = statistics.median(lo for _, lo, _ in hit)
        high = statistics.median(hi for _, _, hi in hit)
        holds = sum(lo <= size <= hi for _, lo, hi in hit) / len(hit) if size is not None else None
        print(
            f"| {key} | {planted_said} | {med_hit:+.3f} ({low:+.3f} to {high:+.3f}) | "
            f"{'-' if holds is None else f'{holds:.0%}'} | {power:.0%} | {med_null:+.3f} | {coverage:.0%} |"
        )
        summary[key] = {
            "planted": size,
            "holds_planted": holds,
            "power": power,
            "coverage": coverage,
            "median_planted": med_hit,
            "median_null": med_null,
        }
    print("\nsummary " + json.dumps(summary))


if __name__ == "__main__":
    main()
