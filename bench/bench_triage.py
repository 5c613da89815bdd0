"""The triage rule and the calibration of the panel's probability, on simulated panels.

    python bench/bench_triage.py [--tools 2000] [--editor-labels 300] [--seeds 20]
                                 [--target 0.9] [--level 0.95] [--editor-accuracy 1.0]
                                 [--members 3]

Each seed draws the panel of bench/simulated_panel.py (4 personas x 3 members, planted
accuracies 0.60-0.90, the skeptic biased against ship, 2% failed reviews) over ``--tools``
tools, fits Dawid-Skene without labels, and gives an editor ``--editor-labels`` tools drawn
at random (right with ``--editor-accuracy``). Then:

* **the rule** (panel.analysis.escalation.choose_threshold) chooses the confidence threshold
  on the labelled tools for ``--target`` at ``--level``, with the panel's verdict the
  Dawid-Skene one. It is checked on the truth of the tools the editor did not label: the
  agreement of those published unread (mean and worst over seeds), and the coverage. The
  same with ``selection="widest"`` (the widest passing threshold, no fixed sequence) shows
  what the sequence guards against.
* **calibration** (panel.analysis.calibration) of the panel's probability of ship against
  the truth of the unlabelled tools, before (Dawid-Skene, no labels) and after the editor's
  labels are used (``fit_on_labels`` on them): the ECE per seed (mean, worst) and the
  reliability diagram pooled over seeds.

``--members 1`` keeps only the first member (4 judges): a weaker panel, where the rule has
something to hold back. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from simulated_panel import ACCURACY, MEMBERS, MISSING, PERSONA_BIAS  # noqa: E402

from panel.analysis.calibration import Calibration, calibration, cross_fitted  # noqa: E402
from panel.analysis.escalation import Chosen, choose_threshold  # noqa: E402
from panel.analysis.judges import judgments  # noqa: E402
from panel.analysis.latent import dawid_skene  # noqa: E402
from panel.analysis.latent_posteriors import fit_on_labels  # noqa: E402
from panel.testing.simulate import CATEGORIES, editor_labels, simulate_panel  # noqa: E402


@dataclass
class Seed:
    threshold: float | None
    bound: float | None
    coverage: float
    held_out: float | None  # agreement with the truth of the unlabelled tools published unread
    held_out_n: int
    widest_held_out: float | None
    widest_coverage: float
    after_held_out: float | None  # the rule on the probabilities after the editor's labels
    after_coverage: float
    before: Calibration
    after: Calibration
    seconds: float


def one(seed: int, args: argparse.Namespace) -> Seed:
    members = MEMBERS[: args.members]
    accuracy = {(p, m): a for p, row in ACCURACY.items() for m, a in zip(MEMBERS, row, strict=True)}
    accuracy = {k: a for k, a in accuracy.items() if k[1] in members}
    panel = simulate_panel(args.tools, list(ACCURACY), members, accuracy=accuracy,
                           persona_bias=PERSONA_BIAS, missing=MISSING, seed=seed)  # fmt: skip
    start = time.perf_counter()
    j = judgments(panel.rows, categories=CATEGORIES, order={"tool": panel.tools})
    truth = np.array(panel.truth)
    ship = j.categories.index("ship")
    p = dawid_skene(j.codes, j.categories).posterior[:, ship]
    verdict = np.where(p >= 0.5, "ship", "skip")
    labels = editor_labels(panel, args.editor_labels, args.editor_accuracy)
    labelled = np.array([t in labels for t in panel.tools])
    reference = [labels.get(t) for t in panel.tools]
    found = choose_threshold(p.tolist(), verdict.tolist(), reference, target=args.target, level=args.level)
    widest = choose_threshold(p.tolist(), verdict.tolist(), reference, target=args.target, level=args.level,
                              selection="widest")  # fmt: skip
    seconds = time.perf_counter() - start

    def held(decisions: list[str], said: np.ndarray = verdict) -> tuple[float | None, int]:
        unread = ~labelled & np.array([d == "publish" for d in decisions])
        n = int(unread.sum())
        return (float((said[unread] == truth[unread]).mean()) if n else None), n

    held_out, n = held(found.decisions)
    widest_held, _ = held(widest.decisions)
    codes = np.array([j.categories.index(labels[t]) if t in labels else -1 for t in panel.tools])
    fitted = fit_on_labels(j.codes, codes, j.categories).posterior[:, ship]
    is_ship = [bool(t == "ship") if not lab else None for t, lab in zip(truth, labelled, strict=True)]
    # The rule after the labels: a labelled tool is scored by reliabilities counted on the other
    # half of the labels (cross-fitted), so the threshold is not chosen on the labels it was fitted on.
    after = np.where(labelled, cross_fitted(j.codes, codes, j.categories, seed=seed)[:, ship], fitted)
    said_after = np.where(after >= 0.5, "ship", "skip")
    rule_after = choose_threshold(after.tolist(), said_after.tolist(), reference, target=args.target,
                                  level=args.level)  # fmt: skip
    after_held, _ = held(rule_after.decisions, said_after)
    chosen = isinstance(found, Chosen)
    return Seed(
        threshold=found.threshold if isinstance(found, Chosen) else None,
        bound=found.bound if isinstance(found, Chosen) else None,
        coverage=found.coverage if chosen else 0.0,
        held_out=held_out,
        held_out_n=n,
        widest_held_out=widest_held,
        widest_coverage=widest.coverage if isinstance(widest, Chosen) else 0.0,
        after_held_out=after_held,
        after_coverage=rule_after.coverage if isinstance(rule_after, Chosen) else 0.0,
        before=calibration(p, is_ship, name="Dawid-Skene, no labels"),
        after=calibration(fitted, is_ship, name="fit_on_labels on the editor's labels"),
        seconds=seconds,
    )


def _f(v: float | None, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _mean_worst(values: list[float | None], worst: str = "min") -> str:
    seen = [v for v in values if v is not None]
    if not seen:
        return "—"
    pick = min(seen) if worst == "min" else max(seen)
    return f"{statistics.mean(seen):.3f} / {pick:.3f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tools", type=int, default=2000)
    parser.add_argument("--editor-labels", type=int, default=300)
    parser.add_argument("--editor-accuracy", type=float, default=1.0)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--level", type=float, default=0.95)
    parser.add_argument("--members", type=int, default=len(MEMBERS), choices=range(1, len(MEMBERS) + 1))
    args = parser.parse_args(argv)
    runs = [one(seed, args) for seed in range(args.seeds)]
    judges = len(ACCURACY) * args.members
    print(f"{args.tools} tools x {judges} judges ({len(ACCURACY)} personas x {args.members} members), "
          f"{args.editor_labels} editor labels (accuracy {args.editor_accuracy}), target {args.target} "
          f"at level {args.level}, {args.seeds} seeds\n")  # fmt: skip
    refused = sum(r.threshold is None for r in runs)
    rows = [
        ("threshold chosen (median, min-max)",
         _spread([r.threshold for r in runs])),
        ("Clopper-Pearson bound on the labelled tools (median, min-max)",
         _spread([r.bound for r in runs])),
        ("held-out agreement of the tools published unread (mean / worst)",
         _mean_worst([r.held_out for r in runs])),
        ("seeds whose held-out agreement is below the target",
         f"{sum(r.held_out is not None and r.held_out < args.target for r in runs)} of {len(runs)}"),
        ("coverage: share of all tools published unread (mean / worst)",
         _mean_worst([r.coverage for r in runs])),
        ("unlabelled tools published unread per seed (mean)",
         f"{statistics.mean(r.held_out_n for r in runs):.0f}"),
        ("seeds where the rule refused", f"{refused} of {len(runs)}"),
        ("widest passing threshold instead: held-out agreement (mean / worst)",
         _mean_worst([r.widest_held_out for r in runs])),
        ("widest passing threshold instead: coverage (mean)",
         f"{statistics.mean(r.widest_coverage for r in runs):.3f}"),
        ("after the labels (cross-fitted fit_on_labels): held-out agreement (mean / worst)",
         _mean_worst([r.after_held_out for r in runs])),
        ("after the labels (cross-fitted fit_on_labels): coverage (mean / worst)",
         _mean_worst([r.after_coverage for r in runs])),
        ("time to fit Dawid-Skene and choose (median, s)",
         f"{statistics.median(r.seconds for r in runs):.3f}"),
    ]  # fmt: skip
    print("| the triage rule | figure |\n|---|---|")
    for name, figure in rows:
        print(f"| {name} | {figure} |")
    print("\n| probability of ship, scored on the unlabelled tools | ECE mean / worst | tools per seed |")
    print("|---|---|---|")
    for which in ("before", "after"):
        cals: list[Calibration] = [getattr(r, which) for r in runs]
        print(
            f"| {which}: {cals[0].probability} | {_mean_worst([c.ece for c in cals], 'max')} | {cals[0].n} |"
        )
    print("\nReliability diagram, pooled over seeds (tools; mean predicted -> observed ship rate):\n")
    pair = "predicted -> observed"
    print(f"| bin | before: tools | before: {pair} | after: tools | after: {pair} |")
    print("|---|---|---|---|---|")
    before, after = _pooled([r.before for r in runs]), _pooled([r.after for r in runs])
    for (low, high, nb, pb, ob), (_, _, na, pa, oa) in zip(before, after, strict=True):
        print(f"| {low:.1f}-{high:.1f} | {nb} | {_f(pb)} -> {_f(ob)} | {na} | {_f(pa)} -> {_f(oa)} |")


def _spread(values: list[float | None]) -> str:
    seen = [v for v in values if v is not None]
    if not seen:
        return "—"
    return f"{statistics.median(seen):.3f} ({min(seen):.3f}-{max(seen):.3f})"


def _pooled(cals: list[Calibration]) -> list[tuple[float, float, int, float | None, float | None]]:
    out = []
    for b in range(len(cals[0].bins)):
        shown = [c.bins[b] for c in cals if c.bins[b].count]
        n = sum(x.count for x in shown)
        predicted = sum(x.count * (x.predicted or 0.0) for x in shown) / n if n else None
        observed = sum(x.count * (x.observed or 0.0) for x in shown) / n if n else None
        out.append((cals[0].bins[b].low, cals[0].bins[b].high, n, predicted, observed))
    return out


if __name__ == "__main__":
    main()
