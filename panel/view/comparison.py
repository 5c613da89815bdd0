"""The comparison page inside the view: the comparison block of the published file, drawn from
the same template (`report/comparison_block.html.j2`), under the view's CSP.

The file is self-contained (its CSS inline, a meta CSP); the view serves a strict CSP that
forbids inline style, so the same stylesheet (`comparison.css`, beside the template) is
served as `/static/comparison.css`, with one class per whole percent for the bars, and the
block is drawn with `inline_style=False`: a bar's width is one of those classes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ..report.record import ComparisonRecord
from ..report.render import TEMPLATES, ReviewActions, comparison_context

__all__ = ["comparison", "comparison_css"]


@lru_cache(maxsize=1)
def comparison_css() -> str:
    """The file's own stylesheet, and one class per whole percent for the bars."""
    css = (TEMPLATES / "comparison.css").read_text(encoding="utf-8")
    widths = "".join(f".w-{n} {{ width: {n}%; }}\n" for n in range(101))
    return f"{css}\n/* bar widths, for a CSP without inline style */\n{widths}"


def comparison(record: ComparisonRecord, review_actions: ReviewActions) -> dict[str, Any]:
    """What the view's comparison page gives the comparison block: the record with the
    editor's controls on each review (`review_actions`), and the bars as classes."""
    return comparison_context(record, review_actions=review_actions, inline_style=False)
