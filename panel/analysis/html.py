"""The agreement report as one self-contained HTML page: every table and plot, nothing fetched.

The page is rendered from the dict ``panel agreement --format json`` prints (see
:mod:`panel.analysis.page`), so the page and the JSON carry the same figures. Plots are PNG
data URIs; the CSS is inline; a Content-Security-Policy forbids scripts and remote fetches;
and every string is escaped by Jinja2's autoescape and cleaned of control characters.

:func:`agreement_page` is what the page shows; the agreement block of the templates draws it,
in this file and in `panel view` alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from .._about import __version__
from ..report.files import write_atomic
from ..report.render import TEMPLATES as REPORT_TEMPLATES
from ..report.render import escaping_environment
from .page import Cell, Section, _dict, sections, value

__all__ = ["TEMPLATES", "AgreementPage", "agreement_page", "render_report", "write_report"]

#: the agreement's templates (the file layout comes from the comparison's, beside them)
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class AgreementPage:
    """What the agreement block shows: the run, the raters' grouping, the interval level,
    the sections, and the colophon's facts."""

    run: str
    by: str
    level: str
    sections: list[Section]
    colophon: list[tuple[str, Cell]]


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    # Autoescape everything: persona, member, tool and source names are data written by others.
    return escaping_environment(jinja2.FileSystemLoader([TEMPLATES, REPORT_TEMPLATES]))


def agreement_page(data: Mapping[str, Any]) -> AgreementPage:
    """What the page of an agreement report dict shows; any part of the dict may be missing."""
    stats, basis = _dict(data.get("stats")), _dict(data.get("basis"))
    runs = data.get("runs") if isinstance(data.get("runs"), list) else []
    run = basis.get("run") or (runs[0] if runs else None)
    resamples, seed = value("n", stats.get("n_resamples")), value("n", stats.get("seed"))
    level = value("level", stats.get("level"))
    colophon = [
        ("Runs", value("runs", runs)),
        ("Bootstrap", f"{resamples} resamples, seed {seed}, {level} percentile intervals"),
        ("Report", f"panel {__version__}"),
    ]
    return AgreementPage(
        run="—" if run is None else str(run),
        by=str(data.get("by") or "rater"),
        level=str(level),
        sections=sections(data),
        colophon=colophon,
    )


def render_report(data: Mapping[str, Any]) -> str:
    """The page of an agreement report dict; any part of the dict may be missing."""
    page = agreement_page(data)
    return _env().get_template("agreement.html.j2").render(report=page, version=__version__)


def write_report(data: Mapping[str, Any], path: Path) -> Path:
    """The page written to ``path``, whole or not at all; the path written."""
    write_atomic(path, render_report(data))
    return path
