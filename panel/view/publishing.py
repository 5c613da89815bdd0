"""Publishing a run from `panel view`: what stands in the way, the files, their downloads.

GET lists what blocks publishing (unapproved, failed, missing reviews of the panel). POST
writes `comparison.html`, `.md` and `.json` into `<run dir>/published/` with `publish()`, as
one set (all three change at once), published by the editor the session names (asked first
when it names none), refusing (409, nothing written) while something blocks it, unless
"publish anyway" is ticked; then the files carry the warnings in their provenance. A publish
is also recorded on each tool of the page: the panel's pooled verdict the editor let stand
(`Store.label_publish`; history, not counted as an editor's label by default), written in one
transaction with the files, before they swap in: a refused publish keeps none, and a store that
cannot take them answers one line (503) to publish again. The pages
are for readers: "how this page was made" adds the editorial internals at their end. The three
files, and only they, are served as downloads, each from the set in force.
"""

from __future__ import annotations

import sqlite3

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..errors import UserError
from ..report.fileset import read_current
from ..report.publish import publish, publish_record
from ..store import RunRow, Store
from .actions import run_url
from .pages import _store as read_store
from .templating import page
from .who import ask_name
from .writing import writable_store

__all__ = ["FOLDER", "MEDIA_TYPES", "routes"]

#: where a run's published files go, inside its run folder
FOLDER = "published"
#: the files served for download, with their media types
MEDIA_TYPES = {
    "comparison.html": "text/html; charset=utf-8",
    "comparison.md": "text/markdown; charset=utf-8",
    "comparison.json": "application/json",
}


def _run(store: Store | None, run_id: str) -> tuple[Store, RunRow]:
    run = store.get_run(run_id) if store is not None else None
    if store is None or run is None:
        raise HTTPException(404, f"There is no run '{run_id}' in this store.")
    return store, run


def _published(store: Store, run_id: str) -> list[str]:
    folder = store.run_dir(run_id) / FOLDER
    return [name for name in MEDIA_TYPES if (folder / name).is_file()]


def _blockers(store: Store, run_id: str) -> list[str]:
    """What stands in the way of publishing, each as "4 unapproved (...)"."""
    _, warnings = publish_record(store, run_id)
    return [w.removeprefix("published with ") for w in warnings]


def publish_page(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    with read_store(request) as opened:
        store, run = _run(opened, run_id)
        blockers = _blockers(store, run_id)
        files = _published(store, run_id)
    return page(request, "publish.html.j2", run=run, blockers=blockers, files=files, refusal=None, done=False)


def _publish(request: Request, run_id: str, anyway: bool, how_made: bool) -> Response:
    editor = request.state.editor
    with writable_store(request) as store:
        _, run = _run(store, run_id)
        if not editor:
            return ask_name(request, f"{run_url(run_id)}/publish", "publishing")
        folder = store.run_dir(run_id) / FOLDER
        try:
            with store.transaction():  # the publish rows first: kept only when the files are written
                store.label_publish(run_id, editor)
                result = publish(
                    store, run_id, folder, allow_unapproved=anyway, editor=editor, how_made=how_made
                )
        except UserError as exc:
            return _refused(request, store, run, 409, str(exc))
        except sqlite3.Error as exc:
            why = f"the publish could not be recorded in the store ({exc}): publish again"
            return _refused(request, store, run, 503, why)
    files = [path.name for path in result.paths if path.name in MEDIA_TYPES]
    files.sort(key=list(MEDIA_TYPES).index)
    return page(
        request, "publish.html.j2", run=run, blockers=result.warnings, files=files, refusal=None, done=True
    )


def _refused(request: Request, store: Store, run: RunRow, status: int, why: str) -> Response:
    blockers, files = _blockers(store, run.id), _published(store, run.id)
    context = {"run": run, "blockers": blockers, "files": files, "done": False}
    return page(request, "publish.html.j2", status, refusal=why, **context)


async def publish_now(request: Request) -> Response:
    form = await request.form()
    anyway, how_made = form.get("anyway") == "1", form.get("how_made") == "1"
    return await run_in_threadpool(_publish, request, request.path_params["run_id"], anyway, how_made)


def download(request: Request) -> Response:
    run_id, name = request.path_params["run_id"], request.path_params["name"]
    if name not in MEDIA_TYPES:
        raise HTTPException(404, f"Only {', '.join(MEDIA_TYPES)} are published.")
    with read_store(request) as opened:
        store, _ = _run(opened, run_id)
        content = read_current(store.run_dir(run_id) / FOLDER, name)
    if content is None:
        raise HTTPException(404, f"Run '{run_id}' has no published {name} yet.")
    disposition = f'attachment; filename="{name}"'
    return Response(content, media_type=MEDIA_TYPES[name], headers={"content-disposition": disposition})


def routes() -> list[BaseRoute]:
    return [
        Route("/runs/{run_id}/publish", publish_page, methods=["GET"], name="publish"),
        Route("/runs/{run_id}/publish", publish_now, methods=["POST"], name="publish_now"),
        Route("/runs/{run_id}/published/{name}", download, methods=["GET"], name="published"),
    ]
