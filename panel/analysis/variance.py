"""Where disagreement comes from: the variance of verdicts split into tool, persona and member parts.

**Model.** A verdict is 1 when it is the positive one (ship), else 0. On the grid of tools
x personas x members it is written as a linear probability model with crossed effects::

    y[i,p,m] = mu + a[i] + alpha[p] + beta[m] + gamma[p,m] + ta[i,p] + tb[i,m] + e[i,p,m]

Tools are a sample from a catalog: ``a`` (tool), ``ta`` (tool x persona), ``tb`` (tool x
member) and ``e`` are random, uncorrelated, with variances estimated for the catalog. The
personas and members are the panel's own, so ``alpha``, ``beta`` and ``gamma`` are fixed;
their parts are the finite-population variances of the effects over the panel's own levels
(A. Gelman (2005), "Analysis of variance -- why it is more important than ever", *Annals of
Statistics* 33(1), 1-53), here with divisors P, M and PM, so that the seven parts add
up to the variance of one verdict drawn at random: a random tool and a random judge of the
panel. With one verdict per tool and judge, the tool x persona x member interaction cannot
be told from noise: both are the **residual**.

**Estimator.** Moments, i.e. ANOVA estimators of variance components (S. R. Searle,
G. Casella & C. E. McCulloch (1992), *Variance Components*, Wiley, ch. 4; the same crossed
tools x raters x occasions design as R. L. Brennan (2001), *Generalizability Theory*,
Springer). Centred on the judges' mean verdicts, the covariance of two verdicts on one tool
is ``tool + tool x persona`` for the same persona on two members, ``tool + tool x member``
for two personas on the same member, ``tool`` otherwise, and the sum of the four random
parts for a verdict with itself: four pooled covariances give the four random parts. The
fixed parts are the spread of the judges' mean verdicts, less the spread their sampling
error alone would give (a quadratic form's expectation, ``mu'L mu + tr(L V)``). On a
complete panel this reproduces the classical mean-square estimators exactly. A negative
estimate is shown as 0, the usual truncation (Searle et al. 1992), in points and resamples,
and named in ``truncated`` (the reading says so); shares divide by the sum of the parts
shown (``total``), so they add up to 1 and each share is its variance over that sum.

**Missing cells** (failed reviews) are taken as missing at random: each judge's mean uses
the tools it judged, each covariance the tools both judges judged, with the divisor that
keeps it unbiased for those counts; a tool with no verdict is left out. Every persona must
have at least one verdict on every member.

**Intervals** are percentile bootstrap intervals over tools only, the one random factor here
(resampling a fixed factor would answer another question: A. B. Owen (2007), "The pigeonhole
bootstrap", *Annals of Applied Statistics* 1(2), 386-411). Each resample is a vector of
multiplicities, so every statistic is one matrix product of it with per-tool moment terms.

**Degenerate panels.** With one persona, the persona, persona x member and tool x persona
parts are 0 (nothing varies by persona) and tool x member cannot be told from the residual,
so it is reported in it; one member likewise. With one judge all variance is residual.
When every verdict is the same there is no variance: parts are 0, shares ``nan``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from .bootstrap import Estimate, Progress, percentile, resample_weights
from .intervals import json_ready
from .judges import MISSING, Judgments
from .variance_reading import reading

__all__ = ["COMPONENTS", "Component", "PersonaSplit", "VarianceSplit", "variance_split"]

FloatArray = npt.NDArray[np.float64]
COMPONENTS = (
    "tool", "persona", "member", "persona x member", "tool x persona", "tool x member", "residual",
)  # fmt: skip
_ROUNDING = 1e-12  # a part this small is floating-point noise (0/1 verdicts: real parts exceed 1/n**2)
_NONE = Estimate(math.nan, math.nan, math.nan, 0)
METHOD = (
    "crossed-effects linear probability model, tools random, personas and members fixed "
    "(finite-population parts); moment (ANOVA) estimators; percentile bootstrap over tools"
)


@dataclass(frozen=True)
class Component:
    """One part of the verdict variance: its share of the total and its size (verdicts are 0/1)."""

    name: str
    share: Estimate
    variance: Estimate


@dataclass(frozen=True)
class PersonaSplit:
    """How far one persona's judges sit from the panel, and why.

    ``offset`` is the persona's mean verdict minus the panel's, over its members (signed).
    ``own`` is ``offset**2`` and ``members`` the mean square of its persona x member effects:
    the persona itself against how its members move it (each less its sampling error).
    Averaged over personas they are the persona and persona x member parts.
    ``own_share`` is ``own / (own + members)``.
    """

    persona: str
    offset: Estimate
    own: Estimate
    members: Estimate
    own_share: Estimate


@dataclass(frozen=True)
class VarianceSplit:
    """The verdict variance split into :data:`COMPONENTS`, with bootstrap intervals over tools."""

    method: str
    components: list[Component]
    by_persona: list[PersonaSplit]
    n_tools: int
    n_reviews: int
    reading: list[str]
    level: float = 0.95
    #: the sum of the parts shown: every share is a part's variance over it
    total: Estimate = _NONE
    #: the parts whose point estimate fell below 0, shown as 0
    truncated: list[str] = field(default_factory=list)

    def component(self, name: str) -> Component:
        """The part called ``name`` (one of :data:`COMPONENTS`)."""
        return next(c for c in self.components if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, ``nan`` as ``None``."""
        result: dict[str, Any] = json_ready(asdict(self))
        return result


@dataclass(frozen=True)
class _Design:
    """The panel's grid: cell ``c = p * M + m``, with the matrices every resample reuses."""

    personas: list[str]
    n_p: int
    n_m: int
    kinds: dict[str, FloatArray]  # C x C masks: self, same persona, same member, neither
    fixed: dict[str, FloatArray]  # C x C projections onto persona, member, persona x member effects
    offset: FloatArray  # P x C: alpha_p = offset @ mu
    within: FloatArray  # P x C x C: sum_m gamma_pm**2 = mu' within[p] mu


def _design(personas: list[str], n_m: int) -> _Design:
    n_p = len(personas)
    p_of, m_of = np.divmod(np.arange(n_p * n_m), n_m)
    same_p = (p_of[:, None] == p_of[None, :]).astype(np.float64)
    same_m = (m_of[:, None] == m_of[None, :]).astype(np.float64)
    eye = np.eye(n_p * n_m)
    kinds = {
        "self": eye,
        "persona": same_p - eye,
        "member": same_m - eye,
        "neither": (1.0 - same_p) * (1.0 - same_m),
    }

    def centre(k: int) -> FloatArray:
        return np.eye(k) - np.full((k, k), 1.0 / k, dtype=np.float64)

    def mean(k: int) -> FloatArray:
        return np.full((k, k), 1.0 / k)

    def kron(a: FloatArray, b: FloatArray) -> FloatArray:
        return np.kron(a, b).astype(np.float64)

    fixed = {
        "persona": kron(centre(n_p), mean(n_m)),
        "member": kron(mean(n_p), centre(n_m)),
        "persona x member": kron(centre(n_p), centre(n_m)),
    }
    offset = np.kron(np.eye(n_p), np.full((1, n_m), 1.0 / n_m)) - 1.0 / (n_p * n_m)
    interaction = fixed["persona x member"]
    within = np.stack(
        [interaction.T @ np.diag((p_of == p).astype(np.float64)) @ interaction for p in range(n_p)]
    )
    return _Design(personas, n_p, n_m, kinds, fixed, offset, within)


def _terms(ship: FloatArray, seen: FloatArray) -> npt.NDArray[np.float32]:
    """Per tool, the moment terms every statistic is a weighted sum of.

    ``y_c y_d`` and ``seen_c seen_d`` (symmetric: upper triangles) and ``seen_c y_d`` for
    every pair of cells. They are 0/1, so weighted sums of them are whole numbers, exact in
    float32 below 2**24 tools: the matrix product runs in float32 at twice the speed.
    """
    upper = np.triu_indices(ship.shape[1])
    return np.concatenate(
        [
            (ship[:, :, None] * ship[:, None, :])[:, upper[0], upper[1]],
            (seen[:, :, None] * ship[:, None, :]).reshape(ship.shape[0], -1),
            (seen[:, :, None] * seen[:, None, :])[:, upper[0], upper[1]],
        ],
        axis=1,
    ).astype(np.float32)


def _unpack(sums: FloatArray, c: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    b, upper, half = sums.shape[0], np.triu_indices(c), c * (c + 1) // 2
    yy, nn = np.empty((b, c, c)), np.empty((b, c, c))
    for full, packed in ((yy, sums[:, :half]), (nn, sums[:, half + c * c :])):
        full[:, upper[0], upper[1]] = packed
        full[:, upper[1], upper[0]] = packed
    return yy, sums[:, half : half + c * c].reshape(b, c, c), nn


def _statistics(sums: FloatArray, d: _Design) -> dict[str, FloatArray]:
    """Every reported statistic for each row of weighted term sums (see :func:`_terms`)."""
    b = sums.shape[0]
    c = d.n_p * d.n_m
    yy, yd, nn = _unpack(sums, c)
    n_c = np.diagonal(nn, axis1=1, axis2=2)
    mu = np.diagonal(yd, axis1=1, axis2=2) / n_c
    mu_c, mu_d = mu[:, :, None], mu[:, None, :]
    prod = yy - mu_c * yd - mu_d * yd.transpose(0, 2, 1) + mu_c * mu_d * nn
    n_cd = n_c[:, :, None] * n_c[:, None, :]
    # E[prod] = cov * divisor when both means are estimated from the same weighted tools.
    divisor = nn - nn / n_c[:, :, None] - nn / n_c[:, None, :] + nn * nn / n_cd
    cov = {k: (prod * m).sum(axis=(1, 2)) / (divisor * m).sum(axis=(1, 2)) for k, m in d.kinds.items()}
    zero = np.zeros(b)
    if d.n_p > 1 and d.n_m > 1:
        tool, t_p, t_m = cov["neither"], cov["persona"] - cov["neither"], cov["member"] - cov["neither"]
    elif d.n_p > 1:  # one member: tool x persona cannot be told from noise
        tool, t_p, t_m = cov["member"], zero, zero
    elif d.n_m > 1:  # one persona: tool x member cannot be told from noise
        tool, t_p, t_m = cov["persona"], zero, zero
    else:  # one judge: the tool's part cannot be told from the judge's noise
        tool, t_p, t_m = zero, zero, zero
    resid = cov["self"] - tool - t_p - t_m
    model = (
        tool[:, None, None]
        + t_p[:, None, None] * (d.kinds["persona"] + d.kinds["self"])
        + t_m[:, None, None] * (d.kinds["member"] + d.kinds["self"])
        + resid[:, None, None] * d.kinds["self"]
    )
    sampling = nn * model / n_cd  # covariance of the judges' means

    def corrected(form: FloatArray) -> FloatArray:  # mu' F mu - tr(F V), per resample
        value: FloatArray = np.einsum("bc,cd,bd->b", mu, form, mu) - np.einsum("cd,bdc->b", form, sampling)
        return value

    fixed = {name: corrected(form) / c for name, form in d.fixed.items()}
    raw = np.stack(
        [tool, fixed["persona"], fixed["member"], fixed["persona x member"], t_p, t_m, resid], axis=1
    )
    # A part estimated below 0 is shown as 0, and the shares are of the parts shown: they add
    # up to 1, and each is its variance over the total beside it.
    raw[np.abs(raw) < _ROUNDING] = 0.0
    parts = raw.clip(min=0.0)
    total = parts.sum(axis=1, keepdims=True)
    shares = np.where(total > 0, parts / np.where(total > 0, total, 1.0), np.nan)
    out = {f"variance:{n}": parts[:, k] for k, n in enumerate(COMPONENTS)}
    out |= {f"raw:{n}": raw[:, k] for k, n in enumerate(COMPONENTS)}
    out["total"] = total[:, 0]
    out |= {f"share:{n}": shares[:, k] for k, n in enumerate(COMPONENTS)}
    alpha = mu @ d.offset.T
    bias = np.einsum("pc,bcd,pd->bp", d.offset, sampling, d.offset)
    own = (alpha**2 - bias).clip(min=0.0)
    members = (
        (np.einsum("bc,pcd,bd->bp", mu, d.within, mu) - np.einsum("pcd,bdc->bp", d.within, sampling)) / d.n_m
    ).clip(min=0.0)
    both = own + members
    own_share = np.where(both > 0, own / np.where(both > 0, both, 1.0), np.nan)
    for p, name in enumerate(d.personas):
        out |= {
            f"offset:{name}": alpha[:, p],
            f"own:{name}": own[:, p],
            f"members:{name}": members[:, p],
            f"own_share:{name}": own_share[:, p],
        }
    return out


def _grid(j: Judgments, positive: int) -> tuple[FloatArray, FloatArray, list[str], list[str]]:
    """Ship and seen indicators on the persona x member grid, tools with no verdict left out."""
    p_idx = sorted(set(j.persona_of.tolist()))
    m_idx = sorted(set(j.member_of.tolist()))
    n_m = len(m_idx)
    column = {
        (p, m): k for k, (p, m) in enumerate(zip(j.persona_of.tolist(), j.member_of.tolist(), strict=True))
    }
    codes = np.full((j.n_tools, len(p_idx) * n_m), MISSING, dtype=np.int64)
    grid = [(a * n_m + b, p, m) for a, p in enumerate(p_idx) for b, m in enumerate(m_idx)]
    for c, p, m in grid:
        if (p, m) in column:
            codes[:, c] = j.codes[:, column[(p, m)]]
    seen = codes != MISSING
    empty = [f"{j.personas[p]} / {j.members[m]}" for c, p, m in grid if not seen[:, c].any()]
    if empty:
        raise ValueError(
            f"variance split needs every persona on every member; no verdict from: {', '.join(empty)}"
        )
    keep = seen.any(axis=1)
    ship = (codes[keep] == positive) & seen[keep]
    return (
        ship.astype(np.float64),
        seen[keep].astype(np.float64),
        [j.personas[p] for p in p_idx],
        [j.members[m] for m in m_idx],
    )


def _share(e: Estimate) -> Estimate:
    """A share's estimate, point and bounds, kept within [0, 1] against floating-point rounding."""

    def within(x: float) -> float:
        return x if math.isnan(x) else min(max(x, 0.0), 1.0)

    return replace(e, point=within(e.point), low=within(e.low), high=within(e.high))


def variance_split(
    j: Judgments,
    positive: int,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    progress: Progress | None = None,
) -> VarianceSplit:
    """Split the variance of ``verdict == positive`` into :data:`COMPONENTS`, with intervals.

    Raises ``ValueError`` when some persona has no verdict at all on some member (the grid
    is incomplete). With fewer than two tools, every figure is ``nan``.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be strictly between 0 and 1, got {level}")
    ship, seen, personas, members = _grid(j, positive)
    d = _design(personas, len(members))
    terms = _terms(ship, seen)
    n = terms.shape[0]
    exact = np.float32 if n < 2**24 else np.float64  # see _terms

    def run(weights: FloatArray) -> dict[str, FloatArray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            return _statistics(
                (weights.astype(exact) @ terms.astype(exact, copy=False)).astype(np.float64), d
            )

    point = {k: float(v[0]) for k, v in run(np.ones((1, n))).items()}
    draws: dict[str, list[FloatArray]] = {k: [] for k in point}
    if n >= 2:
        done = 0
        for weights in resample_weights(n, n_resamples, seed):
            for k, v in run(weights).items():
                draws[k].append(v)
            done += len(weights)
            if progress is not None:
                progress(done, n_resamples)

    def est(key: str) -> Estimate:
        if n < 2:
            return Estimate(math.nan, math.nan, math.nan, 0)
        return percentile(point[key], np.concatenate(draws[key]), level)

    components = [
        Component(name, _share(est(f"share:{name}")), est(f"variance:{name}")) for name in COMPONENTS
    ]
    by_persona = [
        PersonaSplit(p, est(f"offset:{p}"), est(f"own:{p}"), est(f"members:{p}"), est(f"own_share:{p}"))
        for p in personas
    ]
    below = [name for name in COMPONENTS if n >= 2 and point[f"raw:{name}"] < 0.0]
    split = VarianceSplit(METHOD, components, by_persona, n, int(seen.sum()), [], level, est("total"), below)
    return replace(split, reading=reading(split, len(personas), len(members)))
