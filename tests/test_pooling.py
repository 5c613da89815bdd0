"""Agreement with a reference and pooled verdicts, on simulated panels with planted accuracies.

Every judge says the true verdict with a planted probability, independently; the figures
the analysis reports must recover what was planted, and equal the plain formulas.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from panel.analysis import pooling as pooling_module
from panel.analysis.accuracy import best, with_reference
from panel.analysis.judges import MISSING, Judgments
from panel.analysis.pooling import majority, pooling, ship_share, sub_panels
from panel.analysis.stats import cohen_kappa

PERSONAS = ["builder", "skeptic", "futurist", "business_analyst"]
MEMBERS = ["openai:a", "anthropic:b", "local:c"]
SHIP, SKIP = 0, 1


def panel(
    accuracy: list[float],
    n: int = 2000,
    seed: int = 1,
    missing: float = 0.0,
    price: list[float] | None = None,
    members: list[str] | None = None,
) -> tuple[Judgments, np.ndarray]:
    """Judges with planted accuracies (column order persona-major), the truth, and prices per review."""
    members = members or MEMBERS[: max(1, len(accuracy) // len(PERSONAS))]
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    acc = np.asarray(accuracy)
    right = rng.random((n, len(acc))) < acc
    codes = np.where(right, truth[:, None], 1 - truth[:, None]).astype(np.int64)
    codes[rng.random(codes.shape) < missing] = MISSING
    j_count = len(acc)
    persona_of = np.array([c % len(PERSONAS) for c in range(j_count)])
    member_of = np.array([c // len(PERSONAS) for c in range(j_count)])
    cost = np.tile(np.asarray(price or [0.0] * j_count, dtype=float), (n, 1))
    j = Judgments(
        [f"t{i}" for i in range(n)], PERSONAS[: min(j_count, 4)], members, ["ship", "skip"],
        persona_of, member_of, codes, cost,
    )  # fmt: skip
    return j, truth


def labels(codes: np.ndarray) -> list[str | None]:
    return [None if c == MISSING else str(c) for c in codes]


def test_each_judges_accuracy_and_kappa_recover_the_planted_ones_within_their_intervals() -> None:
    planted = [0.95, 0.85, 0.75, 0.65] * 3
    j, truth = panel(planted, missing=0.05)
    rows = with_reference(j, truth, n_resamples=500)
    judges = [r for r in rows if r.kind == "judge"]
    assert [r.name for r in judges] == j.judges
    covered = sum(r.accuracy.low <= a <= r.accuracy.high for r, a in zip(judges, planted, strict=True))
    assert covered >= 11  # twelve 95% intervals: one may miss by chance
    for r, a, c in zip(judges, planted, range(12), strict=True):
        assert abs(r.accuracy.point - a) < 0.03, (r.name, a, r.accuracy)
        # With balanced classes and symmetric errors, kappa = 2a - 1.
        assert r.kappa.low - 0.03 <= 2 * a - 1 <= r.kappa.high + 0.03, (r.name, r.kappa)
        assert r.kappa.point == pytest.approx(cohen_kappa(labels(j.codes[:, c]), labels(truth)))
        assert r.n_tools == int((j.codes[:, c] != MISSING).sum())


def test_the_accuracy_intervals_cover_the_planted_accuracy_about_95_times_in_100() -> None:
    planted = [0.9, 0.8, 0.7, 0.6]
    hits = total = 0
    for seed in range(50):
        j, truth = panel(planted, n=400, seed=100 + seed, missing=0.1)
        rows = [r for r in with_reference(j, truth, n_resamples=400, seed=seed) if r.kind == "judge"]
        hits += sum(r.accuracy.low <= a <= r.accuracy.high for r, a in zip(rows, planted, strict=True))
        total += len(rows)
    assert 0.90 <= hits / total <= 0.99, hits / total


def test_a_persona_pooled_over_members_counts_each_tool_once_per_member() -> None:
    planted = [0.9, 0.6, 0.6, 0.6, 0.7, 0.6, 0.6, 0.6]  # builder is 0.9 on one member, 0.7 on the other
    j, truth = panel(planted, n=3000)
    rows = {(r.kind, r.name): r for r in with_reference(j, truth, n_resamples=300)}
    builder = rows[("persona", "builder")]
    assert builder.n_ratings == 6000 and builder.n_tools == 3000
    assert builder.accuracy.low <= 0.8 <= builder.accuracy.high
    # The same figure from the long form: every (tool, member) verdict of the builder is one rating.
    pooled = np.concatenate([j.codes[:, 0], j.codes[:, 4]])
    assert builder.kappa.point == pytest.approx(cohen_kappa(labels(pooled), labels(np.tile(truth, 2))))
    assert rows[("panel", "all judges")].n_ratings == 8 * 3000
    top = best(list(rows.values()))
    assert top is not None and top.name == "builder / openai:a"


def test_a_tool_without_a_reference_is_left_out_and_an_undefined_kappa_is_null() -> None:
    j, truth = panel([0.8, 0.8, 0.8, 0.8], n=50)
    reference = truth.copy()
    reference[:10] = MISSING
    rows = with_reference(j, reference, n_resamples=50)
    assert all(r.n_tools == 40 for r in rows if r.kind == "judge")
    constant = np.zeros(50, dtype=np.int64)
    j.codes[:] = SHIP
    rows = with_reference(j, constant, n_resamples=50)
    assert all(math.isnan(r.kappa.point) and r.kappa.resamples_used == 0 for r in rows)
    assert all(r.accuracy.point == 1.0 for r in rows)


def test_majority_of_independent_judges_beats_the_best_one_by_what_the_binomial_predicts() -> None:
    j, truth = panel([0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8], n=4000, seed=3)
    cols = [0, 1, 2]
    pooled = majority(j, cols)
    expected = 0.8**3 + 3 * 0.8**2 * 0.2  # at least two of three right
    assert abs(float((pooled == truth).mean()) - expected) < 0.02
    report = pooling(j, truth, positive=SHIP, n_resamples=300)
    by_method = {p.method: p for p in report.pooled}
    vote, single = by_method["majority vote"], by_method["best single judge"]
    assert vote.accuracy.low > single.accuracy.high  # twelve 0.8 judges pooled: clearly better
    assert vote.accuracy.point > 0.98


def test_a_tie_goes_to_the_verdict_given_most_in_the_run() -> None:
    codes = np.array([[SHIP, SKIP], [SKIP, SKIP], [SKIP, SKIP], [MISSING, MISSING]])
    j = Judgments(
        ["a", "b", "c", "d"], ["builder", "skeptic"], ["m"], ["ship", "skip"],
        np.array([0, 1]), np.array([0, 0]), codes, np.zeros((4, 2)),
    )  # fmt: skip
    assert majority(j).tolist() == [SKIP, SKIP, SKIP, MISSING]
    j.codes[1:3] = SHIP
    assert majority(j).tolist() == [SHIP, SHIP, SHIP, MISSING]


def test_ship_share_follows_its_threshold() -> None:
    codes = np.array([[SHIP, SHIP, SKIP, SKIP], [SHIP, SKIP, SKIP, SKIP], [SHIP, SHIP, SHIP, MISSING]])
    j = Judgments(
        ["a", "b", "c"], PERSONAS, ["m"], ["ship", "skip"],
        np.arange(4), np.zeros(4, dtype=np.int64), codes, np.zeros((3, 4)),
    )  # fmt: skip
    assert ship_share(j, SHIP, 0.5).tolist() == [SHIP, SKIP, SHIP]
    assert ship_share(j, SHIP, 0.25).tolist() == [SHIP, SHIP, SHIP]
    assert ship_share(j, SHIP, 0.75).tolist() == [SKIP, SKIP, SHIP]
    assert ship_share(j, SHIP, 1.0).tolist() == [SKIP, SKIP, SHIP]


def _brute_force(j: Judgments, truth: np.ndarray) -> dict[int, float]:
    best_by_k: dict[int, float] = {}
    for k in range(1, j.n_judges + 1):
        for cols in itertools.combinations(range(j.n_judges), k):
            pooled = majority(j, cols)
            kept = pooled != MISSING
            kappa = cohen_kappa(labels(pooled[kept]), labels(truth[kept]))
            best_by_k[k] = max(best_by_k.get(k, -2.0), kappa)
    return best_by_k


def test_the_best_sub_panel_of_each_size_is_the_best_of_every_subset() -> None:
    j, truth = panel([0.9, 0.6, 0.75, 0.55, 0.8, 0.7, 0.65, 0.85], n=600, missing=0.1, seed=5)
    by_size, _, search = sub_panels(j, truth)
    assert search == "every sub-panel"
    expected = _brute_force(j, truth)
    assert {p.k: p.kappa for p in by_size} == pytest.approx(expected)
    for p in by_size:
        assert len(p.judges) == p.k


def test_the_cost_frontier_only_keeps_sub_panels_no_cheaper_one_beats() -> None:
    price = [0.01, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001, 0.001]
    j, truth = panel([0.9, 0.8, 0.8, 0.8, 0.7, 0.7, 0.7, 0.7], n=800, price=price, seed=7)
    _, frontier, _ = sub_panels(j, truth)
    costs = [p.cost_per_tool for p in frontier]
    kappas = [p.kappa for p in frontier]
    assert costs == sorted(costs) and kappas == sorted(kappas) and len(set(kappas)) == len(kappas)
    assert frontier[0].cost_per_tool == pytest.approx(0.001)  # one cheap judge is the cheapest panel
    assert frontier[-1].kappa == max(p.kappa for p in sub_panels(j, truth)[0])
    report = pooling(j, truth, positive=SHIP, n_resamples=100)
    assert report.pooled[0].cost_per_tool == pytest.approx(sum(price))


def test_sub_panels_of_equal_spend_are_one_point_of_the_cost_frontier() -> None:
    # 0.0004 + 0.0003 + 0.0004 and 0.0003 + 0.0004 + 0.0004 differ in the last bit of a float;
    # the cheaper-looking one with the lower kappa is not on the frontier.
    price = [0.0004, 0.0003, 0.003, 0.0004, 0.0003, 0.003, 0.0004, 0.0003]
    j, truth = panel([0.8, 0.75, 0.9, 0.75, 0.7, 0.85, 0.65, 0.6], n=400, price=price, seed=1)
    _, frontier, _ = sub_panels(j, truth)
    shown = [f"{p.cost_per_tool:.6f}" for p in frontier]  # as a reader compares them
    assert len(set(shown)) == len(shown)
    assert [p.cost_per_tool for p in frontier] == sorted(p.cost_per_tool for p in frontier)
    assert 0.0071 in [p.cost_per_tool for p in frontier]  # the spend as stored, not 0.0070999…


def test_past_the_limit_sub_panels_grow_by_forward_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    j, truth = panel([0.9, 0.6, 0.75, 0.55, 0.8, 0.7, 0.65, 0.85], n=600, seed=5)
    monkeypatch.setattr(pooling_module, "ENUMERATE_UP_TO", 16)
    by_size, _, search = sub_panels(j, truth)
    assert search == "forward selection"
    assert [p.k for p in by_size] == list(range(1, 9))
    # Each size keeps the judges of the one before and adds one.
    for smaller, larger in itertools.pairwise(by_size):
        assert set(smaller.judges) < set(larger.judges)
    assert by_size[0].judges == ["builder / openai:a"]  # the 0.9 judge alone


def test_reliability_weighting_is_reported_beside_the_other_pools() -> None:
    j, truth = panel([0.95, 0.6, 0.6, 0.6], n=1000, seed=11)
    report = pooling(j, truth, positive=SHIP, weighted=lambda cols: j.codes[:, 0], n_resamples=100)
    methods = [p.method for p in report.pooled]
    weighted_name = "reliability-weighted (Dawid-Skene)"
    assert methods == ["majority vote", "ship share >= 0.5", weighted_name, "best single judge"]
    weighted, single = report.pooled[2], report.pooled[3]
    assert weighted.kappa.point == single.kappa.point  # the stand-in weighting trusts the best judge alone
    assert [t["threshold"] for t in report.thresholds] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def test_judgments_keep_the_runs_order_and_put_the_unknown_after_it() -> None:
    from panel.analysis.judges import judgments

    rows = [
        {"tool": t, "persona": p, "member": m, "verdict": v, "cost_usd": 0.5}
        for t, v in (("zeta", "ship"), ("alpha", "skip"), ("mid", None), ("beta", "maybe"))
        for p in ("skeptic", "builder")
        for m in ("x:1",)
    ]
    j = judgments(
        rows, categories=["ship", "skip"], order={"tool": ["mid", "zeta", "mid"], "persona": ["builder"]}
    )
    assert j.tools == ["mid", "zeta", "alpha", "beta"]
    assert j.judges == ["builder / x:1", "skeptic / x:1"]
    assert j.categories == ["ship", "skip", "maybe"]  # the personas' verdicts first, then any other
    assert j.codes[:, 0].tolist() == [MISSING, SHIP, SKIP, 2]
    assert j.cost.sum() == 4.0  # a failed review's spend counts too


def test_with_three_verdicts_the_ship_share_is_left_out_with_a_note_that_says_why() -> None:
    codes = np.array([[0, 1, 2], [0, 0, 1], [2, 2, 2], [1, 0, 0]] * 5, dtype=np.int64)
    j = Judgments(
        [f"t{i}" for i in range(20)], ["builder", "skeptic", "futurist"], ["m"], ["ship", "skip", "maybe"],
        np.arange(3), np.zeros(3, dtype=np.int64), codes, np.zeros((20, 3)),
    )  # fmt: skip
    reference = np.array([0, 0, 2, 0] * 5, dtype=np.int64)
    report = pooling(j, reference, positive=SHIP, n_resamples=50)
    assert [p.method for p in report.pooled] == ["majority vote", "best single judge"]
    assert "it sets ship against one other verdict, and there are 3." in " ".join(report.notes)
    assert report.thresholds == []
