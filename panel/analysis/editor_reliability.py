"""Judges' reliabilities learned from the editors' labels on earlier runs, carried to a new run.

A judge is (persona id, member name). Its reliability carries forward only under the same
identity: the member's backend:model, the persona id, the persona's version and the prompts'
version (`JudgeIdentity`). When one of them changes, labels made under the old one say nothing
about the new judge (labelling policy and judge version both move agreement), so they are left
out and a note says so.

Each labelled item is one tool of one earlier run (a run created before the new one): its
label is the majority of the editors' labels made on that run itself (`Store.labels_in_force`
without labels from other runs of the same entry, publishes left out; a tie gives none), and a
judge's verdict is the model's own on that run (the round-2 verdict of a rebuttal run, never
an editor's edit, which would be the label itself). So each stored label counts once, paired
with the verdicts it was made on. The new run's labels in force may hold some of the same
labels (an earlier run of the same entry), so a caller that chooses a threshold on the new
run's reference leaves the reference's tools out of the items (`judge_reliabilities(leave_out=
...)`, what `panel triage` does through `carried_forward`; it holds for a labels file or the
community's votes as well). `JudgeReliabilities` holds, for the new run's judges, the items as
a tools x judges matrix ready for :func:`panel.analysis.latent_posteriors.fit_on_labels`
(`fit()`), each judge's confusion counts and how many labelled items they rest on, and the
notes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..store import ReviewRow, Store
from .judges import MISSING, IntArray
from .latent import LatentModel
from .latent_posteriors import fit_on_labels

__all__ = ["JudgeIdentity", "JudgeKey", "JudgeReliabilities", "as_plain", "judge_reliabilities"]

#: a judge of a run: (persona id, member name)
JudgeKey = tuple[str, str]


class JudgeIdentity(NamedTuple):
    """What a judge's reliability is a property of."""

    model: str  # the member's backend:model
    persona: str
    persona_version: str
    prompts: str  # the prompts' version (a hash of the templates)


@dataclass(frozen=True)
class JudgeReliabilities:
    """The new run's judges' reliabilities from earlier editor labels.

    ``codes[i, c]`` is judge ``judges[c]``'s verdict (an index in ``categories``) on labelled
    item ``items[i]`` (earlier run id, tool id), ``-1`` where that run's judge of the same
    identity gave none (or had another identity); ``labels[i]`` is the item's label. So
    ``fit_on_labels(codes, labels, categories)`` (`fit()`) gives each judge's smoothed
    confusion, and its ``posterior_for(new_codes, columns)`` the new run's posteriors.
    ``confusion[key][k][l]`` counts the items labelled ``categories[k]`` on which the judge
    said ``categories[l]``; ``rests_on[key]`` is their total (0: nothing carries forward).
    ``notes`` say, per judge, which earlier labels no longer apply and why.
    """

    run_id: str
    categories: list[str]
    judges: list[JudgeKey]
    identities: dict[JudgeKey, JudgeIdentity]
    items: list[tuple[str, str]]
    codes: IntArray
    labels: IntArray
    confusion: dict[JudgeKey, list[list[int]]]
    rests_on: dict[JudgeKey, int]
    notes: list[str] = field(default_factory=list)

    @property
    def n_labels(self) -> int:
        """Labelled items some judge of the new run has a verdict on."""
        return int((self.codes != MISSING).any(axis=1).sum()) if self.codes.size else 0

    def binary(self, positive: str = "ship") -> dict[JudgeKey, list[list[int]]]:
        """Each judge with labels, its confusion folded to ``positive`` against every other
        verdict: ``[[pos said pos, pos said other], [other said pos, other said other]]``, the
        mapping `panel.report.confidence.run_confidence(reliabilities=)` reads. Judges whose
        labels are none are left out (nothing carries forward for them)."""
        if positive not in self.categories:
            return {}
        k = self.categories.index(positive)
        out: dict[JudgeKey, list[list[int]]] = {}
        for key, counts in self.confusion.items():
            if not self.rests_on.get(key):
                continue
            grid = np.asarray(counts, dtype=np.int64)
            pos, other = grid[k], np.delete(grid, k, axis=0).sum(axis=0)
            out[key] = [
                [int(pos[k]), int(pos.sum() - pos[k])],
                [int(other[k]), int(other.sum() - other[k])],
            ]
        return out

    def fit(self, smoothing: float = 1.0) -> LatentModel | None:
        """The judges' confusions counted on the items (`fit_on_labels`); None without any."""
        if not self.n_labels:
            return None
        return fit_on_labels(self.codes, self.labels, self.categories, smoothing=smoothing)


def _identities(store: Store, run_id: str, reviews: Sequence[ReviewRow]) -> dict[JudgeKey, JudgeIdentity]:
    panel = store.panel_then(run_id)  # persona versions as the run recorded them, the prompts'
    prompts, versions = str(panel.get("prompts") or ""), panel.get("personas") or {}
    found: dict[JudgeKey, JudgeIdentity] = {}
    for r in reviews:
        version = str(versions.get(r.persona_id, ""))
        found.setdefault(
            (r.persona_id, r.member), JudgeIdentity(f"{r.backend}:{r.model}", r.persona_id, version, prompts)
        )
    return found


def _own_verdicts(store: Store, run_id: str) -> tuple[list[ReviewRow], dict[tuple[str, JudgeKey], str]]:
    """The run's reviews of repeat 0 and each valid one's verdict as the model left it."""
    reviews = [r for r in store.reviews(run_id) if r.repeat == 0]
    verdicts = {(r.tool_id, (r.persona_id, r.member)): r.verdict for r in reviews if r.valid and r.verdict}
    for b in store.rebuttals(run_id):
        if b.key.repeat == 0 and b.valid and b.verdict_after:
            verdicts[(b.key.tool_id, (b.key.persona_id, b.key.member))] = b.verdict_after
    return reviews, {k: v for k, v in verdicts.items() if v is not None}


def _majority(votes: Counter[str]) -> str | None:
    top = votes.most_common(2)
    if not top or (len(top) > 1 and top[0][1] == top[1][1]):
        return None
    return top[0][0]


def judge_reliabilities(
    store: Store, run_id: str, categories: Sequence[str], *, leave_out: Collection[str] = ()
) -> JudgeReliabilities:
    """Gather the editors' labels on runs created before ``run_id`` for its judges (see the
    module docstring); ``categories`` are the verdicts, in the order the codes use.
    ``leave_out`` are tool ids whose labels are not counted (the triage rule checks its
    threshold on them, so the reliabilities must not have read them)."""
    cat_at = {c: k for k, c in enumerate(categories)}
    new_reviews, _ = _own_verdicts(store, run_id)
    mine = _identities(store, run_id, new_reviews)
    judges = sorted(mine)
    column = {key: c for c, key in enumerate(judges)}
    by_identity: dict[JudgeIdentity, list[int]] = {}
    for key, identity in mine.items():
        by_identity.setdefault(identity, []).append(column[key])
    this = store.get_run(run_id)
    start = this.created_at if this is not None else float("inf")
    earlier = [r.id for r, _, _ in store.list_runs(limit=1 << 62) if r.created_at < start and r.id != run_id]
    skip = set(leave_out)
    rows: list[list[int]] = []
    labels: list[int] = []
    items: list[tuple[str, str]] = []
    elsewhere: dict[JudgeKey, Counter[tuple[str, str]]] = {key: Counter() for key in judges}
    for old in reversed(earlier):  # oldest first
        votes: dict[str, Counter[str]] = {}
        for label in store.labels_in_force(old, same_entry=False):  # made on this run: each counts once
            votes.setdefault(label.tool_id, Counter())[label.verdict] += 1
        if not votes:
            continue
        reviews, verdicts = _own_verdicts(store, old)
        theirs = _identities(store, old, reviews)
        for tool, counted in votes.items():
            if tool in skip:
                continue
            truth = _majority(counted)
            if truth not in cat_at:
                continue
            row = [MISSING] * len(judges)
            for judge, identity in theirs.items():
                said = verdicts.get((tool, judge))
                if said not in cat_at:
                    continue
                for c in by_identity.get(identity, []):
                    row[c] = cat_at[said]
                if judge in mine and mine[judge] != identity:
                    elsewhere[judge][_changed(identity, mine[judge])] += 1
            if any(v != MISSING for v in row):
                rows.append(row)
                labels.append(cat_at[truth])
                items.append((old, tool))
    codes = np.array(rows, dtype=np.int64).reshape(len(rows), len(judges))
    truth_codes = np.array(labels, dtype=np.int64)
    k = len(categories)
    confusion: dict[JudgeKey, list[list[int]]] = {}
    for key, c in column.items():
        counts = np.zeros((k, k), dtype=np.int64)
        seen = codes[:, c] != MISSING
        np.add.at(counts, (truth_codes[seen], codes[seen, c]), 1)
        confusion[key] = counts.tolist()
    rests_on = {key: int(sum(map(sum, confusion[key]))) for key in judges}
    notes = [_note(key, rests_on[key], why, n) for key in judges for why, n in sorted(elsewhere[key].items())]
    return JudgeReliabilities(
        run_id, list(categories), judges, mine, items, codes, truth_codes, confusion, rests_on, notes
    )  # fmt: skip


def _changed(old: JudgeIdentity, new: JudgeIdentity) -> tuple[str, str]:
    """What differs between a judge's identity then and now, in words: (then, now)."""
    then, now = [], []
    for name, a, b in (
        ("model", old.model, new.model),
        ("persona version", old.persona_version, new.persona_version),
        ("prompts version", old.prompts, new.prompts),
    ):
        if a != b:
            then.append(f"{name} {a or 'unrecorded'}")
            now.append(f"{name} {b or 'unrecorded'}")
    return ", ".join(then), ", ".join(now)


def _note(key: JudgeKey, kept: int, changed: tuple[str, str], n: int) -> str:
    persona, member = key
    labels = "label" if n == 1 else "labels"
    return (
        f"{persona} / {member}: {n} {labels} under {changed[0]}, {kept or 'none'} under {changed[1]}: "
        "its old reliability no longer applies"
    )


def as_plain(rel: JudgeReliabilities) -> Mapping[str, Any]:
    """The figures as plain JSON-ready data (for a record or a report)."""
    return {
        "run": rel.run_id,
        "categories": rel.categories,
        "judges": [
            {
                "persona": p,
                "member": m,
                "identity": rel.identities[(p, m)]._asdict(),
                "confusion": rel.confusion[(p, m)],
                "labels": rel.rests_on[(p, m)],
            }
            for p, m in rel.judges
        ],
        "labels": rel.n_labels,
        "notes": rel.notes,
    }
