"""Wall time and peak memory of a whole `panel agreement` process on a catalog-sized run.

    python bench/bench_agreement.py [--tools 10000] [--rounds 1] [--resamples 2000]
                                    [--baseline REF] [--profile FILE.txt] [--reference]

Builds one run with the fake backend (`--tools` generated tools x 4 personas x 1 member,
so 40,000 reviews by default), then times `panel agreement RUN --out DIR --format json`
as a process of its own: wall seconds and the process's peak RSS. `--baseline REF` runs
the same command from the tree of a git commit (exported with `git archive` to a
temporary folder) on the same store, interleaved round by round with the working tree,
prints the ratio, and checks that both give the same point estimates. `--reference` gives
the current tree a labels file too, so its time includes every judge against a reference,
the pooled verdicts and the sub-panel search (the label-free latent model and variance
split run in every case). `--profile FILE`
writes a py-spy sampling profile (raw folded stacks) of one more run of the working tree.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_engine import synthetic_catalog, write_catalog  # noqa: E402

HEADLINE = ("percent_agreement", "fleiss_kappa", "krippendorff_alpha", "effective_votes")


def _env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree)}


def build_run(catalog: Path, runs: Path) -> tuple[str, float]:
    """A fake-backend run of the whole catalog; its id and the seconds it took."""
    command = [sys.executable, "-m", "panel", "review", str(catalog), "--backend", "fake"]
    command += ["--out", str(runs), "--progress", "quiet"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=runs.parent, env=_env(ROOT), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"panel review exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done.stdout.split(":", 1)[0].strip(), time.perf_counter() - started


def one_run(
    tree: Path, run_id: str, runs: Path, resamples: int, work: Path, extra: list[str]
) -> dict[str, Any]:
    """`panel agreement` from ``tree``: wall seconds, peak RSS and the JSON report."""
    command = [sys.executable, "-m", "panel", "agreement", run_id, "--out", str(runs)]
    command += ["--format", "json", "--resamples", str(resamples), *extra]
    out, err = work / "out.json", work / "err.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        started = time.perf_counter()
        # cwd is the work folder: `python -m` puts it first on sys.path, and it holds no `panel`
        proc = subprocess.Popen(command, cwd=work, env=_env(tree), stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, peak RSS included
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"panel agreement ({tree}) exited {proc.returncode}: {err.read_text()[-2000:]}")
    return {
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # kilobytes on Linux
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "report": json.loads(out.read_text()),
    }


def write_labels(path: Path, n_tools: int) -> Path:
    """A labels file with one seeded random verdict per generated tool."""
    rng = random.Random(0)
    rows = [f"{t['id']},{rng.choice(('ship', 'skip'))}\n" for t in synthetic_catalog(n_tools)]
    path.write_text("tool,verdict\n" + "".join(rows), encoding="utf-8")
    return path


def profile(run_id: str, runs: Path, resamples: int, into: Path) -> None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [spy, "record", "--format", "raw", "-r", "200", "-o", str(into), "--"]
    command += [sys.executable, "-m", "panel", "agreement", run_id, "--out", str(runs)]
    command += ["--format", "json", "--resamples", str(resamples)]
    subprocess.run(command, cwd=runs.parent, env=_env(ROOT), check=True, capture_output=True)


def export(ref: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def points(report: dict[str, Any]) -> dict[str, float | None]:
    return {name: report["stats"][name]["point"] for name in HEADLINE}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tools", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--baseline", help="git ref to compare against, run interleaved")
    parser.add_argument("--profile", type=Path, help="write a py-spy profile (raw) of one more run here")
    parser.add_argument(
        "--reference",
        action="store_true",
        help="give the current tree a labels file (a seeded random verdict per tool) as --reference",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        catalog = write_catalog(work / "catalog.jsonl", args.tools)
        run_id, built = build_run(catalog, work / "runs")
        print(f"built run {run_id}: {args.tools} tools x 4 personas x 1 member in {built:.1f} s", flush=True)
        extra: dict[str, list[str]] = {"current": [], "baseline": []}
        if args.reference:
            extra["current"] = ["--reference", str(write_labels(work / "labels.csv", args.tools))]
        trees = {"current": ROOT}
        if args.baseline:
            base = work / "baseline"
            base.mkdir()
            trees = {"baseline": export(args.baseline, base), "current": ROOT}
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        for k in range(args.rounds):
            for name, tree in trees.items():
                r = one_run(tree, run_id, work / "runs", args.resamples, work, extra[name])
                results[name].append(r)
                shown = {key: value for key, value in r.items() if key != "report"}
                print(f"round {k + 1} {name:>8}: {json.dumps(shown)}", flush=True)
        if args.profile:
            profile(run_id, work / "runs", args.resamples, args.profile)
            print(f"profile written to {args.profile}")

    summary: dict[str, Any] = {"tools": args.tools, "reviews": 4 * args.tools, "resamples": args.resamples}
    for name, runs in results.items():
        for key in ("wall_s", "peak_rss_mb", "cpu_s"):
            summary[f"{name}_{key}_median"] = round(statistics.median(r[key] for r in runs), 2)
    summary["current_points"] = points(results["current"][0]["report"])
    if "baseline" in results:
        pairs = list(zip(results["baseline"], results["current"], strict=True))
        ratios = [b["wall_s"] / c["wall_s"] for b, c in pairs]
        summary["speedup_per_round"] = [round(x, 1) for x in ratios]
        summary["speedup_median"] = round(statistics.median(ratios), 1)
        summary["points_equal"] = all(points(b["report"]) == points(c["report"]) for b, c in pairs)
    print("summary " + json.dumps(summary))
    if summary.get("points_equal") is False:
        raise SystemExit("the baseline and the current tree give different point estimates")


if __name__ == "__main__":
    main()
