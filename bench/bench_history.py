"""A tool's verdict history in a store with many runs: how long `verdict_history` (the tool
page's list of every run that reviewed the tool, with why its verdict moved) and the whole
tool page take.

    python bench/bench_history.py [--runs 1000] [--tools 200] [--requests 20] [--store DIR]

Fills a store with `--runs` review runs of `--tools` tools x 4 personas x 2 members (rows
written straight into the store's tables, verdicts drawn from a seeded generator; every tenth
run edits a tool's tagline, every hundredth replaces a member's model). Then times, interleaved
request by request: the history's reads (`Store.tool_inputs`, a fixed number of queries that
probe every run by primary key), the same reads one run at a time (three queries a run, the
way to avoid), `verdict_history` (the reads and each change's reasons), and the tool page
through Starlette's TestClient, with and without the history. Prints
the query plan of the reviews query, and the median and spread of each.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from starlette.testclient import TestClient  # noqa: E402

from panel.catalog import Tool  # noqa: E402
from panel.personas import load_personas  # noqa: E402
from panel.report.history import verdict_history  # noqa: E402
from panel.resources import data_dir  # noqa: E402
from panel.store import CellFacts, CellKey, RunInputs, Store  # noqa: E402
from panel.view import pages  # noqa: E402
from panel.view.app import create_app  # noqa: E402

TOOL = "tool-0007"


def _fill(runs_dir: Path, runs: int, tools: int) -> None:
    rng = random.Random(7)
    personas = [p for p in load_personas(data_dir("personas")).values()][:4]
    entries = {
        f"tool-{i:04d}": Tool(
            id=f"tool-{i:04d}", name=f"Tool {i}", category="Developer Tools", tagline="t",
            description="d", pricing={"model": "free"},  # type: ignore[arg-type]
        ).model_dump(mode="json")
        for i in range(tools)
    }  # fmt: skip
    models = ["openai:gpt-a", "anthropic:claude-a"]
    with Store(runs_dir) as store:
        for r in range(runs):
            if r % 10 == 9:
                entries[TOOL] = {**entries[TOOL], "tagline": f"tagline {r}"}
            if r % 100 == 99:
                models[0] = f"openai:gpt-{r}"
            run_id = f"2026{r:06d}-000000-bench"
            config = {
                "members": models,
                "member_specs": [{"spec": m, "name": None, "options": {"depth": "brief"}} for m in models],
                "sampling": {"temperature": 0.3, "top_p": 0.95, "max_tokens": 700, "seed": 1234},
                "prompts": "p1",
                "kind": "review",
            }
            store.create_run(
                run_id, "bench", None, config,
                tools=[(t, Tool.model_validate(d).fingerprint(), d) for t, d in entries.items()],
                personas=[(p.id, "1", p.model_dump(mode="json")) for p in personas],
            )  # fmt: skip
            rows = [
                (run_id, t, p.id, m, *m.split(":", 1), 1, v, json.dumps({"verdict": v}), time.time())
                for t in entries
                for p in personas
                for m in models
                for v in [rng.choice(("ship", "skip"))]
            ]
            with store.transaction() as db:
                db.executemany(
                    """INSERT INTO reviews (run_id, tool_id, persona_id, member, backend, model, asks,
                           verdict, data, valid, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)""",
                    rows,
                )
            store.finish_run(run_id, "done")


def _one_run_at_a_time(store: Store, tool_id: str) -> list[RunInputs]:
    """The history read the slow way: the runs, then three queries for each."""
    found = []
    for run_id, created, status, config in store.db.execute(
        "SELECT id, created_at, status, config FROM runs ORDER BY created_at"
    ):
        run = RunInputs(run_id, created, status, json.loads(config))
        for fp, data in store.db.execute(
            "SELECT fingerprint, data FROM run_tools WHERE run_id = ? AND tool_id = ?", (run_id, tool_id)
        ):
            run.tools[tool_id] = (fp, data)
        for pid, version, data in store.db.execute(
            "SELECT persona_id, version, data FROM run_personas WHERE run_id = ?", (run_id,)
        ):
            run.personas[pid] = (version, data)
        for row in store.db.execute(
            """SELECT tool_id, persona_id, member, repeat, verdict, backend, model, enforced
               FROM reviews WHERE run_id = ? AND tool_id = ?""",
            (run_id, tool_id),
        ):
            run.cells[CellKey(*row[:4])] = CellFacts(*row[4:])
        if run.cells:
            found.append(run)
    return found


def _without_history(step: Callable[[], object]) -> object:
    """The tool page as it was before it listed the history (the same page, an empty one)."""
    saved = pages.verdict_history
    pages.verdict_history = lambda store, tool_id: []
    try:
        return step()
    finally:
        pages.verdict_history = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--tools", type=int, default=200)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--store", type=Path, default=None, help="keep the store here (default: a temp dir)")
    args = parser.parse_args()
    runs_dir = args.store or Path(tempfile.mkdtemp(prefix="bench-history-")) / "runs"
    if not (runs_dir / "panel.db").exists():
        started = time.perf_counter()
        _fill(runs_dir, args.runs, args.tools)
        took = time.perf_counter() - started
        print(f"filled {runs_dir}: {args.runs} runs x {args.tools * 8} reviews in {took:.1f} s")
    last_run = f"2026{args.runs - 1:06d}-000000-bench"
    with Store(runs_dir, readonly=True) as store:
        plan = store.db.execute(
            """EXPLAIN QUERY PLAN SELECT rv.run_id FROM runs r CROSS JOIN reviews rv
               ON rv.run_id = r.id AND rv.tool_id = ?""",
            (TOOL,),
        ).fetchall()
        print("reviews query plan:", "; ".join(str(row[-1]) for row in plan))
        history = verdict_history(store, TOOL)
        changed = sum(1 for h in history if h.changed)
        print(f"{TOOL}: {len(history)} runs in its history, {changed} with a changed verdict")
        slow = _one_run_at_a_time(store, TOOL)
        assert [r.run_id for r in slow][::-1] == [h.run_id for h in history]
        app = create_app(runs_dir, token=None, port=8765)
        with TestClient(app, base_url="http://127.0.0.1:8765") as client:
            assert client.get(f"/runs/{last_run}/tools/{TOOL}").status_code == 200
            steps: dict[str, Callable[[], object]] = {
                "reads: tool_inputs": lambda: store.tool_inputs(TOOL),
                "reads: run by run": lambda: _one_run_at_a_time(store, TOOL),
                "verdict_history": lambda: verdict_history(store, TOOL),
                "tool page": lambda: client.get(f"/runs/{last_run}/tools/{TOOL}"),
                "page, no history": lambda: _without_history(
                    lambda: client.get(f"/runs/{last_run}/tools/{TOOL}")
                ),
            }
            timings: dict[str, list[float]] = {name: [] for name in steps}
            for _ in range(args.requests):
                for name, step in steps.items():
                    started = time.perf_counter()
                    step()
                    timings[name].append(time.perf_counter() - started)
    for name, values in timings.items():
        values.sort()
        print(
            f"{name:>18}: median {statistics.median(values) * 1000:8.1f} ms"
            f"  (min {values[0] * 1000:.1f}, max {values[-1] * 1000:.1f}, n={len(values)})"
        )
    ratio = statistics.median(timings["reads: run by run"]) / statistics.median(timings["reads: tool_inputs"])
    print(f"reads run by run / tool_inputs (medians): {ratio:.1f}x")
    medians = {name: round(statistics.median(values) * 1000, 1) for name, values in timings.items()}
    print("summary " + json.dumps({"runs": args.runs, "tools": args.tools, "median_ms": medians}))


if __name__ == "__main__":
    main()
