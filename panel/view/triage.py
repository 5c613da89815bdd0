"""A run's Triage page: its tools most doubtful first, as `panel triage` ranks them, each with
its ship probability, interval, method and contested reasons, a link to its own page, and
whether the editors have labelled it yet (so an editor sees what is left).

The order is `panel triage`'s own (`panel.cli.triage.triage_rows`, over the run's cached
confidence): the page adds no ranking of its own, only a filter and pages. The confidence
is fitted once per state of the run's reviews (`cached_confidence`); a page then costs a
sort of the run's rows and one read of its labels, whatever page it shows.

The publish/editor decision of each tool (`panel triage --target`) is drawn from the row's
`decision` when the rows carry one; until then the column says it is not decided here.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..report.confidence import cached_confidence
from ..report.record import Confidence
from ..store import Store
from ..store.labels import ToolLabel
from .data import PER_PAGE, paged
from .pages import _page_number
from .pages import _store as read_store
from .templating import page

__all__ = ["PER_PAGE", "TriageLine", "TriagePage", "routes", "triage_page"]

#: the words the page gives each method
METHODS = {
    "dawid-skene": "Dawid–Skene",
    "editors": "editors' labels",
    "vote-share": "vote share",
    "none": "cannot be estimated",
}
_THIS_TOOL = re.compile(r"^(?:vote share of \d+ reviews?, )?(.*?)(?: \(\d+ reviews? of this tool\))?$")


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


def _basis(confidence: dict[str, Confidence], method: str) -> str:
    """The run-wide part of the basis of the tools estimated by `method` (without the counts
    of one tool's own reviews)."""
    for c in confidence.values():
        if c.method == method:
            found = _THIS_TOOL.match(c.basis)
            return found.group(1) if found else c.basis
    return ""


def triage_page(
    store: Store, run_id: str, *, contested_only: bool, unlabelled_only: bool, page: int
) -> TriagePage:
    """One page of the run's tools in triage order, filtered to the contested or the
    unlabelled ones if asked."""
    # `panel triage`'s own rows, so the page and the command cannot rank apart; imported here,
    # as `panel view` has the command package loaded already and the app alone need not.
    from ..cli.triage import triage_rows

    rows = triage_rows(store, run_id)
    confidence = cached_confidence(store, run_id)
    labels: dict[str, list[ToolLabel]] = {}
    in_force = store.labels_in_force(run_id)
    for label in in_force:
        labels.setdefault(label.tool_id, []).append(label)
    kept = [
        r
        for r in rows
        if (r["contested"] or not contested_only) and (r["tool_id"] not in labels or not unlabelled_only)
    ]
    shown, page, pages = paged(kept, page)
    lines = [TriageLine(r, confidence[r["tool_id"]], labels.get(r["tool_id"], [])) for r in shown]
    methods = Counter(c.method for c in confidence.values()).most_common()
    main = next((m for m, _ in methods if m != "none"), "none")
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
        basis=_basis(confidence, main),
    )


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "") in ("1", "on", "true", "yes")


def triage_view(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    contested_only, unlabelled_only = _flag(request, "contested"), _flag(request, "unlabelled")
    with read_store(request) as store:
        run = store.get_run(run_id) if store else None
        if store is None or run is None:
            raise HTTPException(404, f"There is no run '{run_id}' in this store.")
        found = triage_page(
            store,
            run_id,
            contested_only=contested_only,
            unlabelled_only=unlabelled_only,
            page=_page_number(request.query_params.get("page")),
        )
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
