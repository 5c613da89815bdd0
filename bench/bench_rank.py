"""How well `panel rank` recovers a planted order, and how many pairs it asks: the adaptive
pair choice against asking every pair and against random pairs at the same budget.

    python bench/bench_rank.py [--tools 30] [--seeds 5] [--judges 4] [--position 0.4] [--fail 0.05]

For each seed: `--tools` simulated tools with planted Bradley-Terry log-strengths (normal, sd
1.5), `--judges` simulated judges answering each order of a pair from them with `--position`
log-odds for the first-shown tool and `--fail` of their answers failing
(`panel.testing.rank_sim`). Each scheme's judgements are fitted by the command's own model
(`panel.analysis.bradley_terry`); the table gives the Spearman correlation of the recovered
strengths with the planted ones and the distinct pairs asked: medians over the seeds, with
min-max. No model, no store: counts, not wall-clock.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from panel.testing.rank_sim import (  # noqa: E402
    SimulatedJudges,
    Simulation,
    planted_strengths,
    simulate_ranking,
)


def _spearman(sim: Simulation, strengths: dict[str, float]) -> float:
    return float(spearmanr([strengths[t] for t in sim.fit.tools], sim.fit.strength).statistic)


def _cell(values: list[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tools", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--judges", type=int, default=4)
    parser.add_argument("--position", type=float, default=0.4)
    parser.add_argument("--fail", type=float, default=0.05)
    args = parser.parse_args()
    rows: dict[str, dict[str, list[float]]] = {
        s: {"rho": [], "pairs": []} for s in ("adaptive", "random", "all")
    }
    stopped: list[str] = []
    for seed in range(1, args.seeds + 1):
        strengths = planted_strengths(args.tools, seed)

        def judges(seed: int = seed, strengths: dict[str, float] = strengths) -> SimulatedJudges:
            return SimulatedJudges(strengths, args.judges, args.position, args.fail, seed=seed)

        adaptive = simulate_ranking(judges(), "adaptive", seed=seed, resamples=0)
        same = simulate_ranking(judges(), "random", budget=adaptive.pairs, seed=seed, resamples=0)
        every = simulate_ranking(judges(), "all", seed=seed, resamples=0)
        stopped.append(adaptive.stopped)
        for name, sim in (("adaptive", adaptive), ("random", same), ("all", every)):
            rows[name]["rho"].append(_spearman(sim, strengths))
            rows[name]["pairs"].append(sim.pairs)
        each = (f"{n} rho {rows[n]['rho'][-1]:.3f} pairs {rows[n]['pairs'][-1]:.0f}" for n in rows)
        print(f"seed {seed}: {', '.join(each)}; adaptive stopped: {adaptive.stopped}")
    print(
        f"\n{args.tools} tools, {args.judges} judges, position lean {args.position:g}, "
        f"failures {args.fail:g}, {args.seeds} seeds: median (min-max)"
    )
    print(f"{'scheme':<28} {'Spearman':<24} pairs asked")
    labels = {
        "adaptive": "adaptive (panel rank)",
        "random": "random pairs, same budget",
        "all": "all pairs",
    }
    for name, label in labels.items():
        print(f"{label:<28} {_cell(rows[name]['rho'], '.3f'):<24} {_cell(rows[name]['pairs'], '.0f')}")
    print(f"adaptive stopped: {', '.join(sorted(set(stopped)))}")


if __name__ == "__main__":
    main()
