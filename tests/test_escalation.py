"""The rule that says which verdicts may be published unread (panel.analysis.escalation).

The threshold is chosen on simulated editor labels of a panel whose judges' accuracies were
planted, and checked on the truth of the tools the rule never read.
"""

from __future__ import annotations

import math

import pytest

pytest.importorskip("scipy")

import numpy as np

from panel.analysis.escalation import (
    Chosen,
    Refused,
    choose_threshold,
    confidence_of,
    cp_lower,
    minimum_labels,
)
from panel.analysis.judges import judgments
from panel.analysis.latent import dawid_skene
from panel.testing.simulate import CATEGORIES, editor_labels, simulate_panel

#: five judges from weak to fair: the pooled verdict is right on about 87% of tools, below
#: the 0.90 target, so publishing everything would miss it and the rule has to hold some back
MEMBERS = ("sim:a", "sim:b", "sim:c", "sim:d", "sim:e")
ACCURACY = dict(zip((("builder", m) for m in MEMBERS), (0.60, 0.65, 0.70, 0.75, 0.80), strict=True))
TOOLS = 1200


def _panel(seed: int) -> tuple[list[str], list[float], list[str]]:
    """Tools, the unlabelled Dawid-Skene probability of ship, and the truth."""
    panel = simulate_panel(TOOLS, ("builder",), MEMBERS, accuracy=ACCURACY, missing=0.02, seed=seed)
    j = judgments(panel.rows, categories=CATEGORIES)
    model = dawid_skene(j.codes, j.categories)
    truth = dict(zip(panel.tools, panel.truth, strict=True))
    return j.tools, model.posterior[:, j.categories.index("ship")].tolist(), [truth[t] for t in j.tools]


def test_the_closed_form_bound_of_n_agreements_in_n() -> None:
    # With every one of n tools agreeing, the one-sided lower bound is (1 - level) ** (1 / n).
    for n in (1, 5, 29, 300):
        assert cp_lower(n, n, 0.95)[0] == pytest.approx(0.05 ** (1 / n), rel=1e-12)
    assert cp_lower(0, 40, 0.95)[0] == 0.0


def test_the_bound_is_the_lower_end_of_statsmodels_two_sided_interval_at_twice_alpha() -> None:
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    for k, n in ((40, 50), (1, 7), (271, 300)):
        low, _ = proportion.proportion_confint(k, n, alpha=0.10, method="beta")
        assert cp_lower(k, n, 0.95)[0] == pytest.approx(low, rel=1e-9)


def test_the_fewest_labels_is_where_full_agreement_first_reaches_the_target() -> None:
    assert minimum_labels(0.90, 0.95) == 29  # log(0.05) / log(0.9) = 28.4
    assert cp_lower(28, 28, 0.95)[0] < 0.90 <= cp_lower(29, 29, 0.95)[0]
    assert minimum_labels(0.99, 0.95) == 299


def test_too_few_labels_promise_nothing_and_send_every_tool_to_an_editor() -> None:
    tools, p, truth = _panel(0)
    verdict = ["ship" if x >= 0.5 else "skip" for x in p]
    reference = [t if i < 28 else None for i, t in enumerate(truth)]
    found = choose_threshold(p, verdict, reference, target=0.9, level=0.95)
    assert isinstance(found, Refused)
    assert found.code == "too_few_labels" and (found.labels, found.minimum) == (28, 29)
    assert "No guarantee is possible: 28 labelled tools, the rule needs at least 29" in found.sentence
    assert found.decisions == ["editor"] * len(tools)


def test_a_target_the_panel_cannot_meet_is_refused() -> None:
    _, p, truth = _panel(1)
    verdict = ["ship" if x >= 0.5 else "skip" for x in p]
    wrong = ["skip" if t == "ship" else "ship" for t in truth]  # a reference that disagrees every time
    found = choose_threshold(p, verdict, wrong, target=0.9)
    assert isinstance(found, Refused) and found.code == "target_not_met"
    assert found.best_bound is not None and found.best_bound < 0.1


def test_the_threshold_chosen_on_half_the_tools_holds_on_the_other_half_and_on_new_tools() -> None:
    """The promise is about the agreement of every tool the run could hold above the threshold,
    with 95% confidence: on the other half (about 400 published tools) the share seen may fall
    a little below the target by chance, but never so far that it contradicts the target;
    on 10,000 new tools of the same panel (the population) it may miss at most once in ten."""
    fresh = simulate_panel(10_000, ("builder",), MEMBERS, accuracy=ACCURACY, missing=0.02, seed=999)
    fj = judgments(fresh.rows, categories=CATEGORIES)
    truth_of = dict(zip(fresh.tools, fresh.truth, strict=True))
    fresh_truth = np.array([truth_of[t] for t in fj.tools])
    held, population, everything = [], [], []
    for seed in range(10):
        panel = simulate_panel(TOOLS, ("builder",), MEMBERS, accuracy=ACCURACY, missing=0.02, seed=seed)
        j = judgments(panel.rows, categories=CATEGORIES)
        model = dawid_skene(j.codes, j.categories)
        p = model.posterior[:, 0]
        verdict = np.where(p >= 0.5, "ship", "skip")
        truth_of = dict(zip(panel.tools, panel.truth, strict=True))
        truth = np.array([truth_of[t] for t in j.tools])
        chosen = np.random.default_rng(seed).permutation(len(truth)) < len(truth) // 2
        reference = [t if c else None for t, c in zip(truth.tolist(), chosen, strict=True)]
        found = choose_threshold(p.tolist(), verdict.tolist(), reference, target=0.9, level=0.95)
        assert isinstance(found, Chosen), found.sentence
        assert found.labels == len(truth) // 2 and found.bound >= 0.9
        published = np.array([d == "publish" for d in found.decisions])
        assert np.array_equal(published, confidence_of(p.tolist(), verdict.tolist()) >= found.threshold)
        assert found.coverage == pytest.approx(published.mean())
        right = verdict == truth
        unread = ~chosen & published
        held.append((int(right[unread].sum()), int(unread.sum())))
        q = model.posterior_for(fj.codes, range(fj.n_judges))[:, 0]
        said = np.where(q >= 0.5, "ship", "skip")
        above = np.where(said == "ship", q, 1.0 - q) >= found.threshold
        population.append(float((said[above] == fresh_truth[above]).mean()))
        everything.append(float((said == fresh_truth).mean()))
    # Publishing everything would miss the target: the rule had something to hold back.
    assert max(everything) < 0.9
    for k, n in held:  # the upper bound of what the other half shows still reaches the target
        assert 1.0 - cp_lower(n - k, n, 0.95)[0] >= 0.9
    assert sum(k for k, _ in held) / sum(n for _, n in held) >= 0.9
    assert sum(a < 0.9 for a in population) <= 1 and min(population) >= 0.89


def test_editor_labels_are_a_seeded_random_subset_right_at_the_editors_accuracy() -> None:
    panel = simulate_panel(2000, ("builder",), MEMBERS, accuracy=ACCURACY, seed=3)
    truth = dict(zip(panel.tools, panel.truth, strict=True))
    labels = editor_labels(panel, 300)
    assert len(labels) == 300 and all(truth[t] == v for t, v in labels.items())
    assert editor_labels(panel, 300) == labels
    sloppy = editor_labels(panel, 1000, accuracy=0.8, seed=5)
    share = sum(truth[t] == v for t, v in sloppy.items()) / len(sloppy)
    assert math.isclose(share, 0.8, abs_tol=0.04)


def test_the_sequence_stops_at_the_first_threshold_that_fails_rather_than_pick_a_luckier_one() -> None:
    # 200 tools at 0.99 that all agree, 100 at 0.90 of which half agree, 600 at 0.80 that all
    # agree. At 0.90 the bound fails (250 of 300); at 0.80 it would pass again (850 of 900),
    # but keeping the widest threshold that passes after one failed is choosing the luckiest
    # of many tests, and the bound would no longer hold at its level.
    p = [0.99] * 200 + [0.90] * 100 + [0.80] * 600
    verdict = ["ship"] * 900
    reference: list[str | None] = ["ship"] * 200 + ["ship", "skip"] * 50 + ["ship"] * 600
    found = choose_threshold(p, verdict, reference)
    assert isinstance(found, Chosen)
    assert (found.threshold, found.published, found.agreeing, found.tested) == (0.99, 200, 200, 2)
    assert found.coverage == pytest.approx(200 / 900)
    widest = choose_threshold(p, verdict, reference, selection="widest")
    assert isinstance(widest, Chosen) and widest.threshold == 0.80 and widest.published == 900


def test_a_tool_without_a_probability_or_a_verdict_goes_to_an_editor_and_counts_in_the_coverage() -> None:
    p: list[float | None] = [0.02] * 150 + [None, 0.99]
    verdict: list[str | None] = ["skip"] * 150 + ["ship", None]
    reference: list[str | None] = ["skip"] * 150 + ["ship", "ship"]
    found = choose_threshold(p, verdict, reference)
    assert isinstance(found, Chosen) and found.labels == 150
    assert found.decisions[-2:] == ["editor", "editor"] and found.coverage == pytest.approx(150 / 152)
