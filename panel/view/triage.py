"""A run's Triage page: its tools most doubtful first, as `panel triage` ranks them, each with
its ship probability, interval, method and contested reasons, a link to its own page, and
whether the editors have labelled it yet (so an editor sees what is left).

The order is `panel triage`'s own (`panel.report.triage.triage`, over the run's cached
confidence): the page adds no ranking of its own, only a filter and pages. The ranked
rows are made once per state of the run's reviews, of the store's labels and of the earlier
runs it carries from (`decided`); a page then costs one read of its labels, whatever page it
shows.

With a reference (`?reference=editors|community`, and `target`/`level` as `panel triage
--target/--level`, with the same defaults and checks) the page shows `panel triage
--reference`'s own outcome: the run-level line (threshold, bound, coverage and labels, or why no
guarantee is possible) and each tool's decision, publish unread or needs an editor. That outcome
is computed once per state of the run's reviews, of the store's editor labels, of the earlier
runs and of the rule's options (`decided`, target and level rounded to 3 decimals), not once a
page, and once however many requests ask for it at the same time. A labels file is a path on
the server: `panel triage` takes it, the page does not.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..errors import UserError
from ..report.confidence_cache import Memo, previous_key
from ..report.ranking import run_basis
from ..report.record import Confidence
from ..report.triage import Triage, audit_sample, check_rule, rule_share, triage
from ..store import Store
from ..store.labels import ToolLabel
from .data import PER_PAGE, paged
from .pages import _page_number
from .pages import _store as read_store
from .templating import page

__all__ = ["PER_PAGE", "REFERENCES", "Rule", "TriageLine", "TriagePage", "decided", "routes", "triage_page"]

#: what `?reference=` may name (a labels file is a path on the server: `panel triage` takes it)
REFERENCES = ("community", "editors")
#: `panel triage`'s defaults of --target and --level
TARGET, LEVEL = 0.9, 0.95

#: the words the page gives each method
METHODS = {
    "dawid-skene": "Dawid–Skene",
    "editors": "editors' labels",
    "vote-share": "vote share",
    "none": "cannot be estimated",
}


@dataclass(frozen=True)
class TriageLine:
    """One tool on the page: its row of `panel triage`, its confidence, its labels in force."""

    row: dict[str, Any]
    confidence: Confidence
    labels: list[ToolLabel]

    @property
    def decision(self) -> str | None:
        """The publish/editor decision when the triage rows carry one (the rule's column)."""
        found = self.row.get("decision")
        return None if found is None else str(found)


@dataclass(frozen=True)
class Rule:
    """The rule the page was asked for and what came of it: `line` is `panel triage`'s
    run-level line, `notes` its other lines, `refused` one sentence when no decision could be
    made here (the analysis extra missing, a reference the run cannot give)."""

    reference: str | None = None
    target: float = TARGET
    level: float = LEVEL
    line: str = ""
    notes: list[str] = field(default_factory=list)
    refused: str = ""


@dataclass(frozen=True)
class TriagePage:
    lines: list[TriageLine]
    #: tools that pass the filters, on every page
    matched: int
    page: int
    pages: int
    #: the run's tools, contested ones, and the tools with at least one label in force
    tools: int
    contested: int
    labelled: int
    #: labels in force on the run's tools (one per editor per tool)
    labels: int
    #: tools by method, most first
    methods: list[tuple[str, int]]
    #: what the commonest method rests on, in one sentence
    basis: str
    rule: Rule = field(default_factory=Rule)
    #: (N, seed) of the audit sample shown, or None
    audit: tuple[int, int] | None = None


#: decided triages an app keeps (the rule refits the run's confidence: not once a page);
#: concurrent requests for one key wait for the one computing it
_DECIDED: Memo[Triage] = Memo(8)


def _key(store: Store, run_id: str, reference: str | None, target: float, level: float) -> tuple[object, ...]:
    """What `decided` depends on: the run's reviews, the store's editor labels, the earlier
    runs its tools' previous verdicts come from and their state (a review regenerated there
    moves `flipped_since` and the reliabilities carried forward), and the rule."""
    earlier = previous_key(store, run_id, store.previous_runs(run_id))
    state = (store.run_state(run_id), store.labels_stamp(), earlier)
    return (str(store.path), run_id, state, reference, target, level)


def decided(store: Store, run_id: str, reference: str | None, target: float, level: float) -> Triage:
    """`panel triage RUN [--reference ... --target ... --level ...]`'s outcome, remembered
    while the run's reviews, the store's editor labels and the earlier runs it carries from
    stay as they were (an approval or an edit moves ``labels_stamp``: the rule is then applied
    again, and the reliabilities carried forward counted again), computed once however many
    requests ask at the same time. ``target`` and ``level`` come rounded as they are parsed
    (`rule_share`, again here), so 0.9 and 0.9000001 are one rule. Raises UserError (one line) as `triage`
    does, e.g. when the analysis extra is missing."""
    target, level = rule_share(target), rule_share(level)  # (as parsed: any caller is the same rule)
    key = _key(store, run_id, reference, target, level)
    if reference is None:  # the ranking alone (its confidence is made here: see `_key`)
        return _DECIDED.get(key, lambda: triage(store, run_id))
    return _DECIDED.get(key, lambda: triage(store, run_id, reference=reference, target=target, level=level))


def _ranked(
    store: Store, run_id: str, rule: Rule
) -> tuple[list[dict[str, Any]], dict[str, Confidence], Rule]:
    """The rows (in `panel triage`'s order), the confidence they were made from, and the rule
    with its outcome filled in."""
    # `panel triage`'s own line, so the page and the command cannot decide apart; imported
    # here, as `panel view` has the command package loaded already and the app alone need not.
    from ..cli.triage import rule_line

    if rule.reference is not None:
        try:
            found = decided(store, run_id, rule.reference, rule.target, rule.level)
            rule = replace(rule, line=rule_line(found), notes=list(found.notes))
        except UserError as exc:  # the analysis extra missing ("... needs the Python package ...")
            found = decided(store, run_id, None, TARGET, LEVEL)
            rule = replace(rule, refused=f"No decision here: {exc}.")
    else:
        found = decided(store, run_id, None, TARGET, LEVEL)
    return found.rows, dict(found.confidence), rule


def triage_page(
    store: Store,
    run_id: str,
    *,
    contested_only: bool,
    unlabelled_only: bool,
    page: int,
    rule: Rule | None = None,
    audit: tuple[int, int] | None = None,
) -> TriagePage:
    """One page of the run's tools in triage order, filtered to the contested or the
    unlabelled ones if asked, decided under `rule` when it names a reference; with `audit`
    (N, seed), only the N tools `panel triage --audit N --seed S` draws, in its order. Raises
    UserError (one line) when N is not between 1 and the run's tools."""
    rows, confidence, rule = _ranked(store, run_id, rule or Rule())
    pool = rows
    if audit is not None:
        by_id = {r["tool_id"]: r for r in rows}
        pool = [by_id[t] for t in audit_sample(list(by_id), *audit)]
    labels: dict[str, list[ToolLabel]] = {}
    in_force = store.labels_in_force(run_id)
    for label in in_force:
        labels.setdefault(label.tool_id, []).append(label)
    kept = [
        r
        for r in pool
        if (r["contested"] or not contested_only) and (r["tool_id"] not in labels or not unlabelled_only)
    ]
    shown, page, pages = paged(kept, page)
    lines = [TriageLine(r, confidence[r["tool_id"]], labels.get(r["tool_id"], [])) for r in shown]
    methods = Counter(c.method for c in confidence.values()).most_common()
    return TriagePage(
        lines=lines,
        matched=len(kept),
        page=page,
        pages=pages,
        tools=len(rows),
        contested=sum(1 for r in rows if r["contested"]),
        labelled=len(labels),
        labels=len(in_force),
        methods=[(METHODS.get(m, m), n) for m, n in methods],
        basis=run_basis(confidence),
        rule=rule,
        audit=audit,
    )


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "") in ("1", "on", "true", "yes")


def _share(request: Request, name: str, default: float) -> float:
    """`?target=` or `?level=` as `panel triage --target/--level` reads it (rounded to 3
    decimals: `rule_share`); 400 (one line) when `check_rule` refuses it."""
    raw = request.query_params.get(name) or ""
    try:
        value = rule_share(float(raw)) if raw else default
    except ValueError:
        raise HTTPException(400, f"{name} {raw}: give a share strictly between 0 and 1 (e.g. 0.9).") from None
    try:
        check_rule(value, LEVEL) if name == "target" else check_rule(TARGET, value)
    except UserError as exc:
        raise HTTPException(400, f"{str(exc).removeprefix('--')}.") from None
    return value


def _rule(request: Request) -> Rule:
    reference = request.query_params.get("reference") or None
    if reference is not None and reference not in REFERENCES:
        raise HTTPException(
            400, "The reference can only be 'community' or 'editors' here (a labels file: panel triage)."
        )
    return Rule(reference, _share(request, "target", TARGET), _share(request, "level", LEVEL))


def _audit(request: Request) -> tuple[int, int] | None:
    """`?audit=N&seed=S` as `panel triage --audit N --seed S` (seed 1 unless given); 400 when
    either is not a whole number."""
    raw, seed = request.query_params.get("audit") or "", request.query_params.get("seed") or "1"
    if not raw:
        return None
    try:
        return int(raw), int(seed)
    except ValueError:
        raise HTTPException(400, f"audit {raw} seed {seed}: give whole numbers (e.g. audit=50).") from None


def triage_view(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    contested_only, unlabelled_only = _flag(request, "contested"), _flag(request, "unlabelled")
    rule, audit = _rule(request), _audit(request)
    with read_store(request) as store:
        run = store.get_run(run_id) if store else None
        if store is None or run is None:
            raise HTTPException(404, f"There is no run '{run_id}' in this store.")
        try:
            found = triage_page(
                store,
                run_id,
                contested_only=contested_only,
                unlabelled_only=unlabelled_only,
                page=_page_number(request.query_params.get("page")),
                rule=rule,
                audit=audit,
            )
        except UserError as exc:  # an audit sample larger than the run
            raise HTTPException(400, f"{str(exc).removeprefix('--')}.") from None
    return page(
        request,
        "triage.html.j2",
        run=run,
        triage=found,
        contested_only=contested_only,
        unlabelled_only=unlabelled_only,
        methods=METHODS,
    )


def routes() -> list[BaseRoute]:
    return [Route("/runs/{run_id}/triage", triage_view, name="triage")]
