"""The headline statistics of :mod:`panel.analysis.stats` as functions of item weights.

A bootstrap resample is a vector of multiplicities ``w`` (how often each item was drawn,
see :mod:`panel.analysis.bootstrap`). Every statistic here is a sum, or a ratio of sums,
over items of per-item quantities -- category counts, and for effective votes the
products of the raters' presence and verdict indicators -- so a whole chunk of resamples
``W`` (``b x n``) is a few matrix products. Each ``fn(W)`` gives, row by row, exactly
what the plain statistic gives on the table expanded by those multiplicities
(``table[np.repeat(arange(n), w)]``), to rounding; ``nan`` where it is undefined.

The codes are computed once from the table (:func:`panel.analysis.stats.encode`), so no
resample re-reads the Python labels.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import numpy.typing as npt

from .bootstrap import Weighted

__all__ = [
    "category_counts",
    "effective_votes_w",
    "fleiss_kappa_w",
    "krippendorff_alpha_w",
    "percent_agreement_w",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
MISSING = -1
_PRODUCT_CELLS = 8_000_000  # 64 MB of float64 products kept for effective votes


def category_counts(codes: IntArray, n_labels: int) -> FloatArray:
    """Items x categories: how many raters put each item in each category."""
    counts = np.zeros((codes.shape[0], n_labels), dtype=np.float64)
    for k in range(n_labels):
        counts[:, k] = (codes == k).sum(axis=1)
    return counts


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    out = np.full(num.shape, np.nan)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out


def percent_agreement_w(codes: IntArray, n_labels: int) -> Weighted:
    """Weighted :func:`~panel.analysis.stats.percent_agreement`: mean ``P_i`` over items rated twice."""
    counts = category_counts(codes, n_labels)
    n = counts.sum(axis=1)
    keep = n >= 2
    p_i = np.zeros(len(n))
    pairs = n[keep] * (n[keep] - 1)
    p_i[keep] = (counts[keep] * (counts[keep] - 1)).sum(axis=1) / pairs
    kept = keep.astype(np.float64)

    def fn(w: FloatArray) -> FloatArray:
        return _ratio(w @ p_i, w @ kept)

    return fn


def fleiss_kappa_w(codes: IntArray, n_labels: int) -> Weighted:
    """Weighted :func:`~panel.analysis.stats.fleiss_kappa` on the items every rater rated."""
    m = int(codes.shape[1])
    complete = (codes != MISSING).all(axis=1)
    if m < 2 or not complete.any():
        return lambda w: np.full(len(w), np.nan)
    counts = category_counts(codes, n_labels)
    counts[~complete] = 0.0  # an incomplete item is left out: it weighs nothing
    p_i = (counts * (counts - 1)).sum(axis=1) / (m * (m - 1))
    whole = complete.astype(np.float64)

    def fn(w: FloatArray) -> FloatArray:
        items = w @ whole
        totals = w @ counts  # (b, categories)
        out = np.full(len(w), np.nan)
        ok = (items > 0) & (np.count_nonzero(totals, axis=1) >= 2)
        p = totals[ok] / totals[ok].sum(axis=1, keepdims=True)
        p_e = (p * p).sum(axis=1)
        p_bar = (w @ p_i)[ok] / items[ok]
        out[ok] = (p_bar - p_e) / (1.0 - p_e)
        return out

    return fn


def krippendorff_alpha_w(codes: IntArray, n_labels: int) -> Weighted:
    """Weighted nominal alpha from the coincidences of pairable units (Krippendorff 2011).

    The same formula as :func:`panel.analysis.stats._alpha_nominal`; units with fewer than
    two ratings carry no pairs and weigh nothing.
    """
    counts = category_counts(codes, n_labels)
    m_u = counts.sum(axis=1)
    pairable = m_u >= 2
    counts[~pairable] = 0.0
    o_u = np.zeros(len(m_u))
    o_u[pairable] = (counts[pairable] * (counts[pairable] - 1)).sum(axis=1) / (m_u[pairable] - 1)

    def fn(w: FloatArray) -> FloatArray:
        n_c = w @ counts  # (b, categories)
        n = n_c.sum(axis=1)
        o_diag = w @ o_u
        out = np.full(len(w), np.nan)
        ok = np.count_nonzero(n_c, axis=1) >= 2
        n, o_diag = n[ok], o_diag[ok]
        out[ok] = 1.0 - (n - 1.0) * (n - o_diag) / (n * n - (n_c[ok] ** 2).sum(axis=1))
        return out

    return fn


def effective_votes_w(codes: IntArray, labels: list[Hashable], positive: Hashable = "ship") -> Weighted:
    """Weighted :func:`~panel.analysis.stats.effective_votes` (``mean_r``).

    Per resample, the raters' shared-item counts, positives on shared items and joint
    positives are the weighted cross-products ``A.T @ diag(w) @ B`` of the presence and
    positive indicators; the rest is :func:`~panel.analysis.stats._phi_matrix` and the
    Kish correction, resample by resample.
    """
    m = int(codes.shape[1])
    if m < 2:
        value = 1.0 if m == 1 else np.nan
        return lambda w: np.full(len(w), value)
    present = (codes != MISSING).astype(np.float64)
    pos = labels.index(positive) if positive in labels else None
    x = (codes == pos).astype(np.float64) if pos is not None else np.zeros_like(present)
    upper = np.triu_indices(m, 1)

    # Per partner j, the per-item products whose weighted sums are column j of the three
    # cross-products; built once when they fit in memory, else per chunk.
    def products(j: int) -> FloatArray:
        return np.hstack([present * present[:, [j]], x * present[:, [j]], x * x[:, [j]]])

    kept = [products(j) for j in range(m)] if 3 * m * m * codes.shape[0] <= _PRODUCT_CELLS else None

    def fn(w: FloatArray) -> FloatArray:
        b = len(w)
        shared = np.empty((b, m, m))  # shared[:, i, j]: items rated by both i and j
        s = np.empty((b, m, m))  # s[:, i, j]: positives of i on the items shared with j
        xx = np.empty((b, m, m))  # positives of both
        for j in range(m):
            sums = w @ (kept[j] if kept is not None else products(j))
            shared[:, :, j], s[:, :, j], xx[:, :, j] = sums[:, :m], sums[:, m : 2 * m], sums[:, 2 * m :]
        off = shared.copy()
        off[:, np.arange(m), np.arange(m)] = 0.0
        # (b, m): the rater shares two items with some other rater
        paired = np.asarray((off >= 2).any(axis=1), dtype=bool)
        num = shared * xx - s * s.transpose(0, 2, 1)
        spread = s * (shared - s)
        denom_sq = spread * spread.transpose(0, 2, 1)
        varies = denom_sq > 0
        r = np.full((b, m, m), np.nan)
        r[varies] = num[varies] / np.sqrt(denom_sq[varies])
        r[(shared >= 2) & ~varies] = 1.0
        r = np.clip(r, -1.0, 1.0)
        both = paired[:, upper[0]] & paired[:, upper[1]]
        pair_r = r[:, upper[0], upper[1]]
        counted = both & ~np.isnan(pair_r)
        k = counted.sum(axis=1)
        r_bar = np.where(counted, pair_r, 0.0).sum(axis=1) / np.maximum(k, 1)
        n_raters = paired.sum(axis=1).astype(np.float64)
        denom = 1.0 + (n_raters - 1.0) * r_bar
        safe = np.where(denom > 0, denom, 1.0)
        n_eff = np.where(denom > 0, n_raters / safe, n_raters)
        out = np.clip(n_eff, 1.0, np.maximum(n_raters, 1.0))
        return np.where(k > 0, out, np.nan)

    return fn
