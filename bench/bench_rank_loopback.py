"""`panel rank` on one category of `--tools` generated tools through the loopback provider: the
pairs it asks of the N(N-1)/2 possible, the asks, its wall time, why it stopped, the cost, the
Spearman correlation of the board with the strengths the provider planted
(`panel.backends.planted`), and the board's first lines.

    python bench/bench_rank_loopback.py [--tools 200] [--personas 4] [--budget '...'] [--keep DIR]

The catalog is the catalog benchmark's generated tools (`bench/bench_catalog.py`), every third
one in "Developer Tools": `--tools` of them in the ranked category, twice as many in others.
The command runs as a user runs it, in its own process, with one `openai:gpt-4.1-mini` member
pointed at the loopback provider (served from this process) and the personas given.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_catalog import write_catalog  # noqa: E402
from panel.backends.planted import planted_strength  # noqa: E402
from panel.testing.fake_provider import FakeProvider  # noqa: E402

PERSONAS = ("builder", "skeptic", "futurist", "business_analyst")
CATEGORY = "Developer Tools"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools", type=int, default=200, help="tools in the ranked category")
    parser.add_argument("--personas", type=int, default=4, choices=range(1, 5))
    parser.add_argument("--budget", help="passed to panel rank --budget")
    parser.add_argument("--keep", type=Path, help="the runs folder to keep (default: a temporary one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        catalog = write_catalog(work / "catalog.yaml", 3 * args.tools)
        out = args.keep or work / "runs"
        personas = [x for p in PERSONAS[: args.personas] for x in ("-p", p)]
        command = [
            sys.executable, "-m", "panel", "rank", "--category", CATEGORY, "--catalog", str(catalog),
            "-b", "openai:gpt-4.1-mini", *personas, "--out", str(out), "--progress", "quiet",
            *(["--budget", args.budget] if args.budget else []),
        ]  # fmt: skip
        with FakeProvider() as fake:
            env = {**os.environ, "OPENAI_BASE_URL": fake.base_url("openai"), "OPENAI_API_KEY": "bench-key"}
            env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
            started = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            seconds = time.perf_counter() - started
            served = fake.stats()["requests"]
        if done.returncode != 0:
            sys.exit(f"panel rank exited {done.returncode}:\n{done.stderr[-2000:]}")
        (board_path,) = out.glob("*/leaderboard.json")
        board = json.loads(board_path.read_text(encoding="utf-8"))

    tools = board["tools"]
    rho = spearmanr([t["strength"] for t in tools], [planted_strength(t["tool_id"]) for t in tools])
    judged = board["judgements"]
    outcomes = f"{judged['consistent']} / {judged['ties']} / {judged['failed']}"
    print(f"panel rank --category {CATEGORY!r}: {len(tools)} tools, {args.personas} personas x 1 member")
    print("| figure | value |\n|---|---|")
    for name, value in (
        ("pairs asked", f"{board['pairs_asked']} of {board['pairs_possible']}"),
        ("asks (stored / served by the loopback)", f"{board['asks']} / {served}"),
        ("judgements consistent / ties / failed", outcomes),
        ("stopped", f"{board['stopped']} (budget {board['budget']})"),
        ("wall time, s", f"{seconds:.1f}"),
        ("cost, $", f"{board['cost_usd']}"),
        ("Spearman with the planted strengths", f"{rho.statistic:.3f}"),
    ):  # fmt: skip
        print(f"| {name} | {value} |")
    print("\nThe board's first lines:")
    for t in tools[:5]:
        interval = "" if t["low"] is None else f" [{t['low']:+.2f}, {t['high']:+.2f}]"
        ranks = "" if t["rank_low"] is None else f" rank {t['rank_low']}-{t['rank_high']}"
        print(
            f"{t['rank']:>3}. {t['name']} {t['strength']:+.2f}{interval}{ranks} "
            f"{t['wins']}W {t['losses']}L {t['ties']}T {t['failed']}F"
        )


if __name__ == "__main__":
    main()
