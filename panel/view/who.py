"""GET/POST /editor: who the editor is, asked once per browser and kept in its session.

Approvals, edits, regenerates and publishes carry the editor's name (in the store, and in the
published record's provenance). The name is asked by a small form (in the bar of every page
until it is given, or on its own page) and kept in the browser's session cookie
(`panel.view.session`); a write that comes without one is refused with the same form, and
nothing is done.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..text import clean
from .session import NAME_LIMIT, clean_name, remember_editor
from .templating import page, url

__all__ = ["ask_name", "routes"]


def _local(value: object) -> str:
    """`value` if it is a path of this view ('/runs/x?y'), else '/': never another site."""
    text = clean(value) if isinstance(value, str) else ""
    if not text.startswith("/") or text.startswith(("//", "/\\")) or any(c.isspace() for c in text):
        return "/"
    return text


def ask_name(request: Request, back: str, doing: str, status: int = 400) -> Response:
    """The page that asks the editor's name, saying what waits for it (`doing`), then goes
    `back` (a path of this view)."""
    return page(
        request,
        "who.html.j2",
        status,
        next=_local(back),
        doing=doing,
        problem=None,
        limit=NAME_LIMIT,
        asking=True,
    )


def who_page(request: Request) -> Response:
    return ask_name(request, request.query_params.get("next", "/"), "", 200)


async def who_save(request: Request) -> Response:
    form = await request.form()
    name = clean_name(form.get("editor") if isinstance(form.get("editor"), str) else "")
    back = _local(form.get("next"))
    if not name:
        problem = "Give your name: approvals, edits and publishes carry it."
        return page(
            request, "who.html.j2", 400, next=back, doing="", problem=problem, limit=NAME_LIMIT, asking=True
        )
    remember_editor(request, name)
    return RedirectResponse(url(request, back), 303)


def routes() -> list[BaseRoute]:
    return [
        Route("/editor", who_page, methods=["GET"], name="who"),
        Route("/editor", who_save, methods=["POST"], name="who_save"),
    ]
