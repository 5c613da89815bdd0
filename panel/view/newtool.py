"""GET/POST /tools/new: add a tool by a form and draft its panel against a catalog tool.

The form is checked as the catalog checks a file (`panel.view.toolform`), every field's problem
beside it; a valid one becomes a plan like `panel compare NEW OTHER` (the app's catalog,
members and config; the new tool first) and runs as a job, whose page follows the reviews as
they come. Nothing is written until the form is valid and the plan made.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..catalog import Catalog, Tool
from ..config import load_config, resolve_members
from ..errors import UserError
from ..personas import Persona, load_personas, resolve_personas
from ..report.files import write_run_files
from ..resources import data_dir
from ..run.ending import store_errors
from ..run.events import Event, SendingStopped, Sink
from ..run.plan import Plan, RunOptions, default_catalog, plan_run, run_plan, start_run
from ..store import Store
from .catalog_cache import CatalogCache
from .jobs import PartialRun, start_job
from .templating import page
from .toolform import FIELDS, LABELS, PRICING_MODELS, ToolForm, check, read_form

__all__ = ["routes"]


def catalog_path(request: Request) -> Path:
    path: Path | None = request.app.state.catalog
    return path or default_catalog()


def _inputs(request: Request) -> tuple[Catalog, list[Persona]]:
    """The app's catalog (read again only if its file changed) and the personas a draft may
    use (UserError: a file gone bad since)."""
    cache: CatalogCache = request.app.state.catalog_cache
    catalog = cache.get(catalog_path(request))
    return catalog, resolve_personas(load_personas(data_dir("personas")), None)


def _members(request: Request) -> dict[str, Any]:
    """Who drafts the tool, as `_plan` picks them: `members` (their names), `members_from` (the
    config file that names them, when the app was given none) or `members_problem` (why the
    config cannot say)."""
    state = request.app.state
    try:
        config = load_config(state.config)
        members = [m.key for m in resolve_members(list(state.backends), config)]
    except UserError as exc:
        line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return {"members": [], "members_from": None, "members_problem": line}
    named = not state.backends and config.members and config.path is not None
    return {"members": members, "members_from": str(config.path) if named else None, "members_problem": None}


async def _form_page(
    request: Request,
    form: ToolForm,
    catalog: Catalog,
    personas: Sequence[Persona],
    status: int = 200,
    problem: str | None = None,
) -> Response:
    return page(
        request,
        "new_tool.html.j2",
        status,
        form=form,
        fields=FIELDS,
        catalog=catalog,
        catalog_file=str(catalog.path),
        personas=personas,
        pricing_models=PRICING_MODELS,
        labels=LABELS,
        problem=problem,
        **await run_in_threadpool(_members, request),
    )


async def new_tool_form(request: Request) -> Response:
    catalog, personas = await run_in_threadpool(_inputs, request)
    form = ToolForm(personas=[p.id for p in personas])
    form.values["pricing_model"] = "unknown"
    return await _form_page(request, form, catalog, personas)


def _plan(request: Request, catalog: Catalog, tool: Tool, form: ToolForm) -> tuple[Plan, RunOptions]:
    """The draft's plan: `compare NEW OTHER` with the app's members and config, nothing
    written; UserError (one line) for a member, extra or config it cannot use."""
    state = request.app.state
    config = load_config(state.config)
    plan = plan_run(
        [form.compare],
        catalog=catalog,
        backends=list(state.backends),
        persona_ids=form.personas,
        config=config,
    )
    plan.tools.insert(0, tool)
    return plan, RunOptions(kind="compare", retry=config.retry.policy())


async def _close(plan: Plan) -> None:
    for member in plan.members:
        with contextlib.suppress(Exception):
            await member.backend.aclose()


async def new_tool_submit(request: Request) -> Response:
    posted = await request.form()
    try:
        form = read_form(posted)
    finally:
        await posted.close()
    catalog, personas = await run_in_threadpool(_inputs, request)
    tool = check(form, catalog, [p.id for p in personas])
    if tool is None:
        return await _form_page(request, form, catalog, personas, 400)
    try:
        plan, options = await run_in_threadpool(_plan, request, catalog, tool, form)
    except UserError as exc:
        line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return await _form_page(request, form, catalog, personas, 400, problem=line)
    other = plan.tools[1].id
    command = f"panel view: draft {tool.id} against {other}"
    runs: Path = request.app.state.runs

    async def work(store: Store, on_event: Sink) -> str:
        def write(run_id: str, status: str) -> Any:
            return write_run_files(store, run_id, status, "compare")

        stopped: list[str] = []

        def told(event: Event) -> None:
            if isinstance(event, SendingStopped):
                stopped.append(f"{event.member}: {event.reason}")
            on_event(event)

        with store_errors(store):
            run_id = start_run(plan, store, command, options)
            await run_plan(plan, store, command, options=options, run_id=run_id, write=write, on_event=told)
        if stopped:
            raise PartialRun(
                run_id,
                f"stopped sending to {'; '.join(stopped)}. Its other reviews are in the run; "
                f"the rest wait for: panel review --resume {run_id} --out {runs}",
            )
        return run_id

    try:
        return await run_in_threadpool(
            start_job, request, f"Draft {tool.name}", work, total=plan.total, kind="draft"
        )
    except HTTPException:
        await _close(plan)  # no job: the members made for it are let go
        raise


def routes() -> list[BaseRoute]:
    return [
        Route("/tools/new", new_tool_form, methods=["GET"], name="new_tool"),
        Route("/tools/new", new_tool_submit, methods=["POST"], name="new_tool_submit"),
    ]
