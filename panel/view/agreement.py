"""A run's agreement page inside the view: the tables and plots of `panel agreement --report`,
computed from the same analysis and drawn by the same template (the agreement block,
`analysis/agreement_block.html.j2`), under the view's CSP.

The file is self-contained (inline CSS, a meta CSP); here the same stylesheet
(`agreement.css`, beside the template) is served as `/static/agreement.css` and the block is
placed in the view's layout. Plots stay PNG data URIs (the CSP allows `img-src data:`). The
analysis needs the `analysis` extra; without it, or for a run it cannot read, the page says
so in one sentence.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..errors import MissingDependencyError, UserError
from ..store import Store
from .templating import page

if TYPE_CHECKING:
    from ..analysis.html import AgreementPage

__all__ = ["REFERENCES", "agreement_css", "routes"]

#: what `?reference=` may name: a labels file is a path on the server, so the page takes none
REFERENCES = ("community", "editors")
#: the bootstrap of `panel agreement`'s defaults, so the page shows the figures its JSON prints
RESAMPLES, SEED = 2000, 0
# One analysis at a time: it is CPU-bound, and matplotlib's pyplot is not thread-safe.
_ANALYSIS_LOCK = threading.Lock()


@dataclass(frozen=True)
class Outcome:
    """What the report shows, or the sentence saying why there is none."""

    report: AgreementPage | None
    reason: str | None = None


@lru_cache(maxsize=1)
def agreement_css() -> str:
    """The report file's own stylesheet, and the view's switch of reference."""
    from ..analysis.html import TEMPLATES

    css = (TEMPLATES / "agreement.css").read_text(encoding="utf-8")
    view = (
        ".viewbar .crumb-choice { margin-left: auto; color: var(--muted); }\n"
        ".viewbar .crumb-choice + .crumb-choice { margin-left: 1em; }\n"
    )
    return f"{css}\n/* the view's switch of reference: none, the community's votes, the editors' */\n{view}"


def report_data(store: Store, run_id: str, reference: str | None) -> dict[str, Any]:
    """The dict `panel agreement RUN --format json [--reference community|editors]` prints."""
    from ..analysis import agreement as analysis
    from ..analysis.biases import report_biases

    report = analysis.analyze(store, [run_id], "rater", RESAMPLES, SEED, reference=reference)
    data: dict[str, Any] = report.to_dict()
    data["biases"] = report_biases(store, [run_id], data, n_resamples=RESAMPLES, seed=SEED)
    return data


def _missing(exc: ImportError) -> str:
    package = exc.name or "numpy"
    return (
        f"The agreement page needs the Python package '{package.split('.')[0]}', which is not "
        "installed: pip install 'toolpanel[analysis]'."
    )


#: pages an app keeps, by run, reference and the state of the run's reviews (the bootstrap
#: and the plots take a second or more; the same figures need not be drawn twice)
_KEPT = 16
Kept = OrderedDict[tuple[object, ...], Outcome]


def build(store: Store, run_id: str, reference: str | None, kept: Kept | None = None) -> Outcome:
    """The page's body for the run, or one sentence why it cannot be shown; from `kept` when
    the run's reviews are as they were when it was drawn."""
    _kept: Kept = OrderedDict() if kept is None else kept
    # The editors' labels move without the reviews (an approval, a publish, another run's label).
    labels = store.labels_stamp() if reference == "editors" else None
    key = (run_id, reference, store.run_state(run_id), labels)
    with _ANALYSIS_LOCK:
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key]
        outcome = _build(store, run_id, reference)
        _kept[key] = outcome
        while len(_kept) > _KEPT:
            _kept.popitem(last=False)
    return outcome


def _build(store: Store, run_id: str, reference: str | None) -> Outcome:
    try:
        data = report_data(store, run_id, reference)
        from ..analysis.html import agreement_page

        report = agreement_page(data)
    except ImportError as exc:
        return Outcome(None, _missing(exc))
    except MissingDependencyError as exc:  # "FEATURE needs the Python package 'X': pip install ..."
        text = str(exc)
        return Outcome(None, f"The agreement page{text[text.find(' needs') :]}.")
    except UserError as exc:  # a run with no reviews, a reference with no tool in the run, ...
        return Outcome(None, f"No agreement for this run: {exc}.")
    return Outcome(report)


def agreement_page(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    reference = request.query_params.get("reference") or None
    if reference is not None and reference not in REFERENCES:
        raise HTTPException(
            400,
            "The reference can only be 'community' or 'editors' here (a labels file: panel agreement).",
        )
    runs: Path = request.app.state.runs
    if not (runs / "panel.db").is_file():
        raise HTTPException(404, f"There is no run '{run_id}' in this store.")
    with Store(runs, readonly=True) as store:
        if store.get_run(run_id) is None:
            raise HTTPException(404, f"There is no run '{run_id}' in this store.")
        if not hasattr(request.app.state, "agreement_pages"):
            request.app.state.agreement_pages = Kept()
        outcome = build(store, run_id, reference, request.app.state.agreement_pages)
    return page(
        request,
        "agreement.html.j2",
        run_id=run_id,
        reference=reference,
        outcome=outcome,
        report=outcome.report,
    )


def stylesheet(request: Request) -> Response:
    return Response(agreement_css(), media_type="text/css", headers={"cache-control": "max-age=3600"})


def routes() -> list[BaseRoute]:
    return [
        Route("/runs/{run_id}/agreement", agreement_page, name="agreement"),
        Route("/static/agreement.css", stylesheet, name="agreement_css"),
    ]
