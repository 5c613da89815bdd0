"""Which verdicts may be published unread: a confidence threshold chosen on labelled tools.

**The rule.** A tool's *confidence* is the panel's probability of its own verdict: ``p`` when
the verdict is ship, ``1 - p`` otherwise (``max(p, 1 - p)`` when the verdict follows ``p``).
Tools whose confidence is at least a threshold ``t`` are published unread; the others go to
an editor. ``t`` is chosen on the tools that have a reference verdict (an editor's, a labels
file's): among the labelled tools at or above ``t``, ``k`` of ``n`` agree with the
reference, and ``t`` passes when the one-sided Clopper-Pearson lower bound of that share at
the stated ``level`` is at least ``target``. The bound is ``Beta(1 - level; k, n - k + 1)``,
the ``1 - level`` quantile of a beta distribution (``scipy.stats.beta.ppf``; 0 when ``k``
is 0): the same as the lower end of ``statsmodels``' two-sided ``proportion_confint(method=
"beta")`` at ``alpha = 2 * (1 - level)``.

**Choosing among many thresholds.** Taking the widest threshold among all those that pass
would test every threshold and keep the luckiest, so its bound would no longer hold at
``level``. The rule tests them as a *fixed sequence* instead: from the most confident
threshold down, stopping at the first that fails, and keeps the last that passed. Because
the order of the thresholds is fixed before any label is read, every hypothesis before the
first failure is tested once at level ``1 - level`` and the family of tests keeps that error
rate without correction (fixed-sequence testing, as in Angelopoulos et al. 2021, "Learn then
Test"). The candidates are the distinct confidences of the labelled tools. The sequence
starts at the first candidate with at least :func:`start_labels` labelled tools at or above
it (the fewest on which an agreement halfway between the target and 1 would pass: 116 for
0.90 at 0.95), or at the widest candidate when fewer tools are labelled. Starting on the
handful of most confident tools would stop the sequence at their first disagreement; the
start, like the order, depends on the confidences and on which tools are labelled, never on
the labels' values, so the error rate still holds. A run with fewer than
:func:`minimum_labels` labelled tools is refused outright: even full agreement on them
could not reach the target.

What the guarantee assumes, and a caller must keep true: the labelled tools are a random
sample of the run's tools, and the probabilities were not fitted on these same labels
(reliabilities fitted on the labels of earlier runs, or on the other half of a cross-fit,
are fine; see :mod:`panel.analysis.calibration`). An editor who picks tools for what they
suspect of the verdict makes the bound say nothing about the rest. One who picks by the
panel's doubt alone (most doubtful first) leaves it conservative as long as agreement rises
with confidence: the labelled tools above a threshold then sit lower in it than the rest.

**Coverage** is the share of all the run's tools, labelled or not, at or above the chosen
threshold. A tool with no probability (``None``: it cannot be estimated) or no verdict
always goes to an editor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy.stats import beta

__all__ = [
    "Chosen",
    "Decision",
    "Refused",
    "ThresholdChoice",
    "choose_threshold",
    "confidence_of",
    "cp_lower",
    "minimum_labels",
    "start_labels",
]

FloatArray = npt.NDArray[np.float64]
Decision = Literal["publish", "editor"]
PUBLISH: Decision = "publish"
EDITOR: Decision = "editor"


def cp_lower(agree: int | npt.NDArray[np.int64], n: int | npt.NDArray[np.int64], level: float) -> FloatArray:
    """One-sided Clopper-Pearson lower bound of ``agree / n`` at confidence ``level``.

    ``Beta(1 - level; agree, n - agree + 1)``; 0 where ``agree`` is 0 (or ``n`` is 0).
    """
    k = np.atleast_1d(np.asarray(agree, dtype=np.float64))
    total = np.atleast_1d(np.asarray(n, dtype=np.float64))
    out = np.zeros(np.broadcast(k, total).shape)
    some = (k > 0) & (total > 0)
    kk, nn = np.broadcast_to(k, out.shape)[some], np.broadcast_to(total, out.shape)[some]
    out[some] = beta.ppf(1.0 - level, kk, nn - kk + 1.0)
    result: FloatArray = out
    return result


def minimum_labels(target: float, level: float) -> int:
    """The fewest labelled tools whose bound can reach ``target`` at all: with ``n`` tools that
    all agree the bound is ``(1 - level) ** (1 / n)``, so ``n >= log(1 - level) / log(target)``
    (29 for a target of 0.90 at level 0.95)."""
    _check(target, level)
    n = max(1, math.ceil(math.log(1.0 - level) / math.log(target) - 1e-9))
    while float(cp_lower(n, n, level)[0]) < target:  # guard the float edge of the closed form
        n += 1
    return n


def start_labels(target: float, level: float) -> int:
    """Where the fixed sequence starts: the fewest labelled tools on which an agreement halfway
    between ``target`` and 1 (rounded down) has its lower bound at or above ``target``."""
    n = minimum_labels(target, level)
    while float(cp_lower(math.floor(n * (1.0 + target) / 2.0), n, level)[0]) < target:
        n += 1
    return n


def _check(target: float, level: float) -> None:
    if not 0.0 < target < 1.0:
        raise ValueError(f"target must be strictly between 0 and 1, got {target}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be strictly between 0 and 1, got {level}")


def confidence_of(probability: Sequence[float | None], verdict: Sequence[str | None],
                  positive: str = "ship") -> FloatArray:  # fmt: skip
    """Each tool's probability of its own verdict; ``nan`` with no probability or no verdict."""
    if len(probability) != len(verdict):
        raise ValueError(f"{len(probability)} probabilities but {len(verdict)} verdicts")
    p = np.array([math.nan if v is None else float(v) for v in probability], dtype=np.float64)
    if ((p < 0) | (p > 1)).any():
        raise ValueError("a probability of ship must be between 0 and 1")
    ship = np.array([v == positive for v in verdict], dtype=bool)
    none = np.array([v is None for v in verdict], dtype=bool)
    out: FloatArray = np.where(ship, p, 1.0 - p)
    out[none] = math.nan
    return out


@dataclass(frozen=True)
class Chosen:
    """A threshold that meets the target: publish unread every tool at or above it."""

    threshold: float  # publish when the probability of the tool's own verdict is >= this
    target: float
    level: float
    bound: float  # one-sided Clopper-Pearson lower bound of the agreement of the published labelled tools
    agreement: float  # their agreement as seen (agreeing / published_labelled)
    agreeing: int
    published_labelled: int  # labelled tools at or above the threshold
    labels: int  # labelled tools the rule read
    minimum: int  # the fewest labels a guarantee can rest on (minimum_labels)
    coverage: float  # share of all the run's tools published unread
    published: int
    tools: int
    tested: int  # thresholds tested in the fixed sequence, the last one failed unless all passed
    decisions: list[Decision] = field(repr=False)
    guarantee: Literal[True] = True

    @property
    def sentence(self) -> str:
        return (
            f"Publish unread the {self.published} of {self.tools} tools ({self.coverage:.0%}) whose verdict "
            f"has probability >= {self.threshold:.3f}: {self.agreeing} of the {self.published_labelled} "
            f"labelled ones agree with the reference ({self.agreement:.1%}); with {self.level:.0%} "
            f"confidence at least {self.bound:.1%} agree (Clopper-Pearson, one-sided), target "
            f"{self.target:.0%}."
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"sentence": self.sentence}


@dataclass(frozen=True)
class Refused:
    """No threshold can be promised: every tool goes to an editor (ranked by doubt only)."""

    code: Literal["too_few_labels", "target_not_met"]
    reason: str
    target: float
    level: float
    labels: int
    minimum: int
    tools: int
    #: the most confident candidate's figures when one was tested (None when none could be)
    best_bound: float | None = None
    decisions: list[Decision] = field(repr=False, default_factory=list)
    guarantee: Literal[False] = False

    @property
    def sentence(self) -> str:
        return self.reason

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"sentence": self.sentence}


ThresholdChoice = Chosen | Refused


def choose_threshold(
    probability: Sequence[float | None],
    verdict: Sequence[str | None],
    reference: Sequence[str | None],
    *,
    target: float = 0.9,
    level: float = 0.95,
    min_labels: int | None = None,
    positive: str = "ship",
    selection: Literal["sequence", "widest"] = "sequence",
) -> ThresholdChoice:
    """The confidence threshold of the module's rule, over tools given in one order.

    ``probability[i]`` is the panel's probability that tool ``i`` is ``positive`` (None when
    it cannot be estimated), ``verdict[i]`` the panel's verdict (None when it has none), and
    ``reference[i]`` the reference verdict (None when the tool is unlabelled). ``min_labels``
    (default :func:`minimum_labels`) is the fewest labelled tools with a probability and a
    verdict the rule will rest on; below it the result is :class:`Refused` with code
    ``too_few_labels``. When no candidate passes, :class:`Refused` with ``target_not_met``.
    ``selection="widest"`` keeps the widest threshold among all that pass instead of the
    fixed sequence: it is there to measure what the sequence guards against (its bound does
    not hold at ``level``), not for publishing.
    """
    _check(target, level)
    if len(reference) != len(verdict):
        raise ValueError(f"{len(verdict)} verdicts but {len(reference)} reference verdicts")
    floor = minimum_labels(target, level)
    minimum = floor if min_labels is None else max(int(min_labels), floor)
    conf = confidence_of(probability, verdict, positive)
    known = np.array([r is not None for r in reference], dtype=bool) & ~np.isnan(conf)
    labels = int(known.sum())
    n_tools = len(conf)
    everyone: list[Decision] = [EDITOR] * n_tools
    if labels < minimum:
        return Refused(
            "too_few_labels",
            f"No guarantee is possible: {labels} labelled tools, the rule needs at least {minimum} "
            f"(fewer cannot show {target:.0%} agreement at {level:.0%} confidence even if all agree).",
            target, level, labels, minimum, n_tools, decisions=everyone,
        )  # fmt: skip
    agree = np.array([v is not None and v == r for v, r in zip(verdict, reference, strict=True)], dtype=bool)
    order = np.argsort(-conf[known], kind="stable")
    sorted_conf = conf[known][order]
    hits = np.cumsum(agree[known][order])
    # Candidates: each distinct confidence, with every labelled tool at or above it counted.
    last = np.r_[sorted_conf[1:] != sorted_conf[:-1], True]
    ends = np.flatnonzero(last)  # index of the last labelled tool at each distinct value
    n_at = ends + 1
    start = max(minimum, min(start_labels(target, level), int(n_at[-1])))
    ends = ends[n_at >= start]  # chosen from counts alone, never from the labels' values
    k_at, n_at = hits[ends].astype(np.int64), (ends + 1).astype(np.int64)
    bounds = cp_lower(k_at, n_at, level)
    failed = np.flatnonzero(bounds < target)
    passing = len(ends) if failed.size == 0 else int(failed[0])  # fixed sequence: stop at the first failure
    if selection == "widest":
        passed = np.flatnonzero(bounds >= target)
        passing = 0 if passed.size == 0 else int(passed[-1]) + 1
    if passing == 0:
        first = float(bounds[0])
        return Refused(
            "target_not_met",
            f"No guarantee is possible at {target:.0%}: the most confident {int(n_at[0])} labelled tools "
            f"agree with the reference {int(k_at[0])} times, a lower bound of {first:.1%} at "
            f"{level:.0%} confidence.",
            target, level, labels, minimum, n_tools, best_bound=first, decisions=everyone,
        )  # fmt: skip
    at = passing - 1
    threshold = float(sorted_conf[ends[at]])
    published = conf >= threshold  # nan compares False: no probability, no verdict -> editor
    n_pub = int(published.sum())
    return Chosen(
        threshold=threshold,
        target=target,
        level=level,
        bound=float(bounds[at]),
        agreement=float(k_at[at] / n_at[at]),
        agreeing=int(k_at[at]),
        published_labelled=int(n_at[at]),
        labels=labels,
        minimum=minimum,
        coverage=n_pub / n_tools,
        published=n_pub,
        tools=n_tools,
        tested=len(ends) if selection == "widest" else min(passing + 1, len(ends)),
        decisions=[PUBLISH if p else EDITOR for p in published],
    )
