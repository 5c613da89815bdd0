"""POST /runs/{run_id}/review/regenerate: set one review aside and make it again, as a job.

The review is named by form fields (`tool`, `persona`, `member`, `repeat`), never path
segments, and `reason` says why (kept in the review's history, with the editor the session
names; asked first when it names none). The answer is 303 to the job's page, which follows
the new review as it comes.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..run.events import Sink
from ..run.regenerate import regenerate_review
from ..store import CellKey, Store
from .actions import run_url
from .jobs import start_job
from .who import ask_name

__all__ = ["routes"]


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def review_key(form: FormData) -> CellKey:
    """The review a form names; 400 naming the first field missing or wrong."""
    names = {}
    for name in ("tool", "persona", "member"):
        names[name] = _field(form, name)
        if not names[name]:
            raise HTTPException(400, f"{name}: name the review's {name}.")
    given = _field(form, "repeat") or "0"
    try:
        repeat = int(given)
    except ValueError:
        raise HTTPException(400, f"repeat: {given!r} is not a whole number.") from None
    return CellKey(names["tool"], names["persona"], names["member"], repeat)


def _known(request: Request, run_id: str, key: CellKey) -> None:
    """404 unless the review is one of the run's cells (made, set aside, or never made; not
    one its member recused from)."""
    runs = request.app.state.runs
    if not (runs / "panel.db").is_file():
        raise HTTPException(404, f"There is no run '{run_id}' in this store.")
    with Store(runs, readonly=True) as store:
        if store.get_run(run_id) is None:
            raise HTTPException(404, f"There is no run '{run_id}' in this store.")
        run = store.get_run(run_id)
        assert run is not None
        # A cell of the run's plan, made or not (an interrupted run's missing review too).
        planned = (
            key.tool_id in {t.get("id") for t in store.run_tools(run_id)}
            and key.persona_id in {p.get("id") for p in store.run_personas(run_id)}
            and key.member in {str(m) for m in run.config.get("members", [])}
            and 0 <= key.repeat < int(run.config.get("repeats", 1))
        )
        recused = run.config.get("recused")
        if planned and isinstance(recused, dict) and key.tool_id in recused.get(key.member, []):
            raise HTTPException(
                404,
                f"Run '{run_id}' has no review of {key.tool_id} by {key.member}: "
                "it recused, its maker made the tool.",
            )
        if not planned:
            repeat = f" (repeat {key.repeat})" if key.repeat else ""
            raise HTTPException(
                404,
                f"Run '{run_id}' has no review of {key.tool_id} by {key.persona_id} on {key.member}{repeat}.",
            )


async def regenerate(request: Request) -> Response:
    run_id: str = request.path_params["run_id"]
    form = await request.form()
    try:
        key = review_key(form)
        reason = _field(form, "reason")
    finally:
        await form.close()
    if not reason:
        raise HTTPException(400, "reason: say why this review is regenerated (it is kept with the old one).")
    await run_in_threadpool(_known, request, run_id, key)
    editor: str = request.state.editor
    if not editor:
        return ask_name(request, run_url(run_id), "regenerating a review")

    async def work(store: Store, on_event: Sink) -> str:
        await regenerate_review(store, run_id, key, reason, on_event=on_event, editor=editor)
        return run_id

    repeat = f" (repeat {key.repeat})" if key.repeat else ""
    title = f"Regenerate {key.tool_id} · {key.persona_id} · {key.member}{repeat}"
    return await run_in_threadpool(start_job, request, title, work, total=1, run_id=run_id, kind="regenerate")


def routes() -> list[BaseRoute]:
    return [Route("/runs/{run_id}/review/regenerate", regenerate, methods=["POST"], name="regenerate")]
