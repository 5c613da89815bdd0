"""Load time and peak memory of large catalogs, in each format.

    python bench/bench_catalog.py [--sizes 10000,40000,200000] [--formats json,jsonl,yaml]
                                  [--rounds 1] [--timeout 300] [--baseline TREE] [--keep DIR]

Writes catalogs of generated tools (a realistic entry: a description of a few sentences,
pricing, two links, three facts, community votes on one in five) as JSON (an object with a
`tools` list, indented), JSONL and YAML (block style, as PyYAML writes it) in a temporary
folder, then loads each with `load_catalog` in a fresh Python process and prints the load's
wall seconds (timed inside the process), the process's peak RSS (its own rusage, from
os.wait4) and the RSS it holds once the catalog is loaded (what the tools themselves take; the
peak above it is what reading took), beside the RSS of a process that only imports the catalog
module. A process past `--timeout` seconds is killed and shown as such.

`--baseline TREE` runs the same loads from another source tree (a worktree of main, say:
`git worktree add --detach /tmp/cat-old main`) in the same rounds, interleaved, and prints
both and their ratio. Figures are medians over `--rounds`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent

# Loads the catalog given as argv[1] and prints the load's seconds, the tool count and the
# RSS the process holds once the catalog is loaded.
CHILD = """
import json, sys, time
from panel.catalog import load_catalog
started = time.perf_counter()
catalog = load_catalog(sys.argv[1])
seconds = time.perf_counter() - started
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:"))
print(json.dumps({"tools": len(catalog), "load_s": seconds, "rss_after_kb": rss}))
"""
IMPORT_ONLY = "import panel.catalog"


def tool(i: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": f"tool-{i:06d}",
        "name": f"Tool {i}",
        "category": ("Developer Tools", "AI Models", "Databases")[i % 3],
        "tagline": f"Generated tool number {i} for the catalog benchmark",
        "description": f"Tool {i} is a generated catalog entry with a description of about the "
        "length a real one has: what the tool does, who it is for and how it is priced, in a "
        "few sentences.",
        "pricing": {
            "model": ("free", "freemium", "paid", "enterprise")[i % 4],
            "note": "MIT" if i % 4 == 0 else "",
        },
        "links": {"home": f"https://example.com/tools/{i}", "source": f"https://github.com/example/tool-{i}"},
        "facts": [f"Fact {j} about tool {i}." for j in range(3)],
    }
    if i % 5 == 0:
        entry["community"] = {"ship": i % 17, "skip": i % 7}
    return entry


def _batches(n: int, size: int = 1000) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, n, size):
        yield [tool(i) for i in range(start, min(n, start + size))]


def write_catalog(path: Path, n: int) -> Path:
    """A catalog of `n` generated tools in the format of `path`'s suffix, written a batch at a time."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    with path.open("w", encoding="utf-8") as out:
        if path.suffix == ".jsonl":
            for batch in _batches(n):
                out.writelines(json.dumps(t) + "\n" for t in batch)
        elif path.suffix == ".json":
            out.write('{\n  "tools": [\n')
            first = True
            for batch in _batches(n):
                for t in batch:
                    text = json.dumps(t, indent=2).replace("\n", "\n    ")
                    out.write(("" if first else ",\n") + "    " + text)
                    first = False
            out.write("\n  ]\n}\n")
        else:
            out.write("tools:\n")
            for batch in _batches(n):
                out.write(yaml.dump(batch, Dumper=dumper, sort_keys=False, allow_unicode=True))
    return path


def run(tree: Path, work: Path, code: str, *args: str, timeout: float) -> dict[str, Any]:
    """One fresh process of `code` with `tree` first on its path: its printed JSON, wall
    seconds and peak RSS (None figures when killed at the timeout)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out_path, err_path = work / "child.out", work / "child.err"
    with out_path.open("wb") as stdout, err_path.open("wb") as stderr:
        # cwd is the work folder: `python -c` puts it first on sys.path, and it holds no `panel`.
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args], cwd=work, env=env, stdout=stdout, stderr=stderr
        )
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, peak RSS included
        finally:
            killer.cancel()
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        if wall >= timeout:
            return {"killed": True, "wall_s": wall}
        raise SystemExit(f"{tree}: exited {proc.returncode}: {err_path.read_text()[-2000:]}")
    out = out_path.read_text()
    printed = json.loads(out) if out.strip() else {}
    after = printed.pop("rss_after_kb", 0) / 1024
    return {
        **printed,
        "wall_s": wall,
        "peak_mb": usage.ru_maxrss / 1024,
        "rss_after_mb": after,
        "killed": False,
    }


def _cell(results: list[dict[str, Any]], key: str, timeout: float) -> str:
    if any(r["killed"] for r in results):
        return f"killed at {timeout:.0f} s"
    value = statistics.median(r[key] for r in results)
    return f"{value:,.2f}" if key == "load_s" else f"{value:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,40000,200000")
    parser.add_argument("--formats", default="json,jsonl,yaml")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--baseline", type=Path, help="another source tree, loaded in the same rounds")
    parser.add_argument(
        "--keep", type=Path, help="write the catalogs here (and keep them) instead of a temp folder"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    formats = args.formats.split(",")
    trees = {"current": ROOT}
    if args.baseline:
        trees = {"baseline": args.baseline.resolve(), "current": ROOT}

    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        imports = {name: run(tree, work, IMPORT_ONLY, timeout=args.timeout) for name, tree in trees.items()}
        print(
            "import only: " + ", ".join(f"{n} {r['peak_mb']:.0f} MB" for n, r in imports.items()), flush=True
        )
        results: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
        files: dict[tuple[str, int], float] = {}
        for n in sizes:
            for fmt in formats:
                path = work / f"catalog-{n}.{fmt}"
                if not path.exists():
                    write_catalog(path, n)
                files[fmt, n] = path.stat().st_size / 1e6
                for k in range(args.rounds):
                    for name, tree in trees.items():
                        r = run(tree, work, CHILD, str(path), timeout=args.timeout)
                        results.setdefault((fmt, n, name), []).append(r)
                        shown = {key: round(v, 2) if isinstance(v, float) else v for key, v in r.items()}
                        print(f"{fmt:>5} {n:>7,} round {k + 1} {name:>8}: {json.dumps(shown)}", flush=True)

    head = "| format | tools | file MB |"
    rule = "|---|---:|---:|"
    for name in trees:
        head += f" {name} load s | {name} peak RSS MB | {name} RSS after MB |"
        rule += "---:|---:|---:|"
    if "baseline" in trees:
        head += " load: before ÷ after | peak RSS: before ÷ after |"
        rule += "---:|---:|"
    print()
    print(head)
    print(rule)
    summary: dict[str, Any] = {
        "import_peak_mb": {n: round(r["peak_mb"]) for n, r in imports.items()},
        "rows": [],
    }
    for fmt in formats:
        for n in sizes:
            row = f"| {fmt} | {n:,} | {files[fmt, n]:,.0f} |"
            record: dict[str, Any] = {"format": fmt, "tools": n, "file_mb": round(files[fmt, n], 1)}
            for name in trees:
                got = results[fmt, n, name]
                row += f" {_cell(got, 'load_s', args.timeout)} | {_cell(got, 'peak_mb', args.timeout)} |"
                row += f" {_cell(got, 'rss_after_mb', args.timeout)} |"
                killed = any(r["killed"] for r in got)
                record[f"{name}_load_s"] = (
                    None if killed else round(statistics.median(r["load_s"] for r in got), 2)
                )
                for key in ("peak_mb", "rss_after_mb"):
                    record[f"{name}_{key}"] = (
                        None if killed else round(statistics.median(r[key] for r in got))
                    )
            if "baseline" in trees:
                before, after = record["baseline_load_s"], record["current_load_s"]
                row += (
                    f" {before / after:,.1f} |" if before and after else f" > {args.timeout / after:,.0f} |"
                )
                before, after = record["baseline_peak_mb"], record["current_peak_mb"]
                row += f" {before / after:,.1f} |" if before and after else " — |"
            print(row)
            summary["rows"].append(record)
    print()
    print("summary " + json.dumps(summary))


if __name__ == "__main__":
    main()
