"""The view's Jinja2 pages: autoescaped, every printed value cleaned of terminal controls."""

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
from ..report.render import escaping_environment

__all__ = ["env", "page"]

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


@lru_cache(maxsize=1)
def env() -> jinja2.Environment:
    environment = escaping_environment(_TEMPLATES, keep_trailing_newline=False)
    environment.filters.update(segment=_segment, date=_date, iso=_iso, usd=_usd)
    environment.globals["version"] = __version__
    return environment


def page(request: Request, name: str, http_status: int = 200, **context: Any) -> HTMLResponse:
    """A page from template `name`; every page gets the request and its CSRF token for forms."""
    html = env().get_template(name).render(request=request, csrf=request.state.csrf, **context)
    return HTMLResponse(html, http_status)
