"""Page time of the app's Triage page (`/runs/{id}/triage`) on a large review run.

    python bench/bench_triage_page.py [--tools 10000] [--judges 12] [--labels 300] [--requests 20]

A store holds a done review run of ``--tools`` tools by ``--judges`` judges (the simulated
run of bench/bench_confidence.py) and an earlier run of the same tools; an editor approves
one review of ``--labels`` tools (each approval is a label). Then, through Starlette's
TestClient (the server's own work: the store, the ranking, the labels, the template):

* the first request, which fits the run's confidence (cached after it, until the run changes);
* the first request deciding against the editors' labels (`?reference=editors`: the rule fits
  the confidence again with the labelled tools left out, then is kept until the run or the
  labels change);
* ``--requests`` requests of each page below, interleaved request by request: the first page,
  a middle one, the last, the first page of contested tools only, a decided page whose target
  is 0.9 nudged past the third decimal (0.90000001, 0.90000002, ...: the same rule), and the
  first page of the run's own page (catalog order, paged the same way). Each figure is the
  median with min-max; the pieces of one page (``triage_rows``, ``labels_in_force``) are timed
  the same way.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from bench_confidence import fill  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from panel.cli.triage import triage_rows  # noqa: E402
from panel.store import Store  # noqa: E402
from panel.view.app import create_app  # noqa: E402
from panel.view.triage import PER_PAGE  # noqa: E402

#: a decided page whose target differs from 0.9 past the third decimal, new at each request
NUDGED = "triage decided (editors), target 0.9 nudged past 3 decimals, page 1"


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _figure(seconds: list[float]) -> str:
    ms = [1000 * s for s in seconds]
    return f"{statistics.median(ms):.0f} ms ({min(ms):.0f}-{max(ms):.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tools", type=int, default=10_000)
    parser.add_argument("--judges", type=int, default=12)
    parser.add_argument("--labels", type=int, default=300)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        runs = Path(root)
        with Store(runs) as store:
            fill(store, "earlier", args.tools, args.judges, 1)
            time.sleep(0.01)
            fill(store, "now", args.tools, args.judges, 2)
            valid = {k.tool_id: k for k in store.verdicts_in_force("now") if k.repeat == 0}
            for tool in list(valid)[: args.labels]:
                store.approve("now", valid[tool], editor="Ana")
        last = -(-args.tools // PER_PAGE)
        pages = {
            "triage, page 1": "/runs/now/triage",
            f"triage, page {last // 2}": f"/runs/now/triage?page={last // 2}",
            f"triage, page {last} (last)": f"/runs/now/triage?page={last}",
            "triage, contested only, page 1": "/runs/now/triage?contested=1",
            "triage decided (editors), page 1": "/runs/now/triage?reference=editors",
            f"triage decided (editors), page {last // 2}": (
                f"/runs/now/triage?reference=editors&page={last // 2}"
            ),
            "triage, audit sample of 50": "/runs/now/triage?audit=50&seed=1",
            NUDGED: "",  # 0.90000001, 0.90000002, ...: the rule of 0.9 each time
            "the run's own page, page 1": "/runs/now",
        }
        with TestClient(create_app(runs, token=None, port=8765), base_url="http://127.0.0.1:8765") as client:
            first = _timed(lambda: client.get("/runs/now/triage").raise_for_status())
            first_decided = _timed(
                lambda: client.get("/runs/now/triage?reference=editors").raise_for_status()
            )
            seconds: dict[str, list[float]] = {name: [] for name in pages}
            with Store(runs, readonly=True) as store:
                pieces: dict[str, list[float]] = {"triage_rows (cached fit)": [], "labels_in_force": []}
                for _ in range(args.requests):
                    for name, path in pages.items():
                        if name == NUDGED:
                            nudge = len(seconds[name]) + 1
                            path = f"/runs/now/triage?reference=editors&target=0.9{nudge:07d}"
                        seconds[name].append(_timed(lambda p=path: client.get(p).raise_for_status()))
                    pieces["triage_rows (cached fit)"].append(_timed(lambda: triage_rows(store, "now")))
                    pieces["labels_in_force"].append(_timed(lambda: store.labels_in_force("now")))
                size = len(client.get("/runs/now/triage").content), len(client.get("/runs/now").content)
    print(f"{args.tools} tools x {args.judges} judges, {args.labels} labelled, {PER_PAGE} tools a page, "
          f"{args.requests} requests each (median, min-max)\n")  # fmt: skip
    print("| request | time |\n|---|---|")
    print(f"| first triage page (fits the confidence) | {1000 * first:.0f} ms |")
    print(f"| first decided page (applies the rule) | {1000 * first_decided:.0f} ms |")
    for name, found in {**seconds, **pieces}.items():
        print(f"| {name} | {_figure(found)} |")
    print(f"\nbytes: a triage page {size[0]:,}, a page of the run's own page {size[1]:,}")
    medians = {
        name: round(1000 * statistics.median(found), 1) for name, found in {**seconds, **pieces}.items()
    }
    summary = {
        "tools": args.tools,
        "first_ms": round(1000 * first, 1),
        "first_decided_ms": round(1000 * first_decided, 1),
        "median_ms": medians,
        "bytes": size,
    }
    print("summary " + json.dumps(summary))


if __name__ == "__main__":
    main()
