"""The Starlette app of `panel view`."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from ..catalog import Catalog
from . import editing, publishing, who
from .agreement import routes as agreement_routes
from .bind import is_loopback
from .catalog_cache import CatalogCache
from .jobs import routes as job_routes
from .leaderboard import routes as leaderboard_routes
from .newtool import routes as new_tool_routes
from .pages import http_error, not_found, routes, server_error
from .regenerating import routes as regenerate_routes
from .security import Guard, SecurityMiddleware
from .triage import routes as triage_routes

__all__ = ["ViewApp", "create_app"]


class ViewApp(Starlette):
    """Starlette with the security middleware outermost, around its own error handling, so
    that a refusal, a 404 and a 500 carry the same headers as every page."""

    guard: Guard

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityMiddleware(super().build_middleware_stack(), self.guard)


def create_app(
    runs: Path,
    *,
    token: str | None,
    host: str = "127.0.0.1",
    port: int | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    catalog: Path | Catalog | None = None,
    backends: Sequence[str] = (),
    config: Path | None = None,
) -> Starlette:
    """The app over the runs folder `runs`. With `token` (None only for `--no-token`), the
    app lives under a base path made here, and every request needs the token or a session a
    token visit opened; bound to loopback (`host`), a request naming another host is refused.
    A new tool is drafted against the tools of `catalog` (a path, or a catalog read already;
    default: the example catalog) by the members `backends` (default: those of `config`, as
    `panel compare` picks them)."""
    app = ViewApp(
        routes=[
            *agreement_routes(),  # first: its stylesheet is under /static, before the mount
            *leaderboard_routes(),  # (the same)
            *routes(),
            *triage_routes(),
            *editing.routes(),
            *publishing.routes(),
            *job_routes(),
            *regenerate_routes(),
            *new_tool_routes(),
            *who.routes(),
            *extra_routes,
        ],
        exception_handlers={404: not_found, HTTPException: http_error, Exception: server_error},
    )
    app.guard = Guard.for_binding(host, port, token, is_loopback(host))
    app.state.runs = Path(runs)
    app.state.write_lock = threading.Lock()
    app.state.catalog = catalog.path if isinstance(catalog, Catalog) else catalog
    app.state.catalog_cache = CatalogCache(catalog if isinstance(catalog, Catalog) else None)
    app.state.backends = tuple(backends)
    app.state.config = config
    return app
