"""The latent-truth model on simulated panels whose judges' accuracies are planted.

Every panel is drawn from a seeded generator: each judge gives the true class with its
planted probability, else another class at random; some reviews are missing.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from panel.analysis import latent, latent_posteriors
from panel.analysis.latent import accuracy_intervals, dawid_skene

IntArray = npt.NDArray[np.int64]
SHIP_SKIP = ["ship", "skip"]
PLANTED = [0.95, 0.85, 0.75, 0.65, 0.55]


def panel(
    n: int, accuracies: Sequence[float], prevalence: Sequence[float], missing: float, seed: int
) -> tuple[IntArray, IntArray]:
    """(truth, codes) with ``codes[i, j]`` judge j's verdict on tool i, -1 when missing."""
    rng = np.random.default_rng(seed)
    k = len(prevalence)
    truth = rng.choice(k, size=n, p=prevalence).astype(np.int64)
    codes = np.empty((n, len(accuracies)), dtype=np.int64)
    for j, accuracy in enumerate(accuracies):
        wrong = (truth + rng.integers(1, k, size=n)) % k
        codes[:, j] = np.where(rng.random(n) < accuracy, truth, wrong)
    codes[rng.random(codes.shape) < missing] = -1
    return truth, codes


def majority(codes: IntArray, k: int) -> IntArray:
    votes = np.stack([(codes == c).sum(axis=1) for c in range(k)], axis=1)
    return np.argmax(votes, axis=1).astype(np.int64)


@pytest.fixture(scope="module")
def five() -> tuple[IntArray, IntArray]:
    return panel(2000, PLANTED, prevalence=(0.7, 0.3), missing=0.1, seed=0)


def test_planted_accuracies_are_recovered_within_their_intervals(five: tuple[IntArray, IntArray]) -> None:
    _, codes = five
    model = dawid_skene(codes, SHIP_SKIP)
    ticks: list[tuple[int, int]] = []
    intervals = accuracy_intervals(
        codes, SHIP_SKIP, model, seed=1, progress=lambda d, t: ticks.append((d, t))
    )
    assert model.converged
    for planted, estimate, fitted in zip(PLANTED, intervals, model.accuracy, strict=True):
        assert estimate.point == fitted
        assert abs(fitted - planted) < 0.03
        assert estimate.low < planted < estimate.high
        assert estimate.resamples_used == latent.DEFAULT_RESAMPLES
    assert model.priors[0] == pytest.approx(0.7, abs=0.03)
    assert ticks[-1] == (latent.DEFAULT_RESAMPLES, latent.DEFAULT_RESAMPLES)


def test_posterior_verdicts_beat_the_majority_vote(five: tuple[IntArray, IntArray]) -> None:
    truth, codes = five
    model = dawid_skene(codes, SHIP_SKIP)
    latent_right = (model.verdicts() == truth).mean()
    majority_right = (majority(codes, 2) == truth).mean()
    assert latent_right > majority_right + 0.02
    assert model.posterior.shape == (2000, 2)
    assert np.allclose(model.posterior.sum(axis=1), 1.0)


def test_three_categories() -> None:
    accuracies = [0.9, 0.8, 0.7, 0.6, 0.5]
    truth, codes = panel(3000, accuracies, prevalence=(0.5, 0.3, 0.2), missing=0.05, seed=2)
    model = dawid_skene(codes, ["ship", "maybe", "skip"])
    assert model.confusion.shape == (5, 3, 3)
    assert np.allclose(model.confusion.sum(axis=2), 1.0)
    assert np.abs(model.accuracy - accuracies).max() < 0.03
    assert np.abs(model.priors - (0.5, 0.3, 0.2)).max() < 0.03
    assert (model.verdicts() == truth).mean() > (majority(codes, 3) == truth).mean()


def test_a_weight_counts_as_copies_of_a_tool(five: tuple[IntArray, IntArray]) -> None:
    _, codes = five
    weights = np.random.default_rng(3).integers(0, 4, size=len(codes)).astype(np.float64)
    weighted = dawid_skene(codes, SHIP_SKIP, weights=weights, tol=1e-12)
    copied = dawid_skene(np.repeat(codes, weights.astype(np.int64), axis=0), SHIP_SKIP, tol=1e-12)
    assert np.allclose(weighted.confusion, copied.confusion, atol=1e-9)
    assert np.allclose(weighted.priors, copied.priors, atol=1e-9)
    assert weighted.log_likelihood == pytest.approx(copied.log_likelihood)


def test_intervals_are_reproducible_and_narrow_with_more_tools() -> None:
    _, small = panel(300, PLANTED, prevalence=(0.6, 0.4), missing=0.1, seed=4)
    _, large = panel(3000, PLANTED, prevalence=(0.6, 0.4), missing=0.1, seed=4)
    widths = []
    for codes in (small, large):
        model = dawid_skene(codes, SHIP_SKIP)
        first = accuracy_intervals(codes, SHIP_SKIP, model, n_resamples=200, seed=7)
        assert first == accuracy_intervals(codes, SHIP_SKIP, model, n_resamples=200, seed=7)
        widths.append(np.mean([e.high - e.low for e in first]))
    assert widths[1] < widths[0] / 2


def test_posterior_for_a_sub_panel(five: tuple[IntArray, IntArray]) -> None:
    truth, codes = five
    model = dawid_skene(codes, SHIP_SKIP)
    assert np.allclose(model.posterior_for(codes, range(5)), model.posterior)
    best = model.posterior_for(codes, [0])
    said = codes[:, 0] != -1
    assert (np.argmax(best[said], axis=1) == codes[said, 0]).all()
    assert np.allclose(best[~said], model.priors)
    weakest_pair = np.argmax(model.posterior_for(codes, [3, 4]), axis=1)
    assert (weakest_pair == truth).mean() < (model.verdicts() == truth).mean()
    with pytest.raises(ValueError, match="codes has 2 judges, the model 5"):
        model.posterior_for(codes[:, :2], [0, 1])


def test_smoothing_keeps_one_judge_from_pinning_the_posterior() -> None:
    # Judge 0 says "skip" only where all eight others do: unsmoothed, it never errs on "skip".
    _, others = panel(1000, [0.85] * 8, prevalence=(0.7, 0.3), missing=0.0, seed=5)
    judge0 = np.where((others == 1).all(axis=1), 1, 0)
    codes = np.column_stack([judge0, others])
    dissent = np.array([[1] + [0] * 8])  # judge 0 says skip, the eight others ship
    plain = dawid_skene(codes, SHIP_SKIP, smoothing=0.0)
    assert plain.confusion[0, 0, 1] < 1e-12
    assert plain.posterior_for(dissent, range(9))[0, 1] == pytest.approx(1.0)
    smoothed = dawid_skene(codes, SHIP_SKIP)
    assert smoothed.confusion[0, 0, 1] > 0.0
    assert smoothed.posterior_for(dissent, range(9))[0, 0] > 0.9


def test_labels_flipped_by_the_start_are_put_back(five: tuple[IntArray, IntArray]) -> None:
    _, codes = five
    model = dawid_skene(codes, SHIP_SKIP)
    rows = latent._rows(codes, 2)
    flipped_start = latent._vote_shares(rows)[:, ::-1]  # EM starts where the minority is right
    _, fit = latent._fit(codes, 2, max_iter=200, tol=1e-6, smoothing=0.01, weights=None, start=flipped_start)
    assert np.allclose(fit.posterior[:, :, 0][rows.inverse], model.posterior, atol=1e-4)
    assert np.allclose(latent._accuracy(fit.confusion[0], fit.priors[0]), model.accuracy, atol=1e-4)


def test_a_minority_of_adversarial_judges_is_not_flipped() -> None:
    accuracies = [0.9, 0.85, 0.8, 0.2, 0.25]
    truth, codes = panel(2000, accuracies, prevalence=(0.6, 0.4), missing=0.0, seed=6)
    model = dawid_skene(codes, SHIP_SKIP)
    assert np.abs(model.accuracy - accuracies).max() < 0.03
    assert (model.verdicts() == truth).mean() > 0.95


@pytest.mark.parametrize(
    ("codes", "accuracy", "verdicts", "converged"),
    [
        pytest.param([[0], [1], [1], [-1]], [math.nan], [0, 1, 1, -1], False, id="one judge"),
        pytest.param(
            [[0, -1, 0], [1, -1, 1], [1, -1, 0], [0, -1, 0]], [math.nan] * 3, [0, 1, 0, 0], False,
            id="two judges with verdicts",
        ),
        pytest.param(
            [[0, -1, 0, 0], [1, -1, 1, 1], [1, -1, 0, 1], [0, -1, 0, 0]] * 5,
            [1.0, math.nan, 0.75, 1.0], [0, 1, 1, 0] * 5, True, id="a judge with no verdict",
        ),
        pytest.param([[0, 0, 0]] * 5, [1.0] * 3, [0] * 5, True, id="one verdict everywhere"),
        pytest.param([[-1, -1, -1]] * 3, [math.nan] * 3, [-1] * 3, False, id="no verdict at all"),
        pytest.param(np.zeros((0, 3), dtype=np.int64), [math.nan] * 3, [], False, id="no tools"),
    ],
)  # fmt: skip
def test_degenerate_panels_give_defined_results(
    codes: list[list[int]], accuracy: list[float], verdicts: list[int], converged: bool
) -> None:
    array = np.asarray(codes, dtype=np.int64).reshape(len(codes), -1) if len(codes) else np.asarray(codes)
    model = dawid_skene(array, SHIP_SKIP)
    assert np.allclose(model.accuracy, accuracy, equal_nan=True, atol=0.02)
    assert model.verdicts().tolist() == verdicts
    assert np.isfinite(model.confusion).all() and np.isfinite(model.posterior).all()
    assert model.converged == converged
    estimates = accuracy_intervals(array, SHIP_SKIP, model, n_resamples=50)
    for estimate, fitted in zip(estimates, accuracy, strict=True):
        assert math.isnan(fitted) == math.isnan(estimate.low) == (estimate.resamples_used == 0)


def test_codes_outside_the_categories_are_refused() -> None:
    with pytest.raises(ValueError, match=r"codes must be -1 \(missing\) or 0..1"):
        dawid_skene(np.array([[0, 2]]), SHIP_SKIP)
    with pytest.raises(ValueError, match="weights must be 1 non-negative numbers"):
        dawid_skene(np.array([[0, 1]]), SHIP_SKIP, weights=np.array([-1.0]))


def crowdkit_fit(
    codes: IntArray, **options: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Posteriors of judged tools and confusions [j, true, given] from crowd-kit's DawidSkene."""
    pd = pytest.importorskip("pandas")
    aggregation = pytest.importorskip("crowdkit.aggregation")
    i, j = np.nonzero(codes != -1)
    data = pd.DataFrame({"task": i, "worker": j, "label": codes[i, j]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # crowd-kit 1.4.2 uses pandas' old inplace=
        fitted = aggregation.DawidSkene(**options).fit(data)
    k = codes.max() + 1
    posterior = fitted.probas_.reindex(columns=range(k)).sort_index().to_numpy()
    errors = fitted.errors_  # index (worker, given), columns true
    confusion = np.array([
        [[errors[t].get((w, g), 0.0) for g in range(k)] for t in range(k)] for w in range(codes.shape[1])
    ])  # fmt: skip
    return posterior, confusion


@pytest.mark.parametrize("n_iter", [1, 3, 10, 100])
def test_each_em_step_matches_crowdkit(n_iter: int) -> None:
    # Unsmoothed, both start from vote shares and alternate the same steps: after n E steps the
    # posteriors agree; our confusions come from the M step before them, crowd-kit's from one more.
    _, codes = panel(1500, PLANTED, prevalence=(0.5, 0.3, 0.2), missing=0.1, seed=8)
    judged = (codes != -1).any(axis=1)
    ours = dawid_skene(codes, ["a", "b", "c"], smoothing=0.0, max_iter=n_iter, tol=-1.0)
    theirs, _ = crowdkit_fit(codes, n_iter=n_iter, tol=-np.inf)
    _, confusion = crowdkit_fit(codes, n_iter=n_iter - 1, tol=-np.inf)
    assert ours.iterations == n_iter
    assert np.allclose(ours.posterior[judged], theirs, rtol=0, atol=1e-9)
    assert np.allclose(ours.confusion, confusion, rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", [9, 10, 11])
def test_the_default_fit_agrees_with_crowdkits_default_fit(seed: int) -> None:
    # Each side's defaults (ours smoothed, stopping on the parameters; crowd-kit's unsmoothed,
    # at most 100 iterations, stopping on its bound): verdicts differ only on a few tools
    # that sit near 50:50, accuracies by less than 0.005.
    _, codes = panel(1500, PLANTED, prevalence=(0.7, 0.3), missing=0.1, seed=seed)
    judged = (codes != -1).any(axis=1)
    ours = dawid_skene(codes, SHIP_SKIP)
    theirs, confusion = crowdkit_fit(codes)
    their_priors = theirs.mean(axis=0)
    their_accuracy = (their_priors * np.diagonal(confusion, axis1=1, axis2=2)).sum(axis=1)
    assert np.abs(ours.accuracy - their_accuracy).max() < 0.005
    differ = ours.verdicts()[judged] != np.argmax(theirs, axis=1)
    assert differ.mean() < 0.005
    assert (np.abs(ours.posterior[judged][differ, 0] - 0.5) < 0.1).all()


def test_fit_on_labels_counts_reliabilities_on_the_labelled_tools_and_scores_every_tool() -> None:
    truth, codes = panel(3000, PLANTED, [0.6, 0.4], 0.05, seed=11)
    labels = np.full(len(truth), -1, dtype=np.int64)
    labels[:600] = truth[:600]
    model = latent_posteriors.fit_on_labels(codes, labels, SHIP_SKIP)
    # each judge's accuracy, counted on 600 labelled tools, is near the planted one
    assert np.allclose(model.accuracy, PLANTED, atol=0.05)
    # the unlabelled tools are scored too, and the reliabilities weigh the votes: the
    # posterior's verdict beats the plain majority on the tools no label touched
    held = slice(600, None)
    assert (model.verdicts()[held] == truth[held]).mean() > (majority(codes, 2)[held] == truth[held]).mean()
    # a judge whose verdicts never fall on a labelled tool moves nothing
    silent = codes.copy()
    silent[:600, 4] = -1
    quiet = latent_posteriors.fit_on_labels(silent, labels, SHIP_SKIP)
    assert math.isnan(quiet.accuracy[4]) and np.allclose(quiet.confusion[4], 0.5)
    with pytest.raises(ValueError, match="no tool is labelled"):
        latent_posteriors.fit_on_labels(codes, np.full(len(truth), -1), SHIP_SKIP)


def test_posterior_intervals_hold_each_tools_posterior_and_widen_where_judges_disagree() -> None:
    _, codes = panel(300, [0.9, 0.85, 0.8, 0.75, 0.7], [0.5, 0.5], 0.0, 5)
    model = dawid_skene(codes, SHIP_SKIP)
    low, high = latent_posteriors.posterior_intervals(codes, model, 0, n_resamples=100, seed=1)
    point = model.posterior[:, 0]
    assert low.shape == high.shape == point.shape
    assert np.all(low <= point + 1e-9) and np.all(point <= high + 1e-9)
    unanimous = (codes == codes[:, :1]).all(axis=1)
    width = high - low
    assert width[unanimous].mean() < width[~unanimous].mean()
    # the same resamples give the same intervals; one tool has no resample to vary
    again = latent_posteriors.posterior_intervals(codes, model, 0, n_resamples=100, seed=1)
    assert np.array_equal(again[0], low) and np.array_equal(again[1], high)
    one = dawid_skene(codes[:1], SHIP_SKIP)
    assert latent_posteriors.posterior_intervals(codes[:1], one, 0)[0][0] == one.posterior[0, 0]


def test_posterior_intervals_of_a_planted_panel_stay_within_0_005_of_refits_run_to_the_end() -> None:
    _, codes = panel(400, [0.9, 0.85, 0.8, 0.75, 0.7, 0.65], (0.6, 0.4), 0.1, 3)
    model = dawid_skene(codes, SHIP_SKIP)
    low, high = latent_posteriors.posterior_intervals(codes, model, 0)
    full_low, full_high = latent_posteriors.posterior_intervals(codes, model, 0, max_iter=5000, tol=1e-9)
    assert model.converged
    assert np.median(high - low) > 0.005  # the intervals are not all points, so the check bites
    assert np.abs(low - full_low).max() < 0.005 and np.abs(high - full_high).max() < 0.005


def test_a_near_chance_panel_costs_one_fit_and_no_refit(monkeypatch: pytest.MonkeyPatch) -> None:
    # Judges at 0.50-0.55: EM does not settle, and refits would each run to max_iter.
    _, codes = panel(400, [0.5] * 6 + [0.55] * 6, (0.5, 0.5), 0.0, 0)
    iterations: list[int] = []
    em = latent._em

    def counted(*args: object, **kwargs: object) -> latent._Fit:
        fit = em(*args, **kwargs)  # type: ignore[arg-type]
        iterations.extend(int(i) for i in fit.iterations)
        return fit

    monkeypatch.setattr(latent, "_em", counted)
    model = dawid_skene(codes, SHIP_SKIP)
    low, high = latent_posteriors.posterior_intervals(codes, model, 0)
    assert not model.converged
    assert iterations == [200]  # the point fit alone: no resample is refitted
    assert np.all(low == 0.0) and np.all(high == 1.0)  # nothing is known: the full range
    again = latent_posteriors.posterior_intervals(codes, model, 0, seed=5)
    assert np.array_equal(again[0], low) and np.array_equal(again[1], high)
