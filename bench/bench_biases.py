"""Judges' biases planted in simulated panels and recovered from the stored runs, over seeds.

    python bench/bench_biases.py [--seeds 10] [--tools 300] [--pairs 200] [--maker-bias 0.15]
                                 [--resamples 2000] [--out DIR]

Not a timing. Each seed draws the panel of bench/simulated_panel.py (4 personas x 3 members,
the skeptic persona's lean against ship, 2% failed asks) with makers, a same-maker ship bias of
--maker-bias planted on the large member alone, and head-to-head answers on --pairs random pairs
in both orders with the position biases of POSITION_BIAS, and writes it as a run of one store.
Then it reads back, as `panel agreement` and the head-to-head report do:

(a) self-preference per member (`panel.analysis.self_preference` through the store): the median
    estimate and 95% interval over seeds, how many seeds' intervals hold the planted value and
    the effective one (the planted bias after clipping to a probability of at most 1: what
    the estimate should recover), and how many report a bias (an interval that excludes 0);
(b) position bias per judge (`panel.report.head_to_head.judge_bias`): the bias itself (first-
    shown ties minus second-shown ties, `panel.testing.simulate_h2h.position_from`), the
    consistency rate and the first-shown share of the inconsistent pairs, each against what
    the model says it should be on the pairs asked, with how many seeds' intervals hold it.

Prints Markdown tables and a `summary` JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.simulated_panel import planted_panel  # noqa: E402
from panel.analysis.self_preference import run_self_preference  # noqa: E402
from panel.report.head_to_head import Rate, answers_from_store, judge_bias, pair_results  # noqa: E402
from panel.store import Store  # noqa: E402
from panel.testing.simulate import write_simulated_run  # noqa: E402
from panel.testing.simulate_h2h import position_from, simulate_head_to_head  # noqa: E402

#: planted position bias per judge (persona, member); judges left out have none. 0.28 is a judge
#: that names the first-shown tool 64% of the time, the median of a 2026 study of 36 models.
POSITION_BIAS = {
    ("builder", "sim:small-a"): 0.5,
    ("skeptic", "sim:small-a"): 0.7,
    ("futurist", "sim:small-a"): 0.9,
    ("business_analyst", "sim:small-a"): 1.0,
    ("builder", "sim:small-b"): 0.28,
    ("skeptic", "sim:small-b"): -0.3,
}

Interval = tuple[float, float, float]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--tools", type=int, default=300)
    parser.add_argument("--pairs", type=int, default=200, help="head-to-head pairs per seed")
    parser.add_argument("--maker-bias", type=float, default=0.15)
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples of self-preference")
    parser.add_argument("--out", type=Path, default=None, help="the store (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.tools < 2:
        parser.error("--seeds must be at least 1 and --tools at least 2")
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch) / "runs"
        selves: dict[str, list[Interval]] = {}
        judges: dict[tuple[str, str], list[dict[str, Any]]] = {}
        planted: dict[str, tuple[float, float]] = {}
        for seed in range(args.seeds):
            panel = planted_panel(args.tools, seed, f"bias-{seed}", makers=True, maker_bias=args.maker_bias)
            sim = simulate_head_to_head(panel, args.pairs, position_bias=POSITION_BIAS)
            write_simulated_run(out, panel, head_to_head=sim)
            planted = {
                m: (panel.maker_bias.get(m, 0.0), panel.effective_maker_bias(m)) for m in panel.members
            }
            with Store(out, readonly=True) as store:
                found = run_self_preference(store, [panel.run_id], n_resamples=args.resamples, seed=seed)
                rows = store.head_to_heads(panel.run_id)
            for f in found:
                selves.setdefault(f.member, []).append((f.estimate.point, f.estimate.low, f.estimate.high))
            for judge in judge_bias(pair_results(answers_from_store(rows))):
                key = (judge.persona_id, judge.member)
                expected = sim.expected(*key)
                judges.setdefault(key, []).append(
                    {
                        "b": (expected.position, position_from(judge)),
                        "consistency": (expected.consistency, _rate(judge.consistency)),
                        "share": (expected.first_shown_share, _rate(judge.position_bias)),
                        "failed": judge.failed,
                    }
                )
    print(f"seeds {args.seeds}; {args.tools} tools, {args.pairs} head-to-head pairs (both orders) per seed\n")
    summary = {"self_preference": _self_table(selves, planted), "position": _position_table(judges)}
    print("summary " + json.dumps(summary))
    return summary


def _rate(rate: Rate) -> Interval:
    low, high = rate.interval or (float("nan"), float("nan"))
    return (rate.value if rate.value is not None else float("nan"), low, high)


def _holds(truth: float, found: Interval) -> bool:
    return found[1] - 1e-9 <= truth <= found[2] + 1e-9


def _median(found: Sequence[Interval], signed: bool = True) -> str:
    """The medians of the estimates and of each end of their intervals."""
    point, low, high = (statistics.median(x[i] for x in found) for i in range(3))
    if signed:
        return f"{point:+.3f} [{low:+.3f}, {high:+.3f}]"
    return f"{point:.3f} [{low:.3f}, {high:.3f}]"


def _self_table(selves: dict[str, list[Interval]], planted: dict[str, tuple[float, float]]) -> list[Any]:
    print("(a) Self-preference (share of ship verdicts; difference in differences, bootstrap over tools)\n")
    print("| member | planted | effective | median estimate [median 95% interval] "
          "| intervals holding planted | holding effective | reporting a bias (0 outside) |")  # fmt: skip
    print("|---|---:|---:|---|---:|---:|---:|")
    out = []
    for member, found in selves.items():
        nominal, effective = planted[member]
        holds = sum(_holds(nominal, f) for f in found)
        holds_effective = sum(_holds(effective, f) for f in found)
        biased = sum(not _holds(0.0, f) for f in found)
        n = len(found)
        print(f"| {member} | {nominal:+.3f} | {effective:+.3f} | {_median(found)} | {holds}/{n} "
              f"| {holds_effective}/{n} | {biased}/{n} |")  # fmt: skip
        out.append({"member": member, "planted": nominal, "effective": effective, "holds": holds,
                    "holds_effective": holds_effective, "reported_bias": biased, "seeds": n})  # fmt: skip
    print("\nper seed: " + "; ".join(
        f"{m} " + " ".join(f"{f[0]:+.2f}" for f in found) for m, found in selves.items()
    ) + "\n")  # fmt: skip
    return out


def _position_table(judges: dict[tuple[str, str], list[dict[str, Any]]]) -> list[Any]:
    print("(b) Position bias per judge (each reading: median [median 95% interval]; "
          "'held' = seeds whose interval holds what was planted or is expected)\n")  # fmt: skip
    print("| judge | planted b | recovered b | held | b: 0 outside | expected consistency | consistency "
          "| held | expected first-shown share | first-shown share | held |")  # fmt: skip
    print("|---|---:|---|---:|---:|---:|---|---:|---:|---|---:|")
    out = []
    totals = dict.fromkeys(("b", "consistency", "share"), (0, 0))
    for (persona, member), seeds in sorted(judges.items(), key=lambda kv: -kv[1][0]["b"][0]):
        n = len(seeds)
        cols: dict[str, Any] = {}
        for name in ("b", "consistency", "share"):
            read = [s[name] for s in seeds if s[name][1][0] == s[name][1][0]]  # not nan
            held = sum(_holds(expected, found) for expected, found in read)
            totals[name] = (totals[name][0] + held, totals[name][1] + len(read))
            shown = _median([found for _, found in read], signed=name == "b") if read else "none"
            cols[name] = (_nanmedian([s[name][0] for s in seeds]), shown, f"{held}/{len(read)}")
        flagged = sum(not _holds(0.0, s["b"][1]) for s in seeds)
        b, rate, share = cols["b"], cols["consistency"], cols["share"]
        print(f"| {persona} / {member} | {b[0]:+.2f} | {b[1]} | {b[2]} | {flagged}/{n} | {rate[0]:.3f} "
              f"| {rate[1]} | {rate[2]} | {_num(share[0])} | {share[1]} | {share[2]} |")  # fmt: skip
        out.append({"judge": f"{persona} / {member}", "planted": cols["b"][0], "b_held": cols["b"][2],
                    "b_flagged": flagged, "consistency_held": cols["consistency"][2],
                    "share_held": cols["share"][2], "seeds": n})  # fmt: skip
    held = ", ".join(f"{name} {h}/{n}" for name, (h, n) in totals.items())
    print(f"\nintervals holding what was planted or expected, all judges and seeds: {held}\n")
    return out


def _nanmedian(values: Sequence[float]) -> float:
    kept = [v for v in values if v == v]
    return statistics.median(kept) if kept else float("nan")


def _num(x: float, fmt: Callable[[float], str] = "{:.3f}".format) -> str:
    return fmt(x) if x == x else "none"


if __name__ == "__main__":
    main()
