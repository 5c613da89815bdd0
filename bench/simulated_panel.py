"""A simulated panel with planted accuracies, written as a real run for `panel agreement`.

    python bench/simulated_panel.py [--tools 200] [--out runs-sim] [--seed 0]
                                    [--community-votes 20] [--raters 1] [--rater-accuracy 1.0]
                                    [--planted persona|member]
                                    [--editor-labels N] [--editor-accuracy 1.0]
                                    [--makers] [--maker-bias 0.15]
                                    [--head-to-head PAIRS] [--position-bias 0.7]

Writes a run of 4 personas (the project's own) x 3 members into OUT/panel.db, with
community votes on each tool, and OUT/labels.csv (human labels: each of --raters people
labels every tool, right with probability --rater-accuracy). With --editor-labels N, also
OUT/editor-labels.csv: an editor's labels on N tools drawn at random, each right with
probability --editor-accuracy (what editors' approvals would give a run). Prints the planted
parameters, the run id, and the command that measures the panel against the labels.

The planted panel (the generative model is in panel/testing/simulate.py): each judge
(persona, member) says the true verdict with its accuracy below; the skeptic's log-odds
of saying ship are shifted by -1.0 (a persona effect, no member effect), so its accuracy
on tools whose truth is ship falls and on the others rises. `--planted member` plants the
reverse: the large member's log-odds of ship shifted by +1.0, whatever persona it plays,
and no persona effect. Members are priced so the
large one costs about eight times a small one, as in the small-jury literature.

With --makers, each member has its own maker and the tools are made by them in turn; with
--maker-bias B (which implies --makers) the large member's probability of saying ship on its
maker's tools is raised by B (self-preference, which `panel agreement` then reports).

With --head-to-head PAIRS, every judge also answers PAIRS pairs of tools drawn at random, each
in both orders, stored as a real run's head-to-head round (the model is in
panel/testing/simulate_h2h.py: tools' strengths follow their truth, Bradley-Terry picks); with
--position-bias B the small members' judges name the first-shown tool with probability B
whatever the pair (the large member judges by strength alone).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from panel.store import new_run_id  # noqa: E402
from panel.testing.simulate import (  # noqa: E402
    SimulatedPanel,
    editor_labels,
    simulate_panel,
    write_editor_labels,
    write_labels,
    write_simulated_run,
)
from panel.testing.simulate_h2h import SimulatedHeadToHead, simulate_head_to_head  # noqa: E402

MEMBERS = ("sim:small-a", "sim:small-b", "sim:large")
#: USD per review
PRICES = {"sim:small-a": 0.0004, "sim:small-b": 0.0003, "sim:large": 0.003}
#: planted accuracy per persona, one per member in the order of MEMBERS
ACCURACY = {
    "builder": (0.80, 0.75, 0.90),
    "skeptic": (0.75, 0.70, 0.85),
    "futurist": (0.65, 0.60, 0.75),
    "business_analyst": (0.78, 0.72, 0.88),
}
PERSONA_BIAS = {"skeptic": -1.0}
#: with --planted member: the large model says ship more often, whoever it plays
MEMBER_BIAS = {"sim:large": 1.0}
MISSING = 0.02
#: with --makers: each member's maker
MAKERS = {"sim:small-a": "Small A Labs", "sim:small-b": "Small B Labs", "sim:large": "Large Labs"}
#: with --position-bias: the members whose judges pick by position
POSITION_BIASED = ("sim:small-a", "sim:small-b")


def planted_panel(
    tools: int,
    seed: int,
    run_id: str,
    *,
    planted: str = "persona",
    makers: bool = False,
    maker_bias: float = 0.0,
) -> SimulatedPanel:
    """The panel this script writes (also drawn by bench/bench_biases.py)."""
    accuracy = {(p, m): a for p, row in ACCURACY.items() for m, a in zip(MEMBERS, row, strict=True)}
    return simulate_panel(
        tools,
        list(ACCURACY),
        MEMBERS,
        accuracy=accuracy,
        persona_bias=PERSONA_BIAS if planted == "persona" else {},
        member_bias=MEMBER_BIAS if planted == "member" else {},
        missing=MISSING,
        prices=PRICES,
        run_id=run_id,
        seed=seed,
        member_makers=MAKERS if makers or maker_bias else None,
        maker_bias={"sim:large": maker_bias} if maker_bias else None,
    )


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tools", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("runs-sim"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--community-votes", type=int, default=20, help="mean votes per tool (0: none)")
    parser.add_argument("--raters", type=int, default=1, help="human raters in labels.csv")
    parser.add_argument("--rater-accuracy", type=float, default=1.0)
    parser.add_argument(
        "--planted",
        choices=("persona", "member"),
        default="persona",
        help="the effect to plant: the skeptic persona against ship (default), or the large member for it",
    )
    parser.add_argument("--editor-labels", type=int, default=0, help="tools an editor labels (0: none)")
    parser.add_argument("--editor-accuracy", type=float, default=1.0)
    parser.add_argument("--makers", action="store_true", help="give members and tools makers")
    parser.add_argument(
        "--maker-bias",
        type=float,
        default=0.0,
        help="the large member's same-maker ship bias (implies --makers)",
    )
    parser.add_argument(
        "--head-to-head", type=int, default=0, metavar="PAIRS", help="pairs each judge answers (0: none)"
    )
    parser.add_argument(
        "--position-bias",
        type=float,
        default=0.0,
        help="the small members' probability of naming the first-shown tool whatever the pair",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.editor_labels <= args.tools:
        parser.error(f"--editor-labels must be between 0 and --tools ({args.tools})")
    pairs = args.tools * (args.tools - 1) // 2
    if not 0 <= args.head_to_head <= pairs:
        parser.error(f"--head-to-head must be between 0 and {pairs} (the pairs of {args.tools} tools)")
    if not 0.0 <= args.position_bias <= 1.0:
        parser.error("--position-bias must be between 0 and 1")
    if args.position_bias and not args.head_to_head:
        parser.error("--position-bias needs --head-to-head PAIRS")

    panel = planted_panel(
        args.tools,
        args.seed,
        new_run_id(),
        planted=args.planted,
        makers=args.makers,
        maker_bias=args.maker_bias,
    )
    head_to_head = None
    if args.head_to_head:
        biased = {(p, m): args.position_bias for p in panel.personas for m in POSITION_BIASED}
        head_to_head = simulate_head_to_head(panel, args.head_to_head, position_bias=biased)
    run_id = write_simulated_run(
        args.out, panel, community_votes=args.community_votes, head_to_head=head_to_head
    )
    labels = write_labels(args.out / "labels.csv", panel, args.raters, args.rater_accuracy)

    print(
        f"planted: {args.tools} tools, prevalence {panel.prevalence}, "
        f"{MISSING:.0%} failed reviews, seed {args.seed}"
    )
    print("judge                              planted a  P(ship|ship)  P(skip|skip)  expected  in this draw")
    for p, m in panel.judges:
        (ss, _), (_, kk) = panel.confusion(p, m)
        print(
            f"{p + ' / ' + m:<34} {panel.accuracy[(p, m)]:>9.2f} {ss:>13.3f} {kk:>13.3f} "
            f"{panel.expected_accuracy(p, m):>9.3f} {_drawn_accuracy(panel, p, m):>13.3f}"
        )
    print(
        f"persona bias (log-odds of ship): {panel.persona_bias or 'none'}; "
        f"member bias: {panel.member_bias or 'none'}"
    )
    if panel.member_makers:
        print(
            f"makers: {json.dumps(panel.member_makers)}; same-maker ship bias: {panel.maker_bias or 'none'}"
        )
    if head_to_head is not None:
        _print_head_to_head(head_to_head)
    print(f"price per review (USD): {json.dumps(PRICES)}")
    print(f"truth: {panel.truth.count('ship')} ship, {panel.truth.count('skip')} skip")
    print(f"labels: {labels} ({args.raters} rater(s), accuracy {args.rater_accuracy})")
    if args.editor_labels:
        chosen = editor_labels(panel, args.editor_labels, args.editor_accuracy)
        edited = write_editor_labels(args.out / "editor-labels.csv", chosen)
        print(f"editor labels: {edited} ({len(chosen)} tools, accuracy {args.editor_accuracy})")
    print(f"run: {run_id}")
    print(f"panel agreement {run_id} --out {args.out} --reference {labels}")
    return run_id


def _print_head_to_head(sim: SimulatedHeadToHead) -> None:
    asks = len(sim.answers)
    print(f"head-to-head: {len(sim.pairs)} pairs x {len(sim.judges)} judges x 2 orders = {asks} asks")
    print(
        "judge                              position bias  expected consistency  expected first-shown share"
    )
    for p, m in sim.judges:
        e = sim.expected(p, m)
        print(f"{p + ' / ' + m:<34} {e.position:>13.2f} {e.consistency:>21.3f} {e.first_shown_share:>27.3f}")


def _drawn_accuracy(panel: SimulatedPanel, persona: str, member: str) -> float:
    """The judge's share of right verdicts among its valid ones in this draw: what an
    analysis against the true labels should recover."""
    truth = dict(zip(panel.tools, panel.truth, strict=True))
    said = [r for r in panel.rows if r["persona"] == persona and r["member"] == member and r["valid"]]
    return float(sum(r["verdict"] == truth[r["tool"]] for r in said) / max(len(said), 1))


if __name__ == "__main__":
    main()
