"""Benchmark of each verdict's confidence (panel.report.confidence) on simulated review runs.

    python bench/bench_confidence.py [--tools 10000] [--judges 12] [--earlier-runs 0,8,32]
        [--repeats 3] [--edits 3] [--before DIR]

A store holds, for each count N of ``--earlier-runs``, a run "now-N" of ``--tools`` tools
reviewed by ``--judges`` judges (the shipped personas on ``judges / personas`` members;
accuracies spread from 0.55 to 0.95, 70% "ship" tools, 10% of reviews failed) started after
N earlier done runs of the same tools (each "now-N" is left stopped, so it is no later run's
previous one). Reported, each as the
median of ``--repeats`` measurements taken in turn with the code before and after:

* ``previous_runs``: the store's query against the former one (every earlier done run's
  reviews of the run's tools, read in one query), in this process;
* ``run_confidence``: the whole (reading the store, the judges' fit and the bootstrap of every
  tool's interval, the previous runs' verdicts), in a fresh process;
* ``show_tool``: ``panel show now-N --tool t5``, the command's wall time;
* ``page_after_edit``: the app's tool page (Starlette's TestClient) after an editor's edit of
  one review's prose, and of one verdict (the page before it already shown), each edit timed.

``--before DIR`` is a source tree of the code before (``git archive main | tar -x -C DIR``):
without it only this tree is measured. Needs the analysis and view extras.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from panel.personas import load_personas
from panel.resources import data_dir
from panel.store import CellKey, Store

_OLD_PREVIOUS = """SELECT rv.tool_id, rv.run_id FROM reviews rv JOIN runs r ON r.id = rv.run_id
   WHERE r.status = 'done' AND rv.repeat = 0 AND rv.run_id != ?
     AND r.created_at < (SELECT created_at FROM runs WHERE id = ?)
     AND rv.tool_id IN (SELECT tool_id FROM run_tools WHERE run_id = ?)
   GROUP BY rv.tool_id, rv.run_id ORDER BY r.created_at DESC, r.rowid DESC"""


def _personas() -> list[dict[str, object]]:
    return [p.model_dump(mode="json") for p in load_personas(data_dir("personas")).values()]


def fill(store: Store, run_id: str, n: int, judges: int, seed: int) -> None:
    """A run of ``n`` tools and ``judges`` judges: the shipped personas, each on
    ``judges / personas`` members."""
    personas = _personas()
    members = [f"m{k}:x" for k in range(max(1, judges // len(personas)))]
    cells = [(str(p["id"]), m) for m in members for p in personas]
    rng = np.random.default_rng(seed)
    accuracies = np.linspace(0.55, 0.95, len(cells))
    truth = rng.random(n) < 0.7
    right = rng.random((n, len(cells))) < accuracies
    ship = np.where(right, truth[:, None], ~truth[:, None])
    failed = rng.random((n, len(cells))) < 0.1
    tools = [f"t{i}" for i in range(n)]
    _plan(store, run_id, tools, personas, members)
    store.group_commits(True)
    for i, t in enumerate(tools):
        for j, (p, m) in enumerate(cells):
            verdict = None if failed[i, j] else ("ship" if ship[i, j] else "skip")
            data = (
                {"answers": {}, "review": "r", "verdict_note": "n", "verdict": verdict} if verdict else None
            )
            store.save_review(
                run_id, CellKey(t, p, m), m.split(":")[0], "x", data=data,
                error=None if verdict else "failed", raw_reply=None, request_id=None, asks=1,
            )  # fmt: skip
    store.group_commits(False)


def _plan(
    store: Store, run_id: str, tools: list[str], personas: list[dict[str, object]], members: list[str]
) -> None:
    facts = {"category": "Developer Tools", "tagline": "t", "description": "d", "pricing": {"model": "free"}}
    store.create_run(
        run_id,
        "bench",
        None,
        {"members": members},
        tools=[(t, "fp", {"id": t, "name": t, **facts}) for t in tools],
        personas=[(str(p["id"]), "v", p) for p in personas],
    )


def copy_run(store: Store, template: str, run_id: str, status: str) -> None:
    """A run with the template's tools, personas and reviews, finished with ``status``."""
    tools = [str(t["id"]) for t in store.run_tools(template)]
    run = store.get_run(template)
    assert run is not None
    _plan(store, run_id, tools, store.run_personas(template), list(run.config["members"]))
    columns = [
        str(c[1]) for c in store.db.execute("PRAGMA table_info(reviews)") if c[1] not in ("id", "run_id")
    ]
    names = ", ".join(columns)
    with store.transaction() as db:
        db.execute(
            f"INSERT INTO reviews (run_id, {names}) SELECT ?, {names} FROM reviews WHERE run_id = ?",
            (run_id, template),
        )
    store.finish_run(run_id, status)
    time.sleep(0.002)  # runs are ordered by when they were created


def build(root: Path, tools: int, judges: int, counts: list[int]) -> None:
    with Store(root) as store:
        fill(store, "template-earlier", tools, judges, 1)
        store.finish_run("template-earlier", "stopped")
        fill(store, "template-now", tools, judges, 2)
        store.finish_run("template-now", "stopped")
        made = 0
        for n in sorted(counts):
            while made < n:
                copy_run(store, "template-earlier", f"earlier-{made}", "done")
                made += 1
            copy_run(store, "template-now", f"now-{n}", "stopped")


def worker(root: Path, op: str, run_id: str, edits: int) -> dict[str, object]:
    """One measurement in this process (a fresh one: nothing remembered from another)."""
    if op == "confidence":
        from panel.report.confidence import run_confidence

        with Store(root, readonly=True) as store:
            start = time.perf_counter()
            found = run_confidence(store, run_id)
            seconds = time.perf_counter() - start
        return {"s": seconds, "contested": sum(c.contested for c in found.values())}
    from starlette.testclient import TestClient

    from panel.view.app import create_app

    out: dict[str, object] = {}
    with TestClient(create_app(root, token=None, port=8765), base_url="http://127.0.0.1:8765") as client:
        url = f"/runs/{run_id}/tools/t5"
        start = time.perf_counter()
        assert client.get(url).status_code == 200
        out["first_s"] = time.perf_counter() - start
        with Store(root, readonly=True) as store:
            verdicts = store.cell_verdicts(run_id)
        cells = [k for k, v in verdicts.items() if k.persona_id == "builder" and k.tool_id != "t5" and v][
            :edits
        ]
        for field in ("review", "verdict"):
            seconds = []
            for i, key in enumerate(cells):
                turned = "skip" if verdicts[key] == "ship" else "ship"  # the other side: the votes move
                value = f"Edited {i}." if field == "review" else turned
                with Store(root) as store:
                    store.edit_review(run_id, key, field, value)
                start = time.perf_counter()
                assert client.get(url).status_code == 200
                seconds.append(time.perf_counter() - start)
            out[f"{field}_edit_s"] = statistics.median(seconds)
    return out


def _run(tree: Path, args: list[str]) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False, cwd=tree)
    if done.returncode:
        sys.exit(f"{' '.join(args)} failed in {tree}:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start, done.stdout


def measure(tree: Path, root: Path, op: str, run_id: str, edits: int) -> dict[str, float]:
    if op == "show_tool":
        wall, _ = _run(
            tree, [sys.executable, "-m", "panel", "show", run_id, "--tool", "t5", "--out", str(root)]
        )
        return {"s": wall}
    here = str(Path(__file__).resolve())
    _, out = _run(tree, [sys.executable, here, "--worker", op, "--root", str(root), "--run", run_id,
                         "--edits", str(edits)])  # fmt: skip
    return {k: float(v) for k, v in json.loads(out.strip().splitlines()[-1]).items() if k != "contested"}


def _row(name: str, before: list[float], after: list[float]) -> dict[str, object]:
    row: dict[str, object] = {"measure": name, "after_s": round(statistics.median(after), 3)}
    if before:
        b, a = statistics.median(before), statistics.median(after)
        row.update(before_s=round(b, 3), ratio=round(b / a, 1) if a else None)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tools", type=int, default=10_000)
    parser.add_argument("--judges", type=int, default=12)
    parser.add_argument(
        "--earlier-runs", default="0,8,32", help="counts of earlier done runs, comma-separated"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--edits", type=int, default=3, help="edits of each kind timed on the app's page")
    parser.add_argument("--before", type=Path, help="a source tree of the code before")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.root, args.worker, args.run, args.edits)))
        return
    counts = [int(n) for n in args.earlier_runs.split(",")]
    after = Path(__file__).resolve().parent.parent
    trees = [("before", args.before.resolve()), ("after", after)] if args.before else [("after", after)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        build(root, args.tools, args.judges, counts)
        print(json.dumps({"store_built_s": round(time.perf_counter() - start, 1), "tools": args.tools,
                          "judges": args.judges, "earlier_runs": counts}))  # fmt: skip
        rows: list[dict[str, object]] = []
        with Store(root, readonly=True) as store:
            for n in counts:
                old: list[float] = []
                new: list[float] = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    found: dict[str, str] = {}
                    for tool_id, run in store.db.execute(_OLD_PREVIOUS, (f"now-{n}",) * 3):
                        found.setdefault(str(tool_id), str(run))
                    old.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    assert store.previous_runs(f"now-{n}") == found
                    new.append(time.perf_counter() - t0)
                rows.append(_row(f"previous_runs, {n} earlier runs", old, new))
                print(json.dumps(rows[-1]))
        plan = [("run_confidence", "confidence", n) for n in counts]
        plan += [("show one tool", "show_tool", counts[-1]), ("app tool page", "page", counts[-1])]
        for name, op, n in plan:
            seen: dict[str, dict[str, list[float]]] = {side: {} for side, _ in trees}
            for _ in range(args.repeats):
                for side, tree in trees:
                    for key, value in measure(tree, root, op, f"now-{n}", args.edits).items():
                        seen[side].setdefault(key, []).append(value)
            for key in seen["after"]:
                label = f"{name}, {n} earlier runs" + ("" if key == "s" else f": {key.removesuffix('_s')}")
                rows.append(_row(label, seen.get("before", {}).get(key, []), seen["after"][key]))
                print(json.dumps(rows[-1]))
    print(json.dumps({"summary": rows}))


if __name__ == "__main__":
    main()
