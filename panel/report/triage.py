"""Triage of a run: its tools most doubtful first and, against a reference, which verdicts may
be published unread. One function, :func:`triage`, serves `panel triage`, `panel review
--escalate` (the run's ``triage.json``) and the app's Triage page.

**The ranking** is :func:`panel.report.ranking.ranked` over the run's confidence.

**The rule** (with a reference: the editors' labels in the store, a labels CSV, or the
community's votes) is :func:`panel.analysis.escalation.choose_threshold`, binary: the panel's
verdict is the side its probability of ship favours (ship above 0.5, not ship below, none at
0.5), a tool's confidence the probability of that verdict, and a reference label agrees when
it is on the same side. Tools whose confidence reaches the chosen threshold are published
unread, the others go to an editor; with too few labels (or none) no guarantee is possible,
every tool goes to an editor and the ranking stands alone.

**Keeping the bound honest.** The Clopper-Pearson bound holds only if the probabilities were
not fitted on the labels the threshold is checked on. The probabilities used here come from
one of: Dawid-Skene on the run's verdicts (no label read), the vote share (no label read), or
judges' reliabilities carried forward from editor labels of *earlier* runs. For the last, the
reliabilities are counted again with every tool the reference labels left out
(``carried_forward(leave_out=...)``): a tool's own label, on this run or an earlier run of the
same entry, never reaches the probability it is checked against. And the votes are the models'
own verdicts: an editor's edited verdict is itself a label (`panel.store.labels`), so it is not
read as a judge's vote. So the rule's confidence can differ from the one `panel show` prints for
a run whose tools were labelled or edited; the JSON says which method it rests on and how many
labels (``rests_on``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import MissingExtraError, UserError
from ..store import Store
from ..text import clean
from .confidence import carried_forward, run_confidence
from .pooled import SHIP
from .ranking import as_row, ranked
from .record import Confidence
from .triage_file import TRIAGE_VERSION

__all__ = [
    "ASSUMPTION",
    "COLUMNS",
    "COMMUNITY_VOTES",
    "Triage",
    "audit_sample",
    "check_labels",
    "check_rule",
    "parse_reference",
    "require_rule",
    "rule_categories",
    "rule_share",
    "triage",
]

#: the columns of each tool's row in the JSON and the CSV, in order (stable: other tools read them)
COLUMNS = ("rank", "tool_id", "name", "doubt", "ship", "low", "high", "method", "reviews", "contested",
           "reasons", "why", "verdict", "decision", "reference")  # fmt: skip
#: votes a tool needs for the community's majority to be its reference (as `panel agreement`)
COMMUNITY_VOTES = 5
#: resamples of the labels' own agreement, which triage does not show (read as in `panel agreement`)
_RESAMPLES = 100
#: what the rule's bound assumes of the labelled tools, said beside every guarantee
ASSUMPTION = "assuming the labelled tools are a random sample of the run"
EDITORS = "editors"
COMMUNITY = "community"
Decision = Literal["publish", "editor"]


@dataclass(frozen=True)
class Triage:
    """A run's tools, most doubtful first, and the rule's outcome when a reference was given.

    ``reference`` is what was given: ``editors``, ``community`` or the labels file's path.
    ``rows`` are :data:`COLUMNS` dicts (``decision`` and ``reference`` None without a
    reference); ``rule`` is the rule's figures (``Chosen``/``Refused.to_dict()`` without the
    per-tool decisions) or None; ``sentence`` the one line a reader is told; ``notes`` what
    else they should know (judges whose old reliability no longer applies, the reference's
    notes)."""

    run_id: str
    rows: list[dict[str, Any]]
    reference: str | None = None
    rule: dict[str, Any] | None = None
    sentence: str = ""
    notes: list[str] = field(default_factory=list)
    method: str = ""  # the confidence's method(s), e.g. "dawid-skene"
    rests_on: int = 0  # editor labels of earlier runs the reliabilities rest on
    #: each tool's confidence the rows were made from (for a page's reasons); not in the JSON
    confidence: Mapping[str, Confidence] = field(default_factory=dict, repr=False, compare=False)

    @property
    def guarantee(self) -> bool:
        return bool(self.rule and self.rule.get("guarantee"))

    @property
    def label_word(self) -> str:
        """What the labels are called in a sentence: editor, community or reference labels."""
        return {EDITORS: "editor", COMMUNITY: "community"}.get(self.reference or "", "reference")

    def to_dict(self, limit: int | None = None) -> dict[str, Any]:
        """The JSON of `panel triage --format json` and of ``triage.json``."""
        return {
            "version": TRIAGE_VERSION,
            "run": self.run_id,
            "reference": self.reference,
            "method": self.method,
            "rests_on": self.rests_on,
            "rule": self.rule,
            "sentence": self.sentence,
            "notes": self.notes,
            "tools": [_plain(row) for row in (self.rows[:limit] if limit is not None else self.rows)],
        }

    def summary(self) -> str:
        """One line for the end of `panel review --escalate`."""
        r = self.rule
        if r is None or not self.guarantee:
            why = self.sentence or "No reference was given: no guarantee is possible."
            return f"{why} Every verdict needs an editor; the ranking by doubt is in triage.json."
        editor = r["tools"] - r["published"]
        return (
            f"{r['published']:,} of {r['tools']:,} verdicts can be published unread (coverage "
            f"{r['coverage']:.2f}) at agreement >= {r['target']:.2f} with {r['level']:.0%} confidence, "
            f"threshold {r['threshold']:.2f}, on {r['labels']:,} {self.label_word} labels ({ASSUMPTION}); "
            f"{editor:,} need{'s' if editor == 1 else ''} an editor"
        )


def parse_reference(spec: str | None) -> str | None:
    """``editors``, ``community`` or a labels file that exists; UserError naming the option."""
    if spec is None or spec in (EDITORS, COMMUNITY):
        return spec
    path = Path(spec)
    if not path.is_file():
        raise UserError(f"--reference {spec}: no such labels file (give editors, community or a CSV path)")
    return spec


#: the decimals a rule's target and level keep where they are parsed (`rule_share`)
DECIMALS = 3


def rule_share(value: float) -> float:
    """A target or level as the rule takes it: rounded to :data:`DECIMALS` (0.9000001 is the
    rule of 0.9), wherever it is read (`panel triage`, `panel review --escalate`, the app)."""
    return round(value, DECIMALS)


def check_rule(target: float, level: float) -> None:
    """UserError (one line) naming the option when ``target`` is not strictly between 0 and 1,
    or ``level`` is not at least 0.5 and below 1 (a bound held with less confidence than a coin
    toss promises nothing)."""
    if not 0.0 < target < 1.0:
        raise UserError(f"--target {target}: give a share strictly between 0 and 1 (e.g. 0.9)")
    if not 0.5 <= level < 1.0:
        raise UserError(f"--level {level}: give a confidence of at least 0.5 and below 1 (e.g. 0.95)")


def require_rule() -> None:
    """MissingExtraError (one line, exit 2) when the rule's libraries (the analysis extra) are
    not installed: checked before any long work."""
    try:
        import numpy  # noqa: F401
        import scipy.stats  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError("the triage rule (--reference)", exc.name or "scipy", "analysis") from None


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A row for the JSON (and the CLI's CSV): the catalog's and the models' text (name, why,
    ...) on one line, with no terminal controls or bidi overrides (`clean`), which a reader's
    terminal or viewer would otherwise act on; numbers and flags as they are."""
    return {k: clean(v).replace("\n", " ") if isinstance(v, str) else v for k, v in row.items()}


def triage(
    store: Store,
    run_id: str,
    *,
    reference: str | None = None,
    target: float = 0.9,
    level: float = 0.95,
    confidence: Mapping[str, Confidence] | None = None,
) -> Triage:
    """The run's triage (module docstring). ``reference`` is None, ``"editors"``,
    ``"community"`` or a labels CSV path. ``confidence`` (the run's, e.g. the app's cached
    one) is used for the ranking without a reference; with one it is computed here, with the
    reference's tools left out of any carried-forward reliabilities. Raises UserError (one
    line) for a bad reference or rule, and when the rule needs the analysis extra."""
    check_rule(target, level)
    reference = parse_reference(reference)
    names = {str(t["id"]): str(t.get("name") or t["id"]) for t in store.run_tools(run_id)}
    if reference is None:
        carried = carried_forward(store, run_id)
        found = confidence if confidence is not None else run_confidence(
            store, run_id, reliabilities=carried.reliabilities or None, carry_forward=False
        )  # fmt: skip
        return _made(run_id, found, names, None, None, "", carried.notes)
    require_rule()
    from ..analysis.escalation import choose_threshold

    tools = list(names)
    categories = rule_categories(store.run_personas(run_id))
    labels, ref_notes = _reference(store, run_id, reference, tools, categories)
    labelled = [t for t, lab in zip(tools, labels, strict=True) if lab is not None]
    carried = carried_forward(store, run_id, leave_out=labelled)
    found = run_confidence(store, run_id, reliabilities=carried.reliabilities or None, carry_forward=False)
    probability = [found[t].ship if t in found else None for t in tools]
    verdict = [_side(p) for p in probability]
    rule = choose_threshold(probability, verdict, labels, target=target, level=level)
    decisions = dict(zip(tools, rule.decisions, strict=True))
    refs = dict(zip(tools, labels, strict=True))
    figures = {k: v for k, v in rule.to_dict().items() if k != "decisions"}
    if rule.guarantee:  # the bound holds for a random sample of labels only: say so
        figures["sentence"] = f"{rule.sentence.removesuffix('.')} ({ASSUMPTION})."
    return _made(
        run_id, found, names, reference, figures, figures["sentence"], [*carried.notes, *ref_notes],
        decisions=decisions, refs=refs,
    )  # fmt: skip


def rule_categories(personas: Sequence[Mapping[str, Any]]) -> list[str]:
    """The verdicts a reference is read against: the personas' own, ship first if none has it."""
    from ..analysis.research import categories_of

    categories = categories_of(personas)
    return categories if SHIP in categories else [SHIP, *categories]


def check_labels(spec: str | None, tools: Sequence[str], personas: Sequence[Mapping[str, Any]]) -> None:
    """Before a run: a labels file given as ``spec`` is read as the triage reads it after the
    run (the planned tools, the personas' verdicts), so a bad file is refused (UserError, one
    line naming the file and line) before anything is sent or written. ``editors`` and
    ``community`` have nothing to read yet. One resample of the labels' own agreement (not
    shown anywhere) keeps the check cheap."""
    spec = parse_reference(spec)
    if spec is None or spec in (EDITORS, COMMUNITY):
        return
    require_rule()
    from ..analysis.reference import load_labels

    load_labels(Path(spec), tools, rule_categories(personas), n_resamples=1)


def _side(p: float | None) -> str | None:
    if p is None or p == 0.5:
        return None
    return SHIP if p > 0.5 else "not ship"


def _reference(
    store: Store, run_id: str, spec: str, tools: Sequence[str], categories: Sequence[str]
) -> tuple[list[str | None], list[str]]:
    """Each tool's reference folded to ship / not ship (None when it has none) and its notes.
    The editors' labels with none yet give no label at all (the rule then refuses), not an
    error: a fresh run has none."""
    from ..analysis.editors import editors_reference
    from ..analysis.reference import community_reference, load_labels

    if spec == EDITORS:
        try:
            ref = editors_reference(store, run_id, tools, categories, n_resamples=_RESAMPLES)
        except UserError as exc:
            return [None] * len(tools), [str(exc).removeprefix("--reference editors: ")]
    elif spec == COMMUNITY:
        ref = community_reference(store.run_tools(run_id), tools, categories, COMMUNITY_VOTES)
    else:
        ref = load_labels(Path(spec), tools, categories, n_resamples=_RESAMPLES)
    folded: list[str | None] = [
        None if k < 0 else SHIP if categories[k] == SHIP else "not ship" for k in ref.labels.tolist()
    ]
    return folded, list(ref.notes)


def _made(
    run_id: str,
    found: Mapping[str, Confidence],
    names: Mapping[str, str],
    source: str | None,
    rule: dict[str, Any] | None,
    sentence: str,
    notes: list[str],
    *,
    decisions: Mapping[str, Decision] | None = None,
    refs: Mapping[str, str | None] | None = None,
) -> Triage:
    rows = []
    for rank, (tool_id, c) in enumerate(ranked(found), start=1):
        row = {"rank": rank, **as_row(tool_id, names.get(tool_id, tool_id), c)}
        row["verdict"] = _side(c.ship)
        row["decision"] = None if decisions is None else decisions.get(tool_id, "editor")
        row["reference"] = None if refs is None else refs.get(tool_id)
        rows.append(row)
    methods = sorted({c.method for c in found.values()})
    rests_on = max((c.labels for c in found.values() if c.method == "editors"), default=0)
    return Triage(run_id, rows, source, rule, sentence, notes, "+".join(methods), rests_on, found)


def audit_sample(tool_ids: Sequence[str], n: int, seed: int) -> list[str]:
    """`n` of the run's tools drawn at random, the same for the same `seed` and run: a sample
    for the editors to label, which the rule's bound assumes (a triage-ordered queue, most
    doubtful first, is not one). UserError (one line) when `n` is not between 1 and the run's
    tools."""
    if not 1 <= n <= len(tool_ids):
        raise UserError(f"--audit {n}: give a number of tools between 1 and the run's {len(tool_ids):,}")
    return random.Random(seed).sample(sorted(tool_ids), n)
