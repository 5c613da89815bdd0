"""The view's Jinja2 pages: autoescaped, every printed value cleaned of terminal controls.

The view's templates come first; the shared ones are under a prefix: `report/` (the layout
of every page, the comparison block) and `analysis/` (the agreement block), the very
templates the published files are drawn from.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from .._about import __version__
from ..analysis.html import TEMPLATES as AGREEMENT_TEMPLATES
from ..report.render import TEMPLATES as REPORT_TEMPLATES
from ..report.render import html_environment

__all__ = ["base_of", "env", "page", "url"]

_TEMPLATES = Path(__file__).parent / "templates"


def _segment(value: object) -> str:
    """A value as one URL path segment: a '/' or '?' in an id cannot change the route."""
    return quote(str(value), safe="")


def _date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def _usd(value: float) -> str:
    if not value:
        return "$0"
    return f"${value:.4f}" if value < 0.01 else f"${value:,.2f}"


def _loader() -> jinja2.BaseLoader:
    shared = jinja2.PrefixLoader(
        {
            "report": jinja2.FileSystemLoader(REPORT_TEMPLATES),
            "analysis": jinja2.FileSystemLoader(AGREEMENT_TEMPLATES),
        }
    )
    return jinja2.ChoiceLoader([jinja2.FileSystemLoader(_TEMPLATES), shared])


@lru_cache(maxsize=1)
def env() -> jinja2.Environment:
    environment = html_environment(_loader(), keep_trailing_newline=False)
    environment.filters.update(segment=_segment, date=_date, iso=_iso, usd=_usd)
    environment.globals["version"] = __version__
    return environment


def base_of(request: Request) -> str:
    """The path the view's own links start with: its base path with a token, else ''."""
    state: dict[str, Any] = request.scope.get("state", {})
    return str(state.get("base", ""))


def url(request: Request, path: str) -> str:
    """`path` (one of the view's own, from '/') as this request's links write it."""
    return base_of(request) + path


def here(request: Request) -> str:
    """This page's own path and query, as a path of the view (without its base path)."""
    base, path = base_of(request), request.scope["path"]
    inner = path[len(base) :] if base and path.startswith(base) else path
    query = request.scope.get("query_string", b"").decode("latin-1")
    return (inner or "/") + (f"?{query}" if query else "")


def page(request: Request, name: str, http_status: int = 200, **context: Any) -> HTMLResponse:
    """A page from template `name`; every page gets the request, its CSRF token for forms,
    the base path of its links, its own path (`here`) and the editor's name (empty until
    they give it)."""
    state: dict[str, Any] = request.scope.get("state", {})
    context.setdefault("here", here(request))
    context.setdefault("asking", False)  # the page that asks the name shows no second form
    html = (
        env()
        .get_template(name)
        .render(
            request=request,
            csrf=state.get("csrf", ""),
            base=base_of(request),
            editor=state.get("editor", ""),
            **context,
        )
    )
    return HTMLResponse(html, http_status)
