"""Tests of panel.analysis.stats: reference libraries, published examples, bootstrap, degenerate cases."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from typing import Any

import pytest

np = pytest.importorskip("numpy")

from panel.analysis import intervals, stats  # noqa: E402

Table = list[list[Any]]
SHAPES = [(12, 3, 2), (40, 5, 3), (25, 14, 5), (200, 12, 2)]  # items, raters, categories


def _labels(k: int) -> list[str]:
    return [f"c{j}" for j in range(k)]


def _random_table(
    seed: int, n_items: int, n_raters: int, k: int, p_missing: float = 0.0, p_true: float = 0.6
) -> Table:
    """Raters who report the item's true category with prob. p_true, else a random one."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    noise = rng.integers(0, k, (n_items, n_raters))
    codes = np.where(rng.random((n_items, n_raters)) < p_true, truth[:, None], noise)
    missing = rng.random((n_items, n_raters)) < p_missing
    names = _labels(k)
    return [[None if missing[i, j] else names[codes[i, j]] for j in range(n_raters)] for i in range(n_items)]


def _codes(table: Table, k: int) -> Any:
    """Integer codes with NaN for missing, for the reference libraries."""
    index = {name: j for j, name in enumerate(_labels(k))}
    return np.array([[np.nan if v is None else index[v] for v in row] for row in table])


def _from_counts(counts: Sequence[Sequence[int]]) -> Table:
    """Expand an items x categories counts table into items x raters labels."""
    return [[f"c{j}" for j, c in enumerate(row) for _ in range(c)] for row in counts]


# --- 1. against reference libraries ---------------------------------------------------


@pytest.mark.parametrize(("n_items", "n_raters", "k"), SHAPES)
@pytest.mark.parametrize("p_missing", [0.0, 0.05])
def test_fleiss_matches_statsmodels(n_items: int, n_raters: int, k: int, p_missing: float) -> None:
    ir = pytest.importorskip("statsmodels.stats.inter_rater")
    table = _random_table(n_items * k, n_items, n_raters, k, p_missing)
    codes = _codes(table, k)
    complete = codes[~np.isnan(codes).any(axis=1)].astype(int)  # documented: complete cases
    assert len(complete) >= 2
    expected = ir.fleiss_kappa(ir.aggregate_raters(complete)[0])
    assert stats.fleiss_kappa(table) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(("n_items", "n_raters", "k"), SHAPES)
@pytest.mark.parametrize("p_missing", [0.0, 0.2])
def test_cohen_matches_statsmodels(n_items: int, n_raters: int, k: int, p_missing: float) -> None:
    ir = pytest.importorskip("statsmodels.stats.inter_rater")
    table = _random_table(n_items + k, n_items, 2, k, p_missing)
    a, b = ([row[j] for row in table] for j in (0, 1))
    codes = _codes(table, k)
    both = codes[~np.isnan(codes).any(axis=1)].astype(int)
    cross = np.zeros((k, k))
    np.add.at(cross, (both[:, 0], both[:, 1]), 1)
    expected = ir.cohens_kappa(cross, return_results=False)
    assert stats.cohen_kappa(a, b) == pytest.approx(expected, abs=1e-9)


def test_cohen_matrix_matches_pairwise_cohen() -> None:
    table = _random_table(7, 30, 4, 3, p_missing=0.1)
    names, matrix = stats.cohen_matrix(table, ["a", "b", "c", "d"])
    assert names == ["a", "b", "c", "d"]
    assert matrix.shape == (4, 4)
    for i in range(4):
        for j in range(4):
            col_i, col_j = [row[i] for row in table], [row[j] for row in table]
            assert matrix[i, j] == pytest.approx(stats.cohen_kappa(col_i, col_j), abs=1e-12)
    assert np.allclose(np.diag(matrix), 1.0)


@pytest.mark.parametrize(("n_items", "n_raters", "k"), SHAPES)
@pytest.mark.parametrize("p_missing", [0.0, 0.3])
def test_krippendorff_both_paths_match_package(
    n_items: int, n_raters: int, k: int, p_missing: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    kd = pytest.importorskip("krippendorff")
    table = _random_table(n_items * n_raters, n_items, n_raters, k, p_missing)
    expected = kd.alpha(reliability_data=_codes(table, k).T, level_of_measurement="nominal")
    assert stats.krippendorff_alpha_nominal(table) == pytest.approx(expected, abs=1e-9)
    monkeypatch.setitem(sys.modules, "krippendorff", None)  # import now fails: own path
    assert stats.krippendorff_alpha_nominal(table) == pytest.approx(expected, abs=1e-9)


def test_own_krippendorff_with_category_only_in_unpairable_units(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kd = pytest.importorskip("krippendorff")
    table: Table = [["c0", "c0", None], ["c1", "c0", "c1"], ["c2", None, None], ["c1", "c1", "c0"]]
    expected = kd.alpha(reliability_data=_codes(table, 3).T, level_of_measurement="nominal")
    monkeypatch.setitem(sys.modules, "krippendorff", None)
    assert stats.krippendorff_alpha_nominal(table) == pytest.approx(expected, abs=1e-9)


def test_phi_matrix_is_pearson_on_complete_data() -> None:
    table = _random_table(3, 80, 5, 2)
    expected = np.corrcoef(np.array([[v == "c0" for v in row] for row in table]).T)
    codes, labels = stats.encode(table)
    assert np.allclose(stats._phi_matrix(codes, labels.index("c0")), expected, atol=1e-12)


# --- 2. published worked examples -----------------------------------------------------

# Wikipedia, "Fleiss' kappa", section "Worked example": 10 subjects, 14 raters,
# 5 categories; the page reports P_bar = 0.378, P_e = 0.213 and kappa = 0.210.
WIKI_FLEISS = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_wikipedia_worked_example() -> None:
    """Wikipedia "Fleiss' kappa", worked example: kappa = 0.210 (three decimals)."""
    assert round(stats.fleiss_kappa(_from_counts(WIKI_FLEISS)), 3) == 0.210


def test_percent_agreement_wikipedia_fleiss_example() -> None:
    """Wikipedia "Fleiss' kappa", worked example: mean item agreement P_bar = 0.378."""
    assert round(stats.percent_agreement(_from_counts(WIKI_FLEISS)), 3) == 0.378


def test_percent_agreement_by_hand() -> None:
    """Hand-computed: items agree on 3/3, 1/3 and 0/1 pairs; a lone rating has no pair."""
    table: Table = [["a", "a", "a"], ["a", "a", "b"], ["a", "b", None], ["b", None, None]]
    assert stats.percent_agreement(table) == pytest.approx((1 + 1 / 3 + 0) / 3, abs=1e-12)


def test_cohen_wikipedia_worked_example() -> None:
    """Wikipedia "Cohen's kappa", simple example: 50 grant proposals read by A and B,
    yes/yes 20, yes/no 5, no/yes 10, no/no 15; p_o = 0.7, p_e = 0.5, kappa = 0.4."""
    pairs = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10
    pairs += [("no", "no")] * 15
    a, b = zip(*pairs, strict=True)
    assert stats.cohen_kappa(a, b) == pytest.approx(0.4, abs=1e-12)


# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C (nominal
# data, any number of observers, missing data): observers A-D, units 1-12, None = missing.
KRIPP_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


@pytest.mark.parametrize("own", [False, True])
def test_krippendorff_2011_worked_example(own: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Krippendorff (2011), nominal example with 4 observers, 12 units, missing data:
    alpha = 0.743 (three decimals)."""
    if own:
        monkeypatch.setitem(sys.modules, "krippendorff", None)
    else:
        pytest.importorskip("krippendorff")
    units = [list(unit) for unit in zip(*KRIPP_2011, strict=True)]
    assert round(stats.krippendorff_alpha_nominal(units), 3) == 0.743


# --- 3. bootstrap ---------------------------------------------------------------------


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    table = _random_table(11, 40, 4, 2)
    first = intervals.bootstrap_ci(stats.fleiss_kappa, table, n_resamples=300, seed=5)
    assert first == intervals.bootstrap_ci(stats.fleiss_kappa, table, n_resamples=300, seed=5)
    assert first != intervals.bootstrap_ci(stats.fleiss_kappa, table, n_resamples=300, seed=6)


def test_bootstrap_interval_contains_point() -> None:
    table = _random_table(12, 60, 5, 2)
    e = intervals.bootstrap_ci(stats.krippendorff_alpha_nominal, table, 500)
    assert e.low < e.point < e.high
    assert e.low > 0.0 and e.high < 1.0
    assert e.resamples_used == 500  # alpha is defined on every resample of this table


def test_bootstrap_n_resamples_and_level() -> None:
    table = _random_table(13, 30, 3, 2)
    calls = 0

    def counting(t: Any) -> float:
        nonlocal calls
        calls += 1
        return stats.percent_agreement(t)

    e90 = intervals.bootstrap_ci(counting, table, n_resamples=123, level=0.9)
    assert calls == 124  # the point estimate, then one call per resample
    e99 = intervals.bootstrap_ci(stats.percent_agreement, table, 123, level=0.99)
    assert e99.low <= e90.low and e90.high <= e99.high


def test_bootstrap_skips_undefined_resamples_and_says_how_many_it_used() -> None:
    table = [["a", "b"], ["a", "a"], ["b", "b"], ["a", "a"]]
    kept: list[bool] = []

    def defined_if_first_kept(t: Any) -> float:
        # nan unless item 0 (the only disagreement) was drawn
        kept.append(any(list(row) == ["a", "b"] for row in t))
        return 1.0 if kept[-1] else math.nan

    e = intervals.bootstrap_ci(defined_if_first_kept, table, 200)
    assert (e.point, e.low, e.high) == (1.0, 1.0, 1.0)
    # kept[0] is the point estimate; P(item 0 never drawn in 4 draws) = (3/4)**4, so some drop
    assert e.resamples_used == sum(kept[1:]) < 200
    seen = iter([0.5])
    e = intervals.bootstrap_ci(lambda t: next(seen, math.nan), table, 50)
    assert e.point == 0.5 and math.isnan(e.low) and math.isnan(e.high)  # no resample defined
    assert e.resamples_used == 0


def test_bootstrap_degenerate_inputs() -> None:
    e = intervals.bootstrap_ci(stats.percent_agreement, [["a", "b"]], 10)
    assert e.point == 0.0 and math.isnan(e.low) and math.isnan(e.high) and e.resamples_used == 0
    e = intervals.bootstrap_ci(stats.fleiss_kappa, [["a"] * 3] * 5)
    assert all(math.isnan(v) for v in (e.point, e.low, e.high)) and e.resamples_used == 0
    with pytest.raises(ValueError, match="n_resamples"):
        intervals.bootstrap_ci(stats.fleiss_kappa, [["a", "b"]] * 3, n_resamples=0)
    with pytest.raises(ValueError, match="level"):
        intervals.bootstrap_ci(stats.fleiss_kappa, [["a", "b"]] * 3, level=1.0)


# --- 4. effective votes ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["mean_r", "eigen"])
def test_effective_votes_identical_raters_is_one(method: Any) -> None:
    column = ["ship", "skip", "ship", "ship", "skip", None, "skip"]
    table = [[v] * 6 for v in column]
    assert stats.effective_votes(table, "ship", method) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("method", ["mean_r", "eigen"])
def test_effective_votes_independent_raters_near_n(method: Any) -> None:
    rng = np.random.default_rng(2024)
    verdicts = rng.choice(["ship", "skip"], size=(3000, 6)).tolist()
    assert stats.effective_votes(verdicts, "ship", method) == pytest.approx(6.0, abs=0.3)


@pytest.mark.parametrize("method", ["mean_r", "eigen"])
def test_effective_votes_by_hand(method: Any) -> None:
    """A and B identical, C uncorrelated with both: r = (1, 0, 0), n_eff = 3 / (5/3) = 1.8;
    eigenvalues (2, 1, 0) give 3**2 / 5 = 1.8 as well."""
    a = ["ship", "ship", "skip", "skip"]
    c = ["ship", "skip", "ship", "skip"]
    table = [list(row) for row in zip(a, a, c, strict=True)]
    assert stats.effective_votes(table, "ship", method) == pytest.approx(1.8, abs=1e-12)


def test_effective_votes_methods_differ_on_opposed_raters() -> None:
    table = [["ship", "skip"], ["skip", "ship"], ["ship", "skip"]]
    assert stats.effective_votes(table) == 2.0  # r = -1: clamped to n
    assert stats.effective_votes(table, method="eigen") == pytest.approx(1.0)  # sign-blind


def test_effective_votes_eigen_is_participation_ratio() -> None:
    table = _random_table(21, 50, 5, 2, p_missing=0.1)
    codes, labels = stats.encode(table)
    r = stats._phi_matrix(codes, labels.index("c0"))
    assert stats.effective_votes(table, "c0", "eigen") == pytest.approx(25 / (r**2).sum(), abs=1e-9)


def test_effective_votes_constant_rater_and_no_overlap() -> None:
    varying = ["ship", "skip", "ship", "skip"]
    assert stats.effective_votes([[v, "ship"] for v in varying]) == 1.0  # counted redundant
    # raters 0 and 1 share no item: that pair is left out, leaving r(0,2) = r(1,2) = 0
    table = [
        ["ship", None, "ship"],
        ["skip", None, "ship"],
        ["ship", None, "skip"],
        ["skip", None, "skip"],
        [None, "ship", "ship"],
        [None, "skip", "ship"],
        [None, "ship", "skip"],
        [None, "skip", "skip"],
    ]
    assert stats.effective_votes(table) == pytest.approx(3.0)
    assert math.isnan(stats.effective_votes([["ship", None], [None, "skip"]]))


def test_effective_votes_leaves_out_a_rater_who_shares_no_two_items_with_anyone() -> None:
    independent = [["ship", "ship"], ["ship", "skip"], ["skip", "ship"], ["skip", "skip"]]
    assert stats.effective_votes(independent) == pytest.approx(2.0)
    silent = [[*row, None] for row in independent]  # a third rater whose every review failed
    assert stats.effective_votes(silent) == pytest.approx(2.0)
    lone = [[*row, v] for row, v in zip(independent, ["ship", None, None, None], strict=True)]
    assert stats.effective_votes(lone) == pytest.approx(2.0)  # one shared item is no pair
    assert stats.effective_votes(silent, method="eigen") == pytest.approx(2.0)


# --- 5. degenerate cases and errors ---------------------------------------------------


def test_single_category_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    table = [["ship"] * 4] * 6
    assert math.isnan(stats.fleiss_kappa(table))
    assert math.isnan(stats.krippendorff_alpha_nominal(table))
    assert math.isnan(stats.cohen_kappa(["ship"] * 5, ["ship"] * 5))
    assert np.isnan(stats.cohen_matrix(table)[1]).all()
    assert stats.percent_agreement(table) == 1.0  # agreement itself is still defined
    assert stats.effective_votes(table) == 1.0
    monkeypatch.setitem(sys.modules, "krippendorff", None)
    assert math.isnan(stats.krippendorff_alpha_nominal(table))


def test_a_rater_with_one_verdict_throughout() -> None:
    """What the agreement note promises: kappa 0 against a rater who varies, null only
    with itself or an identical constant rater; Fleiss and alpha stay defined."""
    constant, varying, other = (
        ["ship"] * 4,
        ["ship", "skip", "ship", "skip"],
        ["skip", "skip", "ship", "ship"],
    )
    assert stats.cohen_kappa(constant, varying) == 0.0
    assert stats.cohen_kappa(constant, ["skip"] * 4) == 0.0
    assert math.isnan(stats.cohen_kappa(constant, constant))
    table = [list(row) for row in zip(constant, varying, other, strict=True)]
    kappa = stats.cohen_matrix(table)[1]
    assert math.isnan(kappa[0, 0]) and kappa[0, 1] == 0.0 and kappa[0, 2] == 0.0
    assert stats.fleiss_kappa(table) == pytest.approx(-0.125)
    assert stats.krippendorff_alpha_nominal(table) == pytest.approx(-0.03125)


def test_no_item_with_two_ratings() -> None:
    table = [["ship", None], [None, "skip"], ["skip", None]]
    assert math.isnan(stats.percent_agreement(table))
    assert math.isnan(stats.fleiss_kappa(table))
    assert math.isnan(stats.krippendorff_alpha_nominal(table))
    assert math.isnan(stats.cohen_kappa(["a", None], [None, "b"]))


def test_empty_and_single_rater() -> None:
    for f in (stats.percent_agreement, stats.fleiss_kappa, stats.krippendorff_alpha_nominal):
        assert math.isnan(f([]))
    assert stats.ship_rate([]) == []
    assert math.isnan(stats.effective_votes([]))
    assert math.isnan(stats.cohen_kappa([], []))
    single = [["ship"], ["skip"], ["ship"]]
    assert math.isnan(stats.fleiss_kappa(single))
    assert stats.effective_votes(single) == 1.0


def test_fleiss_drops_incomplete_items() -> None:
    table: Table = [["a", "a"], ["a", "b"], ["b", "b"], ["a", None]]
    assert stats.fleiss_kappa(table) == pytest.approx(stats.fleiss_kappa(table[:3]))
    assert math.isnan(stats.fleiss_kappa([[v, None] for v in "abab"]))  # an empty column


def test_ship_rate() -> None:
    table = [["ship", "skip", None], ["ship", None, None], ["skip", "skip", None]]
    rates = stats.ship_rate(table)
    assert rates[:2] == [pytest.approx(2 / 3), 0.0]
    assert math.isnan(rates[2])
    assert stats.ship_rate([["yes", "no"]], positive="yes") == [1.0, 0.0]
    assert math.isnan(stats.ship_rate([[math.nan, "ship"]])[0])  # float NaN is missing


@pytest.mark.parametrize("bad", [["ship", "skip"], [["ship"], ["ship", "skip"]], [[1], 2]])
def test_malformed_tables_raise(bad: Any) -> None:
    with pytest.raises(ValueError, match="ratings"):
        stats.fleiss_kappa(bad)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="same length"):
        stats.cohen_kappa(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="method"):
        stats.effective_votes([["ship", "skip"]], method="pca")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rater names"):
        stats.cohen_matrix([["a", "b"]], ["only-one"])
    with pytest.raises(ValueError, match="rater names"):
        intervals.agreement([["a", "b"]], ["only-one"], n_resamples=5)


# --- summary --------------------------------------------------------------------------


def test_agreement_to_dict_is_json_and_consistent() -> None:
    table = _random_table(31, 25, 3, 2)
    table = [[None if v is None else {"c0": "ship", "c1": "skip"}[v] for v in r] for r in table]
    table[0][0] = None
    names = ["builder@a", "skeptic@a", "futurist@b"]
    again = intervals.agreement(table, names, n_resamples=100, seed=3)
    summary = again.to_dict()
    assert json.loads(json.dumps(summary, allow_nan=False)) == summary
    assert summary["raters"] == names and summary["n_items"] == 25
    assert summary["categories"] == ["ship", "skip"]
    assert summary["krippendorff_alpha"]["point"] == stats.krippendorff_alpha_nominal(table)
    assert summary["fleiss_kappa"]["point"] == stats.fleiss_kappa(table)
    ci = summary["percent_agreement"]
    assert ci["low"] <= ci["point"] <= ci["high"]
    assert summary["ship_rate"] == dict(zip(names, stats.ship_rate(table), strict=True))
    assert summary["cohen_kappa"] == stats.cohen_matrix(table)[1].tolist()
    assert summary["percent_agreement"]["resamples_used"] == 100
    assert again.effective_votes.point == stats.effective_votes(table)


def test_agreement_undefined_values_become_none() -> None:
    summary = intervals.agreement([["ship", "ship"], ["ship", "ship"]], n_resamples=10).to_dict()
    assert summary["fleiss_kappa"] == {"point": None, "low": None, "high": None, "resamples_used": 0}
    assert summary["raters"] == ["rater0", "rater1"]
    json.dumps(summary, allow_nan=False)
