"""The editors' labels as a reference (`--reference editors`).

The labels in force are the store's (`Store.labels_in_force`): the latest of each editor on
each tool of the run, from the run itself and from other runs whose entry of the tool is the
same (`run_tools.fingerprint`: the same facts, so the same truth). Only approvals and verdict
edits count: a publish lets the panel's verdict stand and judges nothing of its own, so a
reference of publishes would score the panel against itself; a run whose tools have only
publishes is refused. Each editor is a rater, as
a labels file's ``rater`` column makes one: a tool's reference is the verdict most of its
editors give, a tie gives none, and the editors' agreement among themselves is reported. The
scores then use the same code and intervals as a labels file.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import UserError
from ..store import Store
from .reference import Reference, labels_reference

__all__ = ["EDITORS", "editors_reference"]

#: what `--reference` takes for the editors' labels
EDITORS = "editors"


def editors_reference(
    store: Store,
    run_id: str,
    tools: Sequence[str],
    categories: Sequence[str],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Reference:
    """The editors' labels in force on a run's tools as a reference; UserError, one line, when
    no tool of the run has one. (A threshold chosen on it leaves its tools out of the carried
    reliabilities instead: `panel.report.triage`.)"""
    found = store.labels_in_force(run_id)
    if not found:
        published = store.labels_in_force(run_id, count_publishes=True)
        if published and all(f.action in ("publish", "approve_all") for f in published):
            raise UserError(
                f"--reference editors: the labels on run '{run_id}' are only publishes or approvals "
                f"made all at once ({len(published)}), none of one review: these let the panel's "
                "verdict stand and are no judgement of their own; approve or edit reviews one by one "
                "in `panel view`, or give a labels file"
            )
        raise UserError(
            f"--reference editors: no editor has labelled a tool of run '{run_id}' yet: approve, "
            "or edit its reviews in `panel view`, or give a labels file"
        )
    editors = sorted({f.editor for f in found})
    source = f"editors ({len(found)} label{'s' if len(found) != 1 else ''} by {', '.join(editors)})"
    reference = labels_reference(
        source, ((f.tool_id, f.verdict, f.editor) for f in found), tools, categories,
        n_resamples=n_resamples, seed=seed,
    )  # fmt: skip
    if not reference.n_labelled:
        why = "; ".join(reference.notes)
        raise UserError(f"--reference editors: no tool of run '{run_id}' has a reference ({why})")
    return reference
