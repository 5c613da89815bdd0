"""Self-preference at catalog scale: `panel.analysis.self_preference` on `--tools` tools x
`--members` members of four makers (random verdicts), `--repeats` times in one process.

    python bench/bench_self_preference.py [--tools 10000] [--members 12] [--resamples 200] [--repeats 3]

Prints the median wall time. No model, no store.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from panel.analysis.self_preference import self_preference

MAKERS = ("OpenAI", "Anthropic", "Mistral AI", "Meta")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools", type=int, default=10000)
    parser.add_argument("--members", type=int, default=12)
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(0)
    members = {f"m{i}": MAKERS[i % len(MAKERS)] for i in range(args.members)}
    tools = {f"t{i}": MAKERS[i % len(MAKERS)] for i in range(args.tools)}
    rows = [
        {"tool": t, "member": m, "repeat": 0, "valid": True, "verdict": rng.choice(("ship", "skip"))}
        for t in tools
        for m in members
    ]
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        self_preference(rows, tools, members, n_resamples=args.resamples)
        times.append(time.perf_counter() - started)
    print(
        f"self_preference, {args.tools} tools x {args.members} members, {args.resamples} resamples: "
        f"median {statistics.median(times):.2f} s of {args.repeats}"
    )


if __name__ == "__main__":
    main()
