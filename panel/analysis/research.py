"""The researcher's questions about one run: agreement with a reference, pooling, reliability, variance.

* With a reference (human labels, or the community's majority): accuracy and Cohen's kappa
  of every judge, persona, member and of all judges (:mod:`.accuracy`), and the panel's
  pooled verdicts beside the best single judge, with sub-panels and cost (:mod:`.pooling`).
* Always: each judge's reliability estimated without labels by a latent-truth model
  (:mod:`.latent`), and where the variance of verdicts comes from (:mod:`.variance`).

Everything reads repeat 0 of one run, as one tools x judges matrix (:mod:`.judges`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from .accuracy import Agreeing, with_reference
from .bootstrap import Estimate
from .calibration import Calibration, calibration, cross_fitted
from .intervals import json_ready
from .judges import MISSING, IntArray, Judgments, judgments
from .latent import DEFAULT_RESAMPLES, LatentModel, accuracy_intervals, dawid_skene
from .pooling import PoolingReport, majority, pooling
from .reference import Reference, community_reference, load_labels
from .sample import Sample, sample
from .variance import VarianceSplit, variance_split

__all__ = ["COMMUNITY", "Research", "ResearchJudge", "categories_of", "research"]

COMMUNITY = "community"
PhaseProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ResearchJudge:
    """One judge: its reliability estimated without labels, and (with a reference) measured."""

    judge: str
    persona: str
    member: str
    reviews: int  # valid verdicts
    cost_per_tool: float
    estimated_accuracy: Estimate  # from the latent-truth model, no labels
    confusion: list[list[float]]  # true verdict (rows) x verdict given (columns)


@dataclass(frozen=True)
class Research:
    run: str
    categories: list[str]
    positive: str
    judges: list[ResearchJudge]
    latent: dict[str, Any]  # how the latent model fit, and how its verdicts differ from the majority
    variance: VarianceSplit | None
    reference: dict[str, Any] | None = None  # source, tools with a reference, notes, human agreement
    accuracy: list[Agreeing] = field(default_factory=list)
    pooling: PoolingReport | None = None
    notes: list[str] = field(default_factory=list)
    #: set when the run has too few tools to read the model's figures (they are then null)
    sample: Sample | None = None
    #: set when the reference labels too few tools to read accuracy and pooling (then left out)
    reference_sample: Sample | None = None
    #: with a reference: the panel's probability of ship against it (reliability diagram, ECE)
    calibration: list[Calibration] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["variance"] = self.variance.to_dict() if self.variance is not None else None
        result: dict[str, Any] = json_ready(data)
        return result


def categories_of(personas: Sequence[Mapping[str, Any]]) -> list[str]:
    """The verdicts the run's personas allow, in the order they list them."""
    out: list[str] = []
    for persona in personas:
        out += [str(v) for v in persona.get("verdicts", ("ship", "skip")) if str(v) not in out]
    return out


def _load_reference(
    spec: str | Reference,
    j: Judgments,
    tool_data: Sequence[Mapping[str, Any]],
    min_votes: int,
    resamples: int,
    seed: int,
) -> Reference:
    if isinstance(spec, Reference):  # read by the caller (the editors' labels, from the store)
        return spec
    if spec == COMMUNITY:
        return community_reference(tool_data, j.tools, j.categories, min_votes)
    return load_labels(Path(spec), j.tools, j.categories, n_resamples=resamples, seed=seed)


def _phase(progress: PhaseProgress | None, label: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(label, done, total)


def _latent_summary(j: Judgments, model: LatentModel) -> dict[str, Any]:
    vote = majority(j)
    latent = model.verdicts()
    both = (vote != MISSING) & (latent != MISSING)
    differ = int((vote[both] != latent[both]).sum())
    return {
        "method": "Dawid-Skene (1979) EM, started from the majority vote",
        "iterations": model.iterations,
        "converged": model.converged,
        "log_likelihood": model.log_likelihood,
        "priors": dict(zip(j.categories, map(float, model.priors), strict=True)),
        "tools": int(both.sum()),
        "differs_from_majority": differ,
    }


def research(
    rows: Sequence[Mapping[str, Any]],
    *,
    run: str,
    personas: Sequence[Mapping[str, Any]],
    tool_data: Sequence[Mapping[str, Any]],
    order: Mapping[str, Sequence[str]],
    reference: str | Reference | None = None,
    min_votes: int = 5,
    positive: str = "ship",
    threshold: float = 0.5,
    n_resamples: int = 2000,
    seed: int = 0,
    progress: PhaseProgress | None = None,
    judged: Judgments | None = None,
) -> Research:
    """Every researcher's figure for ``rows`` (the long table of one run, repeat 0).

    ``reference`` is a CSV path, :data:`COMMUNITY`, a reference already read (the editors'
    labels, :func:`.editors.editors_reference`), or None for the label-free parts only.
    ``judged`` is ``rows`` as a judges matrix when the caller has built it already.
    """
    j = judged if judged is not None else judgments(rows, categories=categories_of(personas), order=order)
    if j.n_judges == 0 or j.n_tools == 0:
        raise UserError(f"run '{run}' has no reviews")
    pos = j.code(positive)
    notes: list[str] = []
    # The reference first: a bad labels file is reported before any long work.
    ref = (
        None if reference is None else _load_reference(reference, j, tool_data, min_votes, n_resamples, seed)
    )
    model = dawid_skene(j.codes, j.categories)
    small = sample(j.n_tools, "each judge's estimated accuracy or the variance split")
    latent_resamples = min(n_resamples, DEFAULT_RESAMPLES)
    if latent_resamples < n_resamples and small is None:
        notes.append(
            f"The latent model's intervals rest on {latent_resamples} resamples, not {n_resamples}: "
            "each is a refit of the model, and more moved their ends by about 0.001."
        )
    nothing = Estimate(math.nan, math.nan, math.nan, 0)
    estimated = [nothing] * j.n_judges if small is not None else accuracy_intervals(
        j.codes, j.categories, model, n_resamples=latent_resamples, seed=seed,
        progress=_phase(progress, "latent model"),
    )  # fmt: skip
    judges = [
        ResearchJudge(
            judge=name,
            persona=j.personas[j.persona_of[c]],
            member=j.members[j.member_of[c]],
            reviews=int((j.codes[:, c] != MISSING).sum()),
            cost_per_tool=float(j.cost[:, c].sum()) / j.n_tools,
            estimated_accuracy=estimated[c],
            confusion=[] if small is not None else model.confusion[c].tolist(),
        )
        for c, name in enumerate(j.judges)
    ]
    split = None  # with too few tools, `sample` says why
    if small is None and pos is not None:
        try:
            split = variance_split(j, pos, n_resamples, seed, progress=_phase(progress, "variance split"))
        except ValueError as exc:  # a persona with no verdict at all on some member
            notes.append(f"The variance split is left out: {exc}.")
    elif small is None:
        notes.append(f"No judge said {positive!r}: the variance split of {positive} verdicts is left out.")
    if small is not None:
        notes.append(f"Left out: {small.reason}.")
    found = Research(
        run, j.categories, positive, judges, _latent_summary(j, model), split, notes=notes, sample=small
    )
    if ref is None:
        return found
    labelled = int((ref.labels != MISSING).sum())  # at least one: the loaders refuse a reference with none
    few = sample(labelled, "accuracy with the reference or the pooled verdicts")
    summary = _summary(ref, j, labelled)
    found = replace(found, calibration=_calibrations(j, model, ref.labels, pos, seed))
    if few is not None:
        notes.append(f"Left out: {few.reason}.")
        return replace(found, reference=summary, reference_sample=few)
    accuracy = with_reference(j, ref.labels, n_resamples, seed, progress=_phase(progress, "reference"))

    def weighted(columns: Sequence[int]) -> IntArray:
        posterior = model.posterior_for(j.codes, columns)
        out: IntArray = np.argmax(posterior, axis=1).astype(np.int64)
        out[(j.codes[:, list(columns)] == MISSING).all(axis=1)] = MISSING
        return out

    pooled = pooling(
        j, ref.labels, positive=pos, threshold=threshold, weighted=weighted,
        n_resamples=n_resamples, seed=seed, progress=_phase(progress, "pooled verdicts"),
    )  # fmt: skip
    return replace(found, reference=summary, accuracy=accuracy, pooling=pooled)


def _summary(ref: Reference, j: Judgments, labelled: int) -> dict[str, Any]:
    return {
        "source": ref.source,
        "tools": labelled,
        "tools_in_run": j.n_tools,
        "raters": ref.raters,
        "human_agreement": ref.human_agreement,
        "notes": ref.notes,
        "shares": {
            c: (float((ref.labels == k).sum()) / labelled if labelled else math.nan)
            for k, c in enumerate(j.categories)
        },
    }


def _calibrations(
    j: Judgments, model: LatentModel, labels: IntArray, pos: int | None, seed: int
) -> list[Calibration]:
    """The panel's probability of ship against the reference: Dawid-Skene's (no labels), and
    the reliabilities counted on the reference's labels, cross-fitted on two random halves of
    the labelled tools so no tool is scored by a model that read its own label."""
    if pos is None:
        return []
    known = labels != MISSING
    ship: list[bool | None] = [bool(lab == pos) if k else None for lab, k in zip(labels, known, strict=True)]
    unjudged = (j.codes == MISSING).all(axis=1)  # no verdict: the posterior is the prior, no prediction
    latent = np.where(unjudged, np.nan, model.posterior[:, pos])
    found = [calibration(latent, ship, name="Dawid-Skene, without the reference")]
    if int(known.sum()) >= 2:
        fitted = np.where(unjudged, np.nan, cross_fitted(j.codes, labels, j.categories, seed=seed)[:, pos])
        name = "reliabilities counted on the reference (cross-fitted)"
        found.append(calibration(fitted, ship, name=name))
    return found
