"""A run's leaderboard inside the view: the board `panel rank` wrote (``leaderboard.json`` in
the run's folder), drawn by the same block as the file (`report/leaderboard_block.html.j2`),
under the view's CSP.

The file is self-contained (its CSS inline, a meta CSP); here its stylesheet
(`leaderboard.css`, beside the template) is served as `/static/leaderboard.css` on top of the
comparison's, and the bars' widths are the classes of the view's comparison.css. A run without
the file is a 404; a file that is not a leaderboard (cut short, edited by hand, of another
version, with a number that is not finite) is an error page naming the file and what is wrong
with it, never a traceback; so is a board of another run (its `run_id`), naming that run.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..errors import UserError
from ..report.leaderboard_render import leaderboard_context, read_leaderboard
from ..report.render import TEMPLATES
from ..store import Store
from .templating import page

__all__ = ["LEADERBOARD", "has_leaderboard", "leaderboard_css", "routes"]

#: the board's file in a run's folder, as `panel rank` writes it
LEADERBOARD = "leaderboard.json"


def has_leaderboard(store: Store, run_id: str) -> bool:
    """Whether the run's folder holds a leaderboard (so its page links to it)."""
    return (store.run_dir(run_id) / LEADERBOARD).is_file()


@lru_cache(maxsize=1)
def leaderboard_css() -> str:
    """The file's own stylesheet (the rules it adds to comparison.css)."""
    return (TEMPLATES / "leaderboard.css").read_text(encoding="utf-8")


def leaderboard_page(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    runs: Path = request.app.state.runs
    if not (runs / "panel.db").is_file():
        raise HTTPException(404, f"There is no run '{run_id}' in this store.")
    with Store(runs, readonly=True) as store:
        run = store.get_run(run_id)
        if run is None:
            raise HTTPException(404, f"There is no run '{run_id}' in this store.")
        path = store.run_dir(run_id) / LEADERBOARD
    if not path.is_file():
        raise HTTPException(404, f"Run '{run_id}' has no leaderboard: `panel rank` writes one.")
    try:
        board = read_leaderboard(path)
    except UserError as exc:
        raise HTTPException(500, f"The leaderboard of run '{run_id}' cannot be shown: {exc}.") from None
    if board.run_id != run_id:  # copied or misplaced: never shown as this run's
        raise HTTPException(
            500,
            f"The leaderboard of run '{run_id}' cannot be shown: {path} belongs to run '{board.run_id}'.",
        )
    return page(request, "leaderboard.html.j2", run=run, **leaderboard_context(board, inline_style=False))


def stylesheet(request: Request) -> Response:
    return Response(leaderboard_css(), media_type="text/css", headers={"cache-control": "max-age=3600"})


def routes() -> list[BaseRoute]:
    return [
        Route("/runs/{run_id}/leaderboard", leaderboard_page, name="leaderboard"),
        Route("/static/leaderboard.css", stylesheet, name="leaderboard_css"),
    ]
