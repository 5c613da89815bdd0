"""The comparison page inside the view: the page `comparison.html` holds, made by the same
render code, with its inline style moved to a stylesheet the CSP allows.

The report page is self-contained (inline CSS, a meta CSP); the view serves a strict CSP
that forbids inline style, so the page's `<style>` is served as `/static/comparison.css`
and the one inline style the page prints (the width of a bar) becomes a class.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from markupsafe import Markup

from ..report import render as report_render
from ..report.record import ComparisonRecord

__all__ = ["comparison_body", "comparison_css"]

_REPORT_TEMPLATE = Path(report_render.__file__).parent / "templates" / "comparison.html.j2"
_STYLE = re.compile(r"<style>\n?(.*?)</style>", re.DOTALL)
# The bar the report template prints, width from a number it formats itself: catalog and
# model text is escaped there, so it cannot make a `"` or a tag that matches this.
_BAR = re.compile(r'<span class="bar-fill" style="width: (\d{1,3}(?:\.\d)?)%"></span>')


@lru_cache(maxsize=1)
def comparison_css() -> str:
    """The report page's own CSS, and one class per whole percent for the bars."""
    found = _STYLE.search(_REPORT_TEMPLATE.read_text(encoding="utf-8"))
    if found is None:
        raise RuntimeError(f"no <style> in {_REPORT_TEMPLATE}")
    widths = "".join(f".w-{n} {{ width: {n}%; }}\n" for n in range(101))
    return f"{found.group(1)}\n/* bar widths, for a CSP without inline style */\n{widths}"


def _bar(match: re.Match[str]) -> str:
    width = min(100, max(0, round(float(match.group(1)))))
    return f'<span class="bar-fill w-{width}"></span>'


def comparison_body(
    record: ComparisonRecord, review_actions: report_render.ReviewActions | None = None
) -> Markup:
    """What the report page's <body> holds, for this record, with no inline style left (and
    with `review_actions`, the editor's controls on each review)."""
    html = report_render.render_html(record, review_actions=review_actions)
    start, end = html.index("<body>") + len("<body>"), html.rindex("</body>")
    return Markup(_BAR.sub(_bar, html[start:end]))
