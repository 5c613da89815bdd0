"""`panel view`: serve the local web app over a runs folder; opens no browser, prints the URL.

The app lives in :mod:`panel.view` (it needs the `view` extra, so it is imported only when
the command runs); this module decides the address and the token and starts the server.

A token guards the view by default, also on loopback, where every account of the machine
can reach the port: one is made at start and printed once, in the URL to open (the owner's
terminal is the only place it is written). `--token`, `PANEL_VIEW_TOKEN` or `--token-file`
give one instead; `--no-token` drops it, on loopback only, for a machine with one account.
"""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path
from typing import Annotated

import typer

from ..backends.registry import backend_class
from ..catalog import Catalog, load_catalog
from ..config import load_config, resolve_members
from ..errors import MissingExtraError, UserError
from ..run.plan import default_catalog
from ..text import clean, for_console
from ..view.bind import Binding, decide_binding
from .apps import err_console, out_console
from .options import ConfigPath, Members, RunsDir

__all__ = [
    "check_draft_inputs", "check_runs_folder", "check_view_extra", "open_socket", "read_token_file", "view",
]  # fmt: skip

#: the modules the app needs, each with the name pip installs it by
_NEEDED = (("starlette", "starlette"), ("uvicorn", "uvicorn"), ("python_multipart", "python-multipart"))


def check_view_extra() -> None:
    for module, package in _NEEDED:
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError("panel view", package, "view")


def view(
    ctx: typer.Context,
    out: RunsDir = Path("runs"),
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port).")] = 8765,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    token: Annotated[
        str | None,
        typer.Option(
            envvar="PANEL_VIEW_TOKEN",
            help=(
                "Token every request must carry (a session cookie after the first visit); default: one "
                "made at start. On the command line it shows in every account's process list: prefer "
                "PANEL_VIEW_TOKEN or --token-file."
            ),
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(help="Read the token from this file (only its owner may read it: chmod 600)."),
    ] = None,
    no_token: Annotated[
        bool,
        typer.Option(
            "--no-token",
            help=(
                "No token: any account on this machine can use the view, as you. Only on loopback, "
                "for a machine with one account."
            ),
        ),
    ] = False,
    catalog: Annotated[
        Path | None,
        typer.Option(help="Catalog a new tool is checked against and drafted with; default the examples'."),
    ] = None,
    backend: Members = None,
    config: ConfigPath = None,
) -> None:
    """Serve a local web app over the runs: the list, each run's comparison page, and a form
    that adds a tool and drafts its panel (against a catalog tool, by the members).

    It opens nothing by itself, and prints the URL to open.
    """
    try:
        check_view_extra()
    except MissingExtraError as exc:
        # Printed here, escaped: the generic handler would read "[view]" as rich markup.
        err_console.print(f"[bold red]error:[/] {for_console(exc)}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    drafted = check_draft_inputs(catalog, backend or [], config)
    if token_file is not None:
        if token is not None:
            raise UserError("--token-file and --token (or PANEL_VIEW_TOKEN): give one of them")
        token = read_token_file(token_file)
    binding = decide_binding(host, port, token, no_token)
    source = ctx.get_parameter_source("token")
    if source is not None and source.name == "COMMANDLINE":
        err_console.print(
            "warning: a --token on the command line shows in every account's process list; "
            "PANEL_VIEW_TOKEN or --token-file keep it to you",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
    check_runs_folder(out)
    sock = open_socket(binding)
    binding = Binding(binding.host, sock.getsockname()[1], binding.token, binding.generated)
    _serve(out, binding, sock, drafted, backend or [], config)


def check_runs_folder(out: Path) -> None:
    """A runs folder to serve: one that does not exist, or is a file, is one line (exit 2)
    rather than a view of nothing; it is made only when asked (mkdir), and an empty one is
    served (its list fills as the new-tool form makes runs)."""
    if not out.exists():
        raise UserError(
            f"--out {out}: no such folder; give the folder that holds your runs (panel.db), "
            f"or make an empty one to start with: mkdir -p {out}"
        )
    if not out.is_dir():
        raise UserError(f"--out {out} is a file: give the folder that holds your runs (panel.db)")


def read_token_file(path: Path) -> str:
    """The token in `path` (its one line); UserError unless only its owner may read it."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise UserError(f"--token-file {path}: {reason}") from None
    if mode & 0o077:
        raise UserError(
            f"--token-file {path}: other accounts may read it (mode {mode & 0o777:o}); chmod 600 it"
        )
    token = text.strip()
    if not token or any(ch.isspace() for ch in token):
        raise UserError(f"--token-file {path}: give one token on one line, without blanks")
    return token


def check_draft_inputs(catalog: Path | None, backends: list[str], config: Path | None) -> Catalog:
    """Check, before serving, what a new tool's draft will use: the catalog, the config and
    the members' specs (a UserError, one line, exit 2); returns the catalog, read (the app
    starts with it). Members are built (a model found or fetched) only when a draft starts."""
    drafted = load_catalog(catalog or default_catalog())
    for spec in resolve_members(backends, load_config(config)):  # options are checked as read
        backend_class(spec.backend)
    return drafted


def open_socket(binding: Binding) -> socket.socket:
    """The listening socket, bound and listening before the URL is printed: a busy port is
    one line, port 0 becomes the port actually taken, and a client that connects as soon as
    it reads the URL waits in the backlog until the server takes it, never refused."""
    family = socket.AF_INET6 if ":" in binding.host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((binding.host.strip("[]"), binding.port))
    except (OSError, OverflowError) as exc:
        sock.close()
        reason = getattr(exc, "strerror", None) or exc
        raise UserError(f"cannot listen on {binding.host} port {binding.port}: {reason}") from None
    sock.listen(128)
    return sock


def _serve(
    runs: Path,
    binding: Binding,
    sock: socket.socket,
    catalog: Catalog,
    backends: list[str],
    config: Path | None,
) -> None:
    import uvicorn

    from ..view.app import create_app

    app = create_app(
        runs,
        token=binding.token,
        host=binding.host,
        port=binding.port,
        catalog=catalog,
        backends=backends,
        config=config,
    )
    out_console.print(
        f"panel view: serving {for_console(runs)} at {binding.url}", highlight=False, soft_wrap=True
    )
    if not (runs / "panel.db").is_file():
        out_console.print(
            f"no runs yet in {clean(str(runs))} (no panel.db): the list fills as runs are made",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
    if binding.token is None:
        out_console.print(
            "no token (--no-token): any account on this machine can use this view, as you",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
    # The one line that holds the token: the URL to open, on the owner's terminal.
    out_console.print(f"open: {binding.first_url}", markup=False, highlight=False, soft_wrap=True)
    out_console.print("Ctrl-C stops it.", highlight=False)
    # No access log: a first visit's URL carries the token, and it must not reach a log.
    server_config = uvicorn.Config(app, log_level="warning", access_log=False, server_header=False)
    try:
        uvicorn.Server(server_config).run(sockets=[sock])
    finally:
        sock.close()
