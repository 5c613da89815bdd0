"""Agreement statistics for a table of nominal verdicts.

A ratings table is items x raters: ``ratings[i][j]`` is the category rater ``j`` gave
item ``i``, or ``None`` (or a float NaN) when that review is missing. Categories are any
hashable labels; only :func:`ship_rate` and :func:`effective_votes` dichotomise them
into ``positive`` versus everything else.

Malformed input (not 2-D, ragged rows, bad arguments) raises ``ValueError``. A
well-formed table on which a statistic is undefined gives ``nan`` -- e.g. one category
everywhere makes chance agreement 1 and every kappa 0/0 -- so that :func:`bootstrap_ci`
can skip undefined resamples (see :mod:`panel.analysis.intervals`).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "Ratings",
    "as_table",
    "cohen_kappa",
    "cohen_matrix",
    "cohen_matrix_codes",
    "effective_votes",
    "encode",
    "fleiss_kappa",
    "krippendorff_alpha_nominal",
    "name_raters",
    "percent_agreement",
    "ship_rate",
]

Ratings = Sequence[Sequence[Hashable | None]] | npt.NDArray[Any]
"""Items x raters of category labels; ``None`` marks a missing rating."""

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
_MISSING = -1
_NAN = float("nan")


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def as_table(ratings: Ratings) -> npt.NDArray[np.object_]:
    """The ratings as a 2-D object array, after checking they are rectangular."""
    rows = list(ratings)
    for row in rows:
        # A string is a sequence too; a flat list of labels must not pass as a table.
        if isinstance(row, str | bytes) or not hasattr(row, "__len__"):
            raise ValueError("ratings must be 2-D: one row of rater labels per item")
    widths = {len(row) for row in rows}
    if len(widths) > 1:
        raise ValueError(f"ratings rows have different lengths: {sorted(widths)}")
    table = np.empty((len(rows), widths.pop() if widths else 0), dtype=object)
    for i, row in enumerate(rows):
        table[i, :] = list(row)
    return table


def encode(ratings: Ratings) -> tuple[IntArray, list[Hashable]]:
    """Integer codes (``-1`` = missing) indexing a sorted list of the labels present."""
    table = as_table(ratings)
    present = [v for v in table.flat if not _is_missing(v)]
    labels: list[Hashable] = sorted(set(present), key=str)
    index = {label: k for k, label in enumerate(labels)}
    flat = [_MISSING if _is_missing(v) else index[v] for v in table.flat]
    return np.array(flat, dtype=np.int64).reshape(table.shape), labels


def _counts(codes: IntArray, n_labels: int) -> IntArray:
    """Items x categories: how many raters put each item in each category."""
    counts: IntArray = (codes[:, :, None] == np.arange(n_labels)).sum(axis=1).astype(np.int64)
    return counts


def percent_agreement(ratings: Ratings) -> float:
    """Mean over items of the share of agreeing rater pairs.

    For item ``i`` with ``n_i`` ratings of which ``n_ij`` fall in category ``j``,
    ``P_i = sum_j n_ij (n_ij - 1) / (n_i (n_i - 1))``, the per-item agreement of Fleiss
    (1971), Psychological Bulletin 76(5). Items with fewer than two ratings have no pairs
    and are left out; ``nan`` when no item has two.
    """
    codes, labels = encode(ratings)
    counts = _counts(codes, len(labels))
    n = counts.sum(axis=1)
    keep = n >= 2
    if not keep.any():
        return _NAN
    c, n = counts[keep], n[keep]
    return float(((c * (c - 1)).sum(axis=1) / (n * (n - 1))).mean())


def fleiss_kappa(ratings: Ratings) -> float:
    """Fleiss' kappa, ``(P_bar - P_e) / (1 - P_e)``.

    Source: J. L. Fleiss (1971), Psychological Bulletin 76(5), 378-382. ``P_bar`` is the
    mean per-item agreement (:func:`percent_agreement`), ``P_e = sum_j p_j**2`` with
    ``p_j`` the share of all ratings in category ``j``.

    Fleiss assumes the same number of ratings per item, so items with any missing rating
    are dropped (complete cases over all columns); on those items the value equals
    ``statsmodels.stats.inter_rater.fleiss_kappa`` of their counts table. Drop raters who
    rated nothing first, or no item is left. For tables with holes prefer Krippendorff's
    alpha. ``nan`` with fewer than two raters, no complete item, or one category.
    """
    codes, labels = encode(ratings)
    m = int(codes.shape[1])
    complete = codes[(codes != _MISSING).all(axis=1)]
    if m < 2 or len(complete) == 0:
        return _NAN
    counts = _counts(complete, len(labels))
    totals = counts.sum(axis=0)
    if np.count_nonzero(totals) < 2:
        return _NAN
    p = totals / totals.sum()
    p_e = float(p @ p)
    p_bar = float((counts * (counts - 1)).sum(axis=1).mean()) / (m * (m - 1))
    return (p_bar - p_e) / (1.0 - p_e)


def _pairable_counts(codes: IntArray, n_labels: int) -> IntArray | None:
    """Counts of the units with two or more values, or None if alpha is undefined."""
    counts = _counts(codes, n_labels)
    counts = counts[counts.sum(axis=1) >= 2]
    counts = counts[:, counts.sum(axis=0) > 0]
    return counts if counts.shape[1] >= 2 else None


def _alpha_nominal(counts: IntArray) -> float:
    """Nominal alpha from the counts of pairable units (Krippendorff 2011).

    Each unit's ``m_u (m_u - 1)`` ordered pairs are weighted by ``1 / (m_u - 1)``, giving
    coincidences ``o_ck``; with ``n_c`` the category margins and ``n`` their total,
    ``alpha = 1 - (n - 1) (n - sum_c o_cc) / (n**2 - sum_c n_c**2)``.
    """
    m_u = counts.sum(axis=1)
    o_diag = float(((counts * (counts - 1)).sum(axis=1) / (m_u - 1)).sum())
    n_c = counts.sum(axis=0)
    n = float(n_c.sum())
    return 1.0 - (n - 1.0) * (n - o_diag) / (n * n - float((n_c * n_c).sum()))


def krippendorff_alpha_nominal(ratings: Ratings) -> float:
    """Krippendorff's alpha for nominal data, using all pairable ratings.

    Source: K. Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability",
    Annenberg School for Communication. Missing ratings are simply absent; units with a
    single rating carry no pairs and drop out. Uses the ``krippendorff`` package when it
    is installed, otherwise :func:`_alpha_nominal` (the two agree to rounding).
    ``nan`` when no unit has two ratings or pairable ratings use only one category.
    """
    codes, labels = encode(ratings)
    counts = _pairable_counts(codes, len(labels))
    if counts is None:
        return _NAN
    try:
        import krippendorff
    except ImportError:
        return _alpha_nominal(counts)
    return float(krippendorff.alpha(value_counts=counts, level_of_measurement="nominal"))


def _cohen_codes(x: IntArray, y: IntArray, n_labels: int) -> float:
    n = len(x)
    table = np.zeros((n_labels, n_labels), dtype=np.int64)
    np.add.at(table, (x, y), 1)
    agree = int(np.trace(table))
    chance = int(table.sum(axis=1) @ table.sum(axis=0))
    # Scaled by n**2 so the undefined case (p_e = 1) is an exact integer test.
    denom = n * n - chance
    return _NAN if denom == 0 else (n * agree - chance) / denom


def _both_rated(codes: IntArray, i: int, j: int) -> tuple[IntArray, IntArray]:
    keep = (codes[:, i] != _MISSING) & (codes[:, j] != _MISSING)
    return codes[keep, i], codes[keep, j]


def cohen_kappa(a: Sequence[Hashable | None], b: Sequence[Hashable | None]) -> float:
    """Cohen's kappa of two raters, ``(p_o - p_e) / (1 - p_e)`` (Cohen 1960).

    Source: J. Cohen (1960), Educational and Psychological Measurement 20(1), 37-46.
    Only items both raters rated are used (pairwise complete). ``nan`` when there are
    none, or when both raters used one and the same category throughout.
    """
    if isinstance(a, str | bytes) or isinstance(b, str | bytes) or len(a) != len(b):
        raise ValueError("cohen_kappa needs two label sequences of the same length")
    codes, labels = encode([[x, y] for x, y in zip(a, b, strict=True)])
    if len(codes) == 0:
        return _NAN
    return _cohen_codes(*_both_rated(codes, 0, 1), len(labels))


def name_raters(m: int, names: Sequence[str] | None) -> list[str]:
    if names is None:
        return [f"rater{j}" for j in range(m)]
    if len(names) != m:
        raise ValueError(f"{len(names)} rater names for {m} rater columns")
    return list(names)


def cohen_matrix(ratings: Ratings, labels: Sequence[str] | None = None) -> tuple[list[str], FloatArray]:
    """Cohen's kappa for every pair of rater columns, pairwise complete.

    ``labels`` names the columns (default ``rater0``, ``rater1``, ...). The diagonal is a
    rater's kappa with itself: 1, or ``nan`` if that rater used a single category.
    """
    codes, cats = encode(ratings)
    return name_raters(codes.shape[1], labels), cohen_matrix_codes(codes, len(cats))


def cohen_matrix_codes(codes: IntArray, n_labels: int) -> FloatArray:
    """:func:`cohen_matrix` of a table already encoded (``-1`` = missing, else ``< n_labels``)."""
    m = codes.shape[1]
    matrix = np.full((m, m), _NAN)
    for i in range(m):
        for j in range(i, m):
            matrix[i, j] = matrix[j, i] = _cohen_codes(*_both_rated(codes, i, j), n_labels)
    return matrix


def _code_of(labels: list[Hashable], label: Hashable) -> int | None:
    return labels.index(label) if label in labels else None


def ship_rate(ratings: Ratings, positive: Hashable = "ship") -> list[float]:
    """Per rater, the share of its non-missing ratings equal to ``positive`` (leniency).

    ``nan`` for a rater with no ratings.
    """
    codes, labels = encode(ratings)
    pos = _code_of(labels, positive)
    rated = (codes != _MISSING).sum(axis=0)
    hits = (codes == pos).sum(axis=0) if pos is not None else np.zeros_like(rated)
    return [float(h) / float(r) if r else _NAN for h, r in zip(hits, rated, strict=True)]


def _phi_matrix(codes: IntArray, pos: int | None) -> FloatArray:
    """Pairwise-complete phi between raters' binary verdicts (1 = ``pos``).

    A pair with fewer than two shared items is ``nan``. A pair where either rater gives
    the same verdict on every shared item is set to 1: such a verdict carries nothing
    about the items, so it is counted as fully redundant -- a choice that can only
    lower the effective number of votes.
    """
    present = (codes != _MISSING).astype(np.int64)
    x = (codes == pos).astype(np.int64) if pos is not None else np.zeros_like(present)
    n = present.T @ present  # items rated by both i and j
    s = x.T @ present  # s[i, j]: positives of i on the items shared with j
    num = n * (x.T @ x) - s * s.T
    spread = s * (n - s)  # n**2 times the variance of i's verdicts on the shared items
    denom_sq = spread * spread.T
    r = np.full(n.shape, _NAN)
    varies = denom_sq > 0
    r[varies] = num[varies] / np.sqrt(denom_sq[varies].astype(np.float64))
    r[(n >= 2) & ~varies] = 1.0
    return np.clip(r, -1.0, 1.0)


def effective_votes(
    ratings: Ratings,
    positive: Hashable = "ship",
    method: Literal["mean_r", "eigen"] = "mean_r",
) -> float:
    """Effective number of independent raters behind the binary verdicts, in ``[1, n]``.

    ``r`` is the phi correlation of each rater pair (see :func:`_phi_matrix` for pairs
    with no variance; pairs sharing fewer than two items are left out).

    * ``"mean_r"`` (default): ``n / (1 + (n - 1) r_bar)`` with ``r_bar`` the mean pairwise
      phi, the design-effect correction of L. Kish (1965), *Survey Sampling*. Default
      because it reads directly: the panel's mean vote has the variance of the mean of
      this many independent votes (exactly so when the raters' variances are equal).
    * ``"eigen"``: ``(sum lambda)**2 / sum lambda**2`` over the eigenvalues of the
      correlation matrix, the participation ratio of its spectrum (= ``n**2`` over the
      squared Frobenius norm). Undefined pairs are filled with ``r_bar``. It is blind to
      sign -- two perfectly opposed raters count as one -- and, being quadratic in
      ``r``, discounts moderate correlation less than ``"mean_r"``.

    ``n`` counts only raters that share at least two items with some other rater: a rater
    with no such partner (one whose reviews all failed, say) has no correlation to weigh
    and would otherwise count as a full independent vote. Negative ``r_bar`` would give
    more than ``n`` and is clamped to ``n``. One rater gives 1; ``nan`` with no raters or
    no pair sharing two items.
    """
    if method not in ("mean_r", "eigen"):
        raise ValueError(f"unknown method {method!r}: use 'mean_r' or 'eigen'")
    codes, labels = encode(ratings)
    m = codes.shape[1]
    if m < 2:
        return 1.0 if m == 1 else _NAN
    present = (codes != _MISSING).astype(np.int64)
    shared = present.T @ present
    np.fill_diagonal(shared, 0)
    paired = (shared >= 2).any(axis=0)
    if not paired.any():
        return _NAN
    codes, m = codes[:, paired], int(paired.sum())
    r = _phi_matrix(codes, _code_of(labels, positive))
    off = r[np.triu_indices(m, 1)]
    r_bar = float(np.nanmean(off))
    if method == "mean_r":
        denom = 1.0 + (m - 1) * r_bar
        n_eff = m / denom if denom > 0 else float(m)
    else:
        filled = np.where(np.isnan(r), r_bar, r)
        np.fill_diagonal(filled, 1.0)
        lam = np.linalg.eigvalsh(filled)
        n_eff = float(lam.sum() ** 2 / (lam**2).sum())
    return min(max(n_eff, 1.0), float(m))
