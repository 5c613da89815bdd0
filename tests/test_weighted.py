"""The weighted statistics equal the plain ones on the tables their multiplicities expand to."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

np = pytest.importorskip("numpy")

from panel.analysis import bootstrap, intervals, stats, weighted  # noqa: E402

Table = list[list[Any]]


def _random_table(seed: int, n: int, m: int, k: int, p_missing: float) -> Table:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    noise = rng.integers(0, k, (n, m))
    codes = np.where(rng.random((n, m)) < 0.6, truth[:, None], noise)
    names = ["ship", "skip", "maybe"][:k]
    missing = rng.random((n, m)) < p_missing
    return [[None if missing[i, j] else names[codes[i, j]] for j in range(m)] for i in range(n)]


def _constant_rater(seed: int) -> Table:
    table = _random_table(seed, 30, 4, 2, 0.1)
    for row in table:
        row[1] = "skip"  # one verdict throughout
    return table


def _sparse(seed: int) -> Table:
    # Most items have one rating or none, so many resamples leave statistics undefined.
    return _random_table(seed, 12, 3, 2, 0.7)


TABLES: dict[str, Callable[[], Table]] = {
    "two categories": lambda: _random_table(1, 40, 4, 2, 0.0),
    "missing ratings": lambda: _random_table(2, 35, 5, 2, 0.15),
    "three categories": lambda: _random_table(3, 30, 3, 3, 0.1),
    "constant rater": lambda: _constant_rater(4),
    "sparse": lambda: _sparse(5),
    "a rater who rated nothing": lambda: [[*row, None] for row in _random_table(6, 20, 3, 2, 0.1)],
    "positive never used": lambda: [
        ["skip" if v else v for v in row] for row in _random_table(7, 15, 3, 3, 0.1)
    ],
}


def _forms(table: Table) -> dict[str, tuple[Callable[[Any], float], bootstrap.Weighted]]:
    codes, labels = stats.encode(table)
    k = len(labels)
    return {
        "percent_agreement": (stats.percent_agreement, weighted.percent_agreement_w(codes, k)),
        "fleiss_kappa": (stats.fleiss_kappa, weighted.fleiss_kappa_w(codes, k)),
        "krippendorff_alpha": (stats.krippendorff_alpha_nominal, weighted.krippendorff_alpha_w(codes, k)),
        "effective_votes": (stats.effective_votes, weighted.effective_votes_w(codes, labels, "ship")),
    }


@pytest.mark.parametrize("name", TABLES)
def test_weighted_forms_equal_the_statistics_on_the_expanded_table(name: str) -> None:
    table = TABLES[name]()
    array = stats.as_table(table)
    items = np.arange(len(table))
    weights = next(bootstrap.resample_weights(len(table), 150, seed=9))
    undefined = 0
    for stat_name, (plain, fn) in _forms(table).items():
        got = fn(weights)
        assert got.shape == (150,)
        for w, value in zip(weights, got, strict=True):
            expected = plain(array[np.repeat(items, w.astype(int))])
            undefined += math.isnan(expected)
            assert value == pytest.approx(expected, rel=1e-9, abs=1e-12, nan_ok=True), stat_name
        # all ones is the table itself: the weighted form gives the point estimate
        whole = fn(np.ones((1, len(table))))[0]
        assert whole == pytest.approx(plain(table), rel=1e-9, abs=1e-12, nan_ok=True), stat_name
    if name == "sparse":
        assert undefined > 0  # the nan cases were exercised too


def test_agreement_points_are_the_plain_statistics_and_intervals_use_every_resample() -> None:
    table = _random_table(8, 60, 4, 3, 0.1)
    seen: list[tuple[int, int]] = []
    result = intervals.agreement(table, n_resamples=300, seed=2, progress=lambda d, t: seen.append((d, t)))
    assert result.percent_agreement.point == stats.percent_agreement(table)
    assert result.fleiss_kappa.point == stats.fleiss_kappa(table)
    assert result.krippendorff_alpha.point == stats.krippendorff_alpha_nominal(table)
    assert result.effective_votes.point == stats.effective_votes(table)
    assert seen[-1] == (300, 300)
    for e in (result.percent_agreement, result.fleiss_kappa, result.krippendorff_alpha):
        assert e.low <= e.point <= e.high and e.resamples_used == 300


def test_agreement_intervals_are_those_of_bootstrap_ci_on_the_same_seed() -> None:
    # The vectorised intervals and the per-resample wrapper see the same resamples.
    table = _random_table(10, 25, 3, 2, 0.1)
    fast = intervals.agreement(table, n_resamples=200, seed=4)
    slow = intervals.bootstrap_ci(stats.krippendorff_alpha_nominal, table, 200, seed=4)
    assert fast.krippendorff_alpha.point == slow.point
    assert fast.krippendorff_alpha.low == pytest.approx(slow.low)
    assert fast.krippendorff_alpha.high == pytest.approx(slow.high)
    assert fast.krippendorff_alpha.resamples_used == slow.resamples_used


def test_estimate_is_the_one_of_the_bootstrap_module() -> None:
    assert intervals.Estimate is bootstrap.Estimate


def test_effective_votes_without_kept_products_is_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    # Many raters on many items: the products are built per chunk instead of kept.
    table = _random_table(11, 40, 5, 2, 0.1)
    codes, labels = stats.encode(table)
    weights = next(bootstrap.resample_weights(len(table), 50, seed=1))
    kept = weighted.effective_votes_w(codes, labels)(weights)
    monkeypatch.setattr(weighted, "_PRODUCT_CELLS", 0)
    assert np.array_equal(weighted.effective_votes_w(codes, labels)(weights), kept)
