"""The view's routes: the runs list, a run's comparison (or a review run's tools), one tool's
record with its verdict history across runs, the shared stylesheets, and the error pages.

Handlers are plain functions: Starlette runs them in its thread pool, and each opens the
store read-only for its own request (no writer lock, nothing written).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import UserError
from ..report.confidence import cached_confidence
from ..report.history import verdict_history
from ..store import RUN_STATUSES, Store
from . import data
from .actions import ReviewControls
from .comparison import comparison, comparison_css
from .leaderboard import has_leaderboard
from .templating import base_of, page

__all__ = ["http_error", "not_found", "routes", "server_error"]

_STATIC = Path(__file__).parent / "static"
#: runs a tool's verdict history lists, newest first
HISTORY_SHOWN = 100


def _runs_dir(request: Request) -> Path:
    runs: Path = request.app.state.runs
    return runs


@contextmanager
def _store(request: Request) -> Iterator[Store | None]:
    """The store opened read-only, or None while the runs folder holds no store yet."""
    runs = _runs_dir(request)
    if not (runs / "panel.db").is_file():
        yield None
        return
    with Store(runs, readonly=True) as store:
        yield store


def _page_number(value: str | None) -> int:
    try:
        return max(1, int(value or 1))
    except ValueError:
        return 1


def runs_list(request: Request) -> Response:
    params = request.query_params
    status = params.get("status") or None
    tool = params.get("tool") or None
    if status is not None and status not in RUN_STATUSES:
        raise HTTPException(400, f"There is no run status '{status}'.")
    with _store(request) as store:
        listing = data.list_runs(store, status, tool, _page_number(params.get("page"))) if store else None
    return page(
        request,
        "runs.html.j2",
        listing=listing,
        statuses=RUN_STATUSES,
        status=status,
        tool=tool,
        runs_dir=str(_runs_dir(request)),
    )


def run_page(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    with _store(request) as store:
        run = store.get_run(run_id) if store else None
        if store is None or run is None:
            raise HTTPException(404, f"There is no run '{run_id}' in this store.")
        if run.kind == "review":
            tools = data.review_tools(store, run_id)
            confidence = cached_confidence(store, run_id)
            shown, number, pages = data.paged(tools, _page_number(request.query_params.get("page")))
            return page(
                request, "review_run.html.j2", run=run, tools=shown, count=len(tools), page_number=number,
                pages=pages, confidence=confidence, leaderboard=has_leaderboard(store, run_id),
            )  # fmt: skip
        record = data.run_record(store, run_id)
        actions = ReviewControls.read(store, run_id, request.state.csrf, base_of(request))
        ranked = has_leaderboard(store, run_id)
    bar = actions.bar(record, None)
    return page(
        request,
        "comparison.html.j2",
        **comparison(record, actions),
        editor_bar=bar,
        tool=None,
        leaderboard=ranked,
    )


def tool_page(request: Request) -> Response:
    run_id, tool_id = request.path_params["run_id"], request.path_params["tool_id"]
    with _store(request) as store:
        if store is None or store.get_run(run_id) is None:
            raise HTTPException(404, f"There is no run '{run_id}' in this store.")
        record = data.tool_record(store, run_id, tool_id)
        actions = ReviewControls.read(store, run_id, request.state.csrf, base_of(request), tool_id)
        history = verdict_history(store, tool_id) if record is not None else []
    if record is None:
        raise HTTPException(404, f"Run '{run_id}' has no tool '{tool_id}'.")
    bar = actions.bar(record, tool_id)
    return page(
        request,
        "comparison.html.j2",
        **comparison(record, actions),
        editor_bar=bar,
        tool=tool_id,
        history=history[:HISTORY_SHOWN],
        history_more=len(history) - len(history[:HISTORY_SHOWN]),
        shown_run=run_id,
    )


def comparison_stylesheet(request: Request) -> Response:
    return Response(comparison_css(), media_type="text/css", headers={"cache-control": "max-age=3600"})


def routes() -> list[BaseRoute]:
    return [
        Route("/", runs_list, name="runs"),
        Route("/runs/{run_id}", run_page, name="run"),
        Route("/runs/{run_id}/tools/{tool_id}", tool_page, name="tool"),
        Route("/static/comparison.css", comparison_stylesheet, name="comparison_css"),
        Mount("/static", app=StaticFiles(directory=_STATIC), name="static"),
    ]


async def not_found(request: Request, exc: Exception) -> Response:
    detail = exc.detail if isinstance(exc, HTTPException) else "Not found."
    if detail == "Not Found":
        detail = "There is no page at this address."
    return _error_page(request, 404, detail)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error_page(request, exc.status_code, exc.detail)


async def server_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, UserError):  # a store that cannot be read, a run gone since
        return _error_page(request, 500, str(exc))
    return _error_page(request, 500, "Something went wrong on the server; its log says what.")


def _error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    return page(request, "error.html.j2", status, status_code=status, detail=detail)
