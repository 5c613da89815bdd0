"""Page load time of `panel view`: the runs list of a store with 1,000 runs, one comparison and
its agreement page.

    python bench/bench_view.py [--runs 1000] [--requests 20] [--store DIR] [--no-browser]

Fills a store with `--runs` compare runs made by the fake backend (two tools of the sample
catalog, four personas, two members: 16 reviews each), then times each page `--requests`
times, the pages interleaved request by request, two ways: in-process through Starlette's
TestClient (the server's own work: queries, record, templates) and over loopback HTTP from a
real uvicorn (adds the socket and the HTTP parsing). The agreement page (2,000 bootstrap
resamples, as `panel agreement` does) gets `--agreement-requests` of its own. Then, where
Debian's chromium and chromedriver are installed, headless chromium loads the runs list and the
comparison `--requests` times each, interleaved, and reads the Navigation Timing entry: time to
the response's first byte, and to the load event (parsing, stylesheets, layout). Prints the
median and the spread of each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from panel.run.plan import RunOptions, plan_compare, run_plan  # noqa: E402
from panel.store import Store  # noqa: E402
from panel.view.app import create_app  # noqa: E402
from tests import browser  # noqa: E402

CATALOG = ROOT / "examples" / "catalog.yaml"
PAIRS = [
    ("ollama", "vllm"),
    ("llama-cpp", "ollama"),
    ("smolvlm2-2b", "moondream2"),
    ("tesseract", "paligemma"),
]


def fill(runs: Path, count: int) -> tuple[str, float]:
    """`count` compare runs; the id of the last one and the seconds it took."""
    plans = [plan_compare(list(p), catalog=CATALOG, backends=["fake", "fake:other"]) for p in PAIRS]
    started = time.perf_counter()
    last = ""
    with Store(runs) as store:
        have = len(store.list_runs(count))
        for i in range(have, count):
            options = RunOptions(kind="compare", use_cache=False)
            last, _ = asyncio.run(run_plan(plans[i % len(plans)], store, "panel compare", options=options))
        last = last or store.list_runs(1)[0][0].id
    return last, time.perf_counter() - started


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _time(get: Callable[[str], int], paths: dict[str, str], requests: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in paths}
    for name, path in paths.items():  # one warm-up each: templates compiled, caches filled
        assert get(path) == 200, (name, path)
    for _ in range(requests):
        for name, path in paths.items():
            started = time.perf_counter()
            status = get(path)
            times[name].append(time.perf_counter() - started)
            assert status == 200, (name, status)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--agreement-requests", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true", help="Skip the timings in chromium.")
    parser.add_argument(
        "--store", type=Path, help="Keep the store in this folder (default: a temporary one)."
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        runs = args.store or Path(tmp) / "runs"
        run_id, took = fill(runs, args.runs)
        print(f"store: {args.runs} runs in {runs} (filled in {took:.1f} s)")
        paths = {
            "runs list, page 1 (100 rows)": "/",
            "runs list, last page": "/?page=1000",
            "runs list, filtered by tool": "/?tool=paligemma",
            "comparison (2 tools x 4 personas x 2 members)": f"/runs/{run_id}",
        }
        port = _free_port()
        app = create_app(runs, token=None, port=port)
        with TestClient(app, base_url=f"http://127.0.0.1:{port}") as client:
            in_process = _time(lambda p: client.get(p).status_code, paths, args.requests)

        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)

        def fetch(path: str) -> int:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}") as response:
                response.read()
                return int(response.status)

        agreement = {"agreement page (2,000 resamples)": f"/runs/{run_id}/agreement"}
        try:
            over_http = _time(fetch, paths, args.requests)
            over_http.update(_time(fetch, agreement, args.agreement_requests))
        finally:
            server.should_exit = True
            thread.join()
        with TestClient(app, base_url=f"http://127.0.0.1:{port}") as client:
            in_process.update(_time(lambda p: client.get(p).status_code, agreement, args.agreement_requests))
        paths.update(agreement)
        in_browser = {} if args.no_browser else _browser_times(runs, run_id, args.requests, Path(tmp))

    summary: dict[str, object] = {"runs": args.runs, "requests": args.requests}
    print(
        f"median (min-max) of {args.requests} requests ({args.agreement_requests} for the agreement page), ms"
    )
    print(f"{'page':<48} {'TestClient':>22} {'uvicorn, loopback':>22}")
    for name in paths:
        cells = []
        for times in (in_process[name], over_http[name]):
            ms = [t * 1000 for t in times]
            cells.append(f"{statistics.median(ms):.1f} ({min(ms):.1f}-{max(ms):.1f})")
        print(f"{name:<48} {cells[0]:>22} {cells[1]:>22}")
        key = name.split(" (")[0].replace(", ", "_").replace(" ", "_")
        summary[f"{key}_ms_median"] = round(statistics.median(in_process[name]) * 1000, 1)
        summary[f"{key}_http_ms_median"] = round(statistics.median(over_http[name]) * 1000, 1)
    if in_browser:
        print(f"in headless chromium, Navigation Timing, median (min-max) of {args.requests} loads, ms")
        for name, times in in_browser.items():
            ms = sorted(times)
            print(f"{name:<48} {statistics.median(ms):>10.1f} ({min(ms):.1f}-{max(ms):.1f})")
            key = re.sub(r"\W+", "_", re.sub(r" \(.*?\)", "", name)).strip("_")
            summary[f"browser_{key}_ms_median"] = round(statistics.median(ms), 1)
    elif not args.no_browser:
        print(f"no browser timings: {browser.missing()}")
    print("summary " + json.dumps(summary))


#: what Navigation Timing gives, ms from the navigation's start: first byte, and the load event
_NAVIGATION = """const e = performance.getEntriesByType('navigation')[0];
return [e.responseStart - e.startTime, e.loadEventEnd - e.startTime];"""


def _browser_times(runs: Path, run_id: str, loads: int, tmp: Path) -> dict[str, list[float]]:
    """Each page loaded `loads` times in headless chromium, interleaved; first byte and load, ms."""
    if browser.missing() is not None:
        return {}
    from selenium.webdriver.support.ui import WebDriverWait

    pages = {"runs list, page 1 (100 rows)": "/", "comparison": f"/runs/{run_id}"}
    times: dict[str, list[float]] = {}
    with browser.serve(create_app(runs, token=None)) as base, browser.chrome(tmp / "chrome") as driver:

        def load(path: str) -> list[float]:
            driver.get(base + path)
            WebDriverWait(driver, 60).until(lambda d: d.execute_script(_NAVIGATION)[1] > 0)
            return [float(v) for v in driver.execute_script(_NAVIGATION)]

        for path in pages.values():  # warm-up
            load(path)
        for _ in range(loads):
            for name, path in pages.items():
                first_byte, loaded = load(path)
                times.setdefault(f"{name}: first byte", []).append(first_byte)
                times.setdefault(f"{name}: load event", []).append(loaded)
    return times


if __name__ == "__main__":
    main()
