"""Tests of panel.analysis.variance: planted panels, statsmodels, missing cells, degenerate panels."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import pytest

np = pytest.importorskip("numpy")

from panel.analysis.judges import MISSING, Judgments  # noqa: E402
from panel.analysis.variance import COMPONENTS, variance_split  # noqa: E402

SKIP, SHIP = 0, 1
PERSONAS = [0.15, -0.15, 0.05, -0.05]  # planted persona effects on the ship probability
MEMBERS = [0.12, 0.0, -0.12]
PAIRS = 0.1 * np.outer([1, -1, 1, -1], [1, -1, 0])  # persona x member: rows and columns sum to 0
TOOL = 0.2  # half the tools +0.2, half -0.2
ALL = ([0.1, -0.1, 0.05, -0.05], [0.08, 0.0, -0.08], 0.6 * PAIRS)  # every part at once, P(ship) <= 0.94


def panel(
    n: int,
    alpha: Any = (0, 0, 0, 0),
    beta: Any = (0, 0, 0),
    gamma: Any = None,
    *,
    seed: int = 0,
    missing: float = 0.0,
) -> Judgments:
    """Verdicts drawn with P(ship) = 0.5 + tool + persona + member + persona x member."""
    rng = np.random.default_rng(seed)
    alpha, beta = np.asarray(alpha, dtype=float), np.asarray(beta, dtype=float)
    gamma = np.zeros((len(alpha), len(beta))) if gamma is None else np.asarray(gamma)
    tool = np.where(np.arange(n) % 2 == 0, TOOL, -TOOL)
    prob = 0.5 + tool[:, None, None] + alpha[None, :, None] + beta[None, None, :] + gamma[None]
    assert prob.min() >= 0 and prob.max() <= 1, "a planted effect must keep P(ship) within [0, 1]"
    codes = np.where(rng.random(prob.shape) < prob, SHIP, SKIP).reshape(n, -1)
    codes[rng.random(codes.shape) < missing] = MISSING
    persona_of, member_of = np.divmod(np.arange(len(alpha) * len(beta)), len(beta))
    return Judgments(
        tools=[f"tool{i}" for i in range(n)],
        personas=["optimist", "skeptic", "pragmatist", "purist"][: len(alpha)],
        members=["openai:a", "anthropic:b", "mistral:c"][: len(beta)],
        categories=["skip", "ship"],
        persona_of=persona_of.astype(np.int64),
        member_of=member_of.astype(np.int64),
        codes=codes.astype(np.int64),
        cost=np.zeros(codes.shape),
    )


def planted(alpha: Any = (0, 0, 0, 0), beta: Any = (0, 0, 0), gamma: Any = None) -> dict[str, float]:
    """The shares the simulation plants: each part over the variance of one random verdict."""
    alpha, beta = np.asarray(alpha, dtype=float), np.asarray(beta, dtype=float)
    gamma = np.zeros((len(alpha), len(beta))) if gamma is None else np.asarray(gamma)
    probs = [0.5 + t + alpha[:, None] + beta[None, :] + gamma for t in (TOOL, -TOOL)]
    parts = {
        "tool": TOOL**2,
        "persona": float(np.mean(alpha**2)),
        "member": float(np.mean(beta**2)),
        "persona x member": float(np.mean(gamma**2)),
        "tool x persona": 0.0,
        "tool x member": 0.0,
        "residual": float(np.mean([p * (1 - p) for p in probs])),  # Bernoulli noise
    }
    total = sum(parts.values())
    return {k: v / total for k, v in parts.items()}


def covers(split: Any, truth: dict[str, float], names: list[str]) -> None:
    for name in names:
        share = split.component(name).share
        assert share.low <= truth[name] <= share.high, (name, share, truth[name])


def reaches_zero(split: Any, name: str, below: float = 0.005) -> None:
    share = split.component(name).share
    assert share.low == 0.0 and share.high < below, (name, share)


def test_persona_effect_without_member_effect_is_the_personas() -> None:
    split = variance_split(panel(2000, PERSONAS, seed=1), SHIP, n_resamples=400)
    covers(split, planted(PERSONAS), ["tool", "persona", "residual"])
    reaches_zero(split, "member")
    reaches_zero(split, "persona x member")
    assert [c.name for c in split.components] == list(COMPONENTS)
    assert any("comes from the personas, not the members" in s for s in split.reading)
    assert not any("from the members (models), not" in s for s in split.reading)
    skeptic = next(p for p in split.by_persona if p.persona == "skeptic")
    assert skeptic.offset.high < 0 and skeptic.offset.low <= -0.15 <= skeptic.offset.high
    assert skeptic.members.low == 0.0 and skeptic.own.low > skeptic.members.high
    assert any(
        s.startswith("skeptic ships 15.") and "less often" in s and "not its members'" in s
        for s in split.reading
    )


def test_member_effect_without_persona_effect_is_the_members() -> None:
    split = variance_split(panel(2000, beta=MEMBERS, seed=2), SHIP, n_resamples=400)
    covers(split, planted(beta=MEMBERS), ["tool", "member", "residual"])
    reaches_zero(split, "persona")
    reaches_zero(split, "persona x member")
    assert any("comes from the members (models), not the personas" in s for s in split.reading)
    assert not any("from the personas, not" in s for s in split.reading)
    assert not any("ships" in s for s in split.reading)  # no persona sits apart from the panel


def test_persona_by_member_interaction_alone() -> None:
    split = variance_split(panel(2000, gamma=PAIRS, seed=3), SHIP, n_resamples=400)
    covers(split, planted(gamma=PAIRS), ["persona x member", "residual"])
    reaches_zero(split, "persona")
    reaches_zero(split, "member")
    assert any("Neither the personas nor the members" in s for s in split.reading)
    assert any("particular pairs" in s for s in split.reading)
    for persona in split.by_persona:  # each persona's distance is its members', none its own
        assert persona.own.low == 0.0 and persona.members.low > 0.002, persona  # planted 0.0067


def test_all_parts_planted_with_missing_cells() -> None:
    alpha, beta, gamma = ALL
    j = panel(2000, alpha, beta, gamma, seed=4, missing=0.15)
    j.codes[:, 5][np.random.default_rng(5).random(2000) < 0.5] = MISSING  # one judge failed half its reviews
    j.codes[7] = MISSING  # a tool with no verdict at all
    split = variance_split(j, SHIP, n_resamples=400)
    covers(split, planted(alpha, beta, gamma), list(COMPONENTS))
    assert split.n_tools == 1999
    assert split.n_reviews == int((j.codes != MISSING).sum())
    assert any("intervals overlap" in s or "more from the personas" in s for s in split.reading)


def test_agrees_with_statsmodels_mean_squares_on_a_complete_panel() -> None:
    pd = pytest.importorskip("pandas")
    smf = pytest.importorskip("statsmodels.formula.api")
    anova = pytest.importorskip("statsmodels.stats.anova")
    n, n_p, n_m = 40, 4, 3
    j = panel(n, *ALL, seed=6)
    t, p, m = np.divmod(np.arange(n * n_p * n_m), n_p * n_m)[0], *np.divmod(np.arange(n_p * n_m), n_m)
    rows = pd.DataFrame(
        {"y": (j.codes == SHIP).ravel().astype(float), "t": t, "p": np.tile(p, n), "m": np.tile(m, n)}
    )
    fit = smf.ols("y ~ C(t) + C(p) + C(m) + C(p):C(m) + C(t):C(p) + C(t):C(m)", rows).fit()
    ms = anova.anova_lm(fit)["mean_sq"]
    ms_t, ms_p, ms_m, ms_pm, ms_tp, ms_tm, ms_r = (
        ms[k] for k in ["C(t)", "C(p)", "C(m)", "C(p):C(m)", "C(t):C(p)", "C(t):C(m)", "Residual"]
    )
    expected = {  # expected-mean-square estimators; fixed parts as variances over the panel's levels
        "tool": (ms_t - ms_tp - ms_tm + ms_r) / (n_p * n_m),
        "persona": (n_p - 1) / n_p * (ms_p - ms_tp) / (n * n_m),
        "member": (n_m - 1) / n_m * (ms_m - ms_tm) / (n * n_p),
        "persona x member": (n_p - 1) * (n_m - 1) / (n_p * n_m) * (ms_pm - ms_r) / n,
        "tool x persona": (ms_tp - ms_r) / n_m,
        "tool x member": (ms_tm - ms_r) / n_p,
        "residual": ms_r,
    }
    split = variance_split(j, SHIP, n_resamples=50)
    for c in split.components:
        assert c.variance.point == pytest.approx(max(expected[c.name], 0.0), abs=1e-12), c.name
    total = sum(max(v, 0.0) for v in expected.values())  # the shares are of the parts shown
    assert split.component("persona").share.point == pytest.approx(max(expected["persona"], 0.0) / total)


def test_resample_weights_equal_copied_tools() -> None:
    from panel.analysis.variance import _design, _grid, _statistics, _terms

    j = panel(30, PERSONAS, MEMBERS, seed=7, missing=0.2)
    weights = np.random.default_rng(8).integers(0, 4, 30)
    copied = j.codes.repeat(weights, axis=0)
    ship, seen, personas, _ = _grid(j, SHIP)
    assert ship.shape[0] == 30
    weighted = _statistics(
        (weights[None, :].astype(float) @ _terms(ship, seen)).astype(float), _design(personas, 3)
    )
    tools = [f"t{i}" for i in range(len(copied))]
    whole = variance_split(
        replace(j, tools=tools, codes=copied, cost=np.zeros(copied.shape)), SHIP, n_resamples=10
    )
    for c in whole.components:
        assert c.variance.point == pytest.approx(weighted[f"variance:{c.name}"][0], abs=1e-12)


def test_one_persona_has_no_persona_parts() -> None:
    j = panel(500, PERSONAS, MEMBERS, seed=9)
    split = variance_split(j.subset([0, 1, 2]), SHIP, n_resamples=200)
    for name in ["persona", "persona x member", "tool x persona", "tool x member"]:
        c = split.component(name)
        assert (c.share.point, c.share.low, c.share.high) == (0.0, 0.0, 0.0), name
    assert split.component("member").share.low > 0.01  # planted 0.028
    assert "With one persona nothing varies by persona" in split.reading[0]
    assert any(s.startswith("The members differ: member 2.") for s in split.reading)
    assert not any("not the personas" in s for s in split.reading)


def test_one_member_has_no_member_parts() -> None:
    j = panel(500, PERSONAS, MEMBERS, seed=10)
    split = variance_split(j.subset([1, 4, 7, 10]), SHIP, n_resamples=200)  # member "anthropic:b"
    for name in ["member", "persona x member", "tool x persona", "tool x member"]:
        assert split.component(name).share.point == 0.0, name
    assert split.component("persona").share.low > 0.01  # planted 0.04
    assert "With one member nothing varies by member" in split.reading[0]


def test_one_judge_is_all_residual() -> None:
    split = variance_split(panel(300, PERSONAS, MEMBERS, seed=11).subset([0]), SHIP, n_resamples=100)
    assert split.component("residual").share.point == pytest.approx(1.0)
    assert all(c.share.point == 0.0 for c in split.components[:-1])
    assert "one judge" in split.reading[0]


def test_all_one_verdict_has_nothing_to_split() -> None:
    j = panel(100, PERSONAS, MEMBERS, seed=12)
    j.codes[j.codes != MISSING] = SHIP
    split = variance_split(j, SHIP, n_resamples=100)
    assert all(c.variance.point == 0.0 and math.isnan(c.share.point) for c in split.components)
    assert split.reading == ["Every verdict is the same: there is no variance to split."]
    json.dumps(split.to_dict(), allow_nan=False)


def test_one_tool_gives_nan_and_says_why() -> None:
    split = variance_split(panel(1, PERSONAS, MEMBERS, seed=13), SHIP, n_resamples=100)
    assert all(math.isnan(c.share.low) for c in split.components)
    assert split.reading == ["Too few tools with verdicts (1) to split the variance."]


def test_a_persona_never_on_a_member_is_refused_by_name() -> None:
    j = panel(100, PERSONAS, MEMBERS, seed=14)
    j.codes[:, 4] = MISSING
    with pytest.raises(ValueError, match=r"no verdict from: skeptic / anthropic:b$"):
        variance_split(j, SHIP)
    with pytest.raises(ValueError, match="skeptic / anthropic:b"):
        variance_split(j.subset([c for c in range(12) if c != 4]), SHIP)


def test_json_progress_and_seeded_intervals() -> None:
    j = panel(300, PERSONAS, MEMBERS, seed=15)
    seen: list[tuple[int, int]] = []
    split = variance_split(
        j, SHIP, n_resamples=300, seed=3, progress=lambda done, total: seen.append((done, total))
    )
    assert seen[-1] == (300, 300)
    assert split.to_dict() == variance_split(j, SHIP, n_resamples=300, seed=3).to_dict()
    data = json.loads(json.dumps(split.to_dict(), allow_nan=False))
    assert [c["name"] for c in data["components"]] == list(COMPONENTS)
    assert data["n_tools"] == 300 and data["n_reviews"] == 3600 and data["method"].startswith("crossed")
    assert {"persona", "offset", "own", "members", "own_share"} <= set(data["by_persona"][0])
    # by persona, the persona's own and its members' parts average to the panel's two parts
    own = np.mean([p.own.point for p in split.by_persona])
    assert own == pytest.approx(split.component("persona").variance.point)


def test_shares_and_their_intervals_stay_within_0_and_1_on_a_tiny_panel() -> None:
    # a 9-tool panel printed "residual 121% [57%, 100%]": the point outside its own interval
    for seed in range(10):
        split = variance_split(panel(9, (0.1, -0.1, 0.0, 0.0), (0.0,), seed=seed), SHIP, n_resamples=200)
        for c in split.components:
            if not math.isnan(c.share.low):
                assert 0.0 <= c.share.low <= c.share.high <= 1.0, (seed, c)
                assert 0.0 <= c.share.point <= 1.0, (seed, c)


def test_persona_offsets_are_said_to_be_from_the_panels_mean() -> None:
    split = variance_split(panel(2000, PERSONAS, seed=1), SHIP, n_resamples=200)
    said = [s for s in split.reading if s.startswith("Each persona below is measured from the panel's mean")]
    assert len(said) == 1
    skeptic = next(i for i, s in enumerate(split.reading) if s.startswith("skeptic"))
    assert split.reading.index(said[0]) < skeptic
