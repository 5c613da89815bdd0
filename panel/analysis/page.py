"""The agreement report as a page: sections of tables, figures and notes, built from the JSON dict.

:func:`sections` reads the dict that ``panel agreement --format json`` prints, and nothing
else, so the page and the JSON carry the same figures by construction. Every part is
optional: a section is built from what the dict holds and left out when it holds nothing.
Every key a reader sees is named in :data:`LABELS`, and every figure is formatted by
:func:`value` as the terminal shows it: three decimals, whole percentages for shares and
rates, dollars for cost, "—" where a figure is undefined.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from . import plots

__all__ = ["LABELS", "PERCENT", "Figure", "Section", "Table", "Text", "sections", "value"]

#: how the page names every key it shows
LABELS: dict[str, str] = {
    # the headline statistics
    "percent_agreement": "Percent agreement",
    "fleiss_kappa": "Fleiss' kappa",
    "krippendorff_alpha": "Krippendorff's alpha (nominal)",
    "effective_votes": "Effective independent votes",
    # facts
    "runs": "Runs", "run": "Run", "by": "Agreement by", "items": "Items", "repeat": "Repeat",
    "n_items": "Items", "raters": "Raters", "missing": "Missing ratings", "categories": "Verdicts",
    "positive": "Positive verdict",
    "n_resamples": "Bootstrap resamples", "seed": "Seed", "level": "Interval level",
    "source": "Source", "tools": "Tools", "tools_in_run": "Tools in the run",
    "human_agreement": "Agreement between the reference's raters",
    "method": "Method", "iterations": "Iterations", "converged": "Converged",
    "log_likelihood": "Log-likelihood", "differs_from_majority": "Tools where it differs from the majority",
    "n_tools": "Tools", "n_reviews": "Reviews", "search": "Sub-panels searched",
    # columns
    "rater": "Rater", "ship_rate": "Ship rate", "statistic": "Statistic", "estimate": "Estimate",
    "resamples_used": "Resamples used", "within_run": "Within run κ",
    "within_run_agreement": "Within run agr.",
    "across_runs": "Across runs κ", "across_runs_agreement": "Across runs agr.", "pairs": "Pairs",
    "kind": "Kind", "name": "Name", "n_ratings": "Ratings", "accuracy": "Accuracy", "kappa": "Kappa",
    "judge": "Judge", "persona": "Persona", "member": "Member", "reviews": "Reviews",
    "cost_per_tool": "Cost per tool", "estimated_accuracy": "Estimated accuracy", "judges": "Judges",
    "threshold": "Threshold", "k": "Judges (k)", "share": "Share", "variance": "Variance",
    "category": "Verdict", "prior": "Prior share", "component": "Component", "a": "First", "b": "Second",
    "cost": "Cost of the reviews analysed", "total": "Total (the parts shown)", "truncated": "Shown as 0",
    "probability": "Probability scored", "n": "Tools", "ece": "Expected calibration error",
    "low": "From", "high": "To", "count": "Tools", "predicted": "Mean predicted",
    "observed": "Observed ship rate",
}  # fmt: skip
#: keys whose figures are shares, shown as percentages
PERCENT = frozenset(
    {
        "ship_rate",
        "within_run_agreement",
        "across_runs_agreement",
        "agreement",
        "share",
        "prior",
        "priors",
        "shares",
        "level",
    }
)
#: keys whose figures are dollars
DOLLARS = frozenset({"cost_per_tool", "cost", "cost_usd"})

Cell = str | tuple[str, str]
"""A figure as shown, or a figure and its interval beneath it."""


def label(key: str) -> str:
    return LABELS.get(key, key.replace("_", " ").capitalize())


def _number(v: float, key: str) -> str:
    if key == "threshold":
        return f"{v:g}"
    if key in PERCENT:
        return f"{100 * v:.0f}%"
    if key in DOLLARS:
        return f"${v:.4f}"
    return f"{v:.3f}"


def value(key: str, v: Any) -> Cell:
    """A figure of the dict as the page shows it, by the key it is stored under."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int | float):
        return _number(float(v), key) if isinstance(v, float) or key in PERCENT | DOLLARS else str(v)
    if isinstance(v, Mapping) and "point" in v:
        point = value(key, v.get("point"))
        low, high = value(key, v.get("low")), value(key, v.get("high"))
        note = f" {v['note']}" if v.get("note") else ""  # an interval that is one point says so
        return str(point), f"[{low}, {high}]{note}"
    if isinstance(v, Mapping):
        return " · ".join(f"{k} {value(key, x)}" for k, x in v.items())
    if isinstance(v, list | tuple):
        return ", ".join(str(value(key, x)) for x in v)
    return str(v)


def point(v: Any) -> float | None:
    """The point of an estimate (or a bare number) for a figure; None if undefined."""
    if isinstance(v, Mapping):
        v = v.get("point")
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def interval(v: Any) -> plots.Interval:
    if isinstance(v, Mapping):
        return point(v.get("point")), point(v.get("low")), point(v.get("high"))
    return point(v), None, None


@dataclass(frozen=True)
class Table:
    kind: ClassVar[str] = "table"
    caption: str
    head: list[str]
    rows: list[list[Cell]]  # the first cell of each row names it
    wrap: frozenset[int] = frozenset()  # columns of names, which may break between words
    named_head: bool = False  # the header cells after the first are names (kept as written)


@dataclass(frozen=True)
class Figure:
    kind: ClassVar[str] = "figure"
    caption: str
    src: str  # a data: URI


@dataclass(frozen=True)
class Text:
    kind: ClassVar[str] = "text"
    lines: list[str]
    facts: list[tuple[str, Cell]] = field(default_factory=list)
    heading: str = ""


Block = Table | Figure | Text


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    dek: str
    blocks: list[Block]


def _list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, list | tuple) else []


def _dict(v: Any) -> dict[str, Any]:
    return dict(v) if isinstance(v, Mapping) else {}


def table(
    caption: str, rows: Iterable[Mapping[str, Any]], keys: Sequence[str], wrap: Sequence[str] = ()
) -> Table:
    """Rows of the dict as a table of ``keys``; each cell formatted by its key."""
    return Table(
        caption,
        [label(k) for k in keys],
        [[value(k, row.get(k)) for k in keys] for row in rows],
        frozenset(i for i, k in enumerate(keys) if k in wrap),
    )


def facts(data: Mapping[str, Any], keys: Sequence[str]) -> list[tuple[str, Cell]]:
    return [(label(k), value(k, data[k])) for k in keys if k in data]


def figure(caption: str, png: bytes) -> Figure:
    return Figure(caption, "data:image/png;base64," + base64.b64encode(png).decode("ascii"))


def sections(data: Mapping[str, Any]) -> list[Section]:
    """Every section the dict has the figures for, in reading order."""
    from .page_biases import biases_section
    from .page_research import research_sections
    from .page_rounds import rounds_section

    stats = _dict(data.get("stats"))
    found = [
        _agreement(data, stats),
        _leniency(data, stats),
        _cohen(data),
        _consistency(data),
        *research_sections(_dict(data.get("research")), stats),
        rounds_section(_dict(data.get("rounds"))),
        biases_section(_dict(data.get("biases"))),
        _notes("notes", "Notes", _list(data.get("notes"))),
    ]
    return [s for s in found if s is not None and s.blocks]


def _agreement(data: Mapping[str, Any], stats: Mapping[str, Any]) -> Section | None:
    if not stats:
        return None
    basis = _dict(data.get("basis"))
    shown = [
        (label("run"), value("run", basis.get("run"))),
        (label("repeat"), value("repeat", basis.get("repeat"))),
        (label("by"), value("by", data.get("by"))),
        *facts(stats, ["n_items"]),
        (label("raters"), str(len(_list(stats.get("raters"))))),
        *facts(data, ["missing"]),
        (label("items"), _items(_list(data.get("items")))),
        *facts(stats, ["categories", "positive"]),
    ]
    cost = _dict(data.get("cost"))
    if cost.get("sentence"):
        shown.append((label("cost"), str(cost["sentence"])))
    names = ["percent_agreement", "fleiss_kappa", "krippendorff_alpha", "effective_votes"]
    used = stats.get("n_resamples")
    rows: list[list[Cell]] = []
    for key in names:
        if key in stats:
            e = _dict(stats[key])
            ci = value(key, stats[key])
            rows.append([label(key), value(key, e.get("point")), ci[1] if isinstance(ci, tuple) else "—",
                         f"{value('n', e.get('resamples_used'))} of {value('n', used)}"])  # fmt: skip
    level = value("level", stats.get("level"))
    headline = Table("Agreement between the panel's raters", ["Statistic", "Estimate", f"{level} CI",
                     label("resamples_used")], rows, frozenset({0}))  # fmt: skip
    blocks: list[Block] = [Text([], shown)]
    blocks += too_small(data.get("sample"), "The figures describe these tools only.")
    if rows:
        blocks.append(headline)
    return Section("agreement", "Inter-rater agreement", "How far the panel's raters agree with each other, "
                   "beyond what chance would give.", blocks)  # fmt: skip


def too_small(sample: Any, then: str = "") -> list[Block]:
    """The sentence of a section whose sample is below the minimum (none when it is not)."""
    reason = _dict(sample).get("reason")
    if not reason:
        return []
    return [Text([f"Too small a sample: {reason}. {then}".strip()], heading="Too few tools to read")]


def _items(items: list[Any], shown: int = 12) -> str:
    names = [str(i) if not isinstance(i, list) else " · ".join(map(str, i)) for i in items[:shown]]
    more = f" … and {len(items) - shown} more" if len(items) > shown else ""
    return (", ".join(names) + more) if names else "—"


def _leniency(data: Mapping[str, Any], stats: Mapping[str, Any]) -> Section | None:
    rates = _dict(stats.get("ship_rate"))
    if not rates:
        return None
    positive = str(stats.get("positive") or "ship")
    rows = [{"rater": r, "ship_rate": v} for r, v in rates.items()]
    run = _dict(data.get("basis")).get("run")
    title = f"{positive.capitalize()} rate by {data.get('by') or 'rater'} (run {run})"
    return Section("leniency", "Leniency", f"Each rater's share of {positive} verdicts.", [
        table(f"{positive.capitalize()} rate of each rater", rows, ["rater", "ship_rate"], ["rater"]),
        figure(title, plots.ship_rate_png(rates, title, positive)),
    ])  # fmt: skip


def _cohen(data: Mapping[str, Any]) -> Section | None:
    blocks: list[Block] = []
    stats = _dict(data.get("stats"))
    every = {
        "raters": stats.get("raters"), "kappa": stats.get("cohen_kappa"), "n_items": stats.get("n_items"),
        "title": f"every pair of raters by {data.get('by') or 'rater'}",
    }  # fmt: skip
    for m in [every, *_list(data.get("cohen"))] if every["kappa"] else _list(data.get("cohen")):
        m = _dict(m)
        raters = [str(r) for r in _list(m.get("raters"))]
        kappa = [_list(row) for row in _list(m.get("kappa"))]
        caption = f"Cohen's kappa, {m.get('title') or ''} ({value('n', m.get('n_items'))} items)"
        rows = [[r, *(value("kappa", v) for v in row)] for r, row in zip(raters, kappa, strict=False)]
        blocks.append(Table(caption, ["", *raters], rows, frozenset({0}), named_head=True))
        if raters and len(kappa) == len(raters):
            blocks.append(figure(caption, plots.kappa_png(raters, kappa, caption)))
    return Section("kappa", "Pairwise agreement", "Cohen's kappa of every pair of raters; the colour "
                   "scale runs from -1 to 1 on every heatmap.", blocks)  # fmt: skip


def _consistency(data: Mapping[str, Any]) -> Section | None:
    rows = [
        dict(_dict(s), pairs=len(_list(_dict(s).get("pairs")))) for s in _list(data.get("self_consistency"))
    ]
    keys = ["rater", "within_run", "within_run_agreement", "across_runs", "across_runs_agreement", "pairs"]
    blocks: list[Block] = [table("Self-consistency (test-retest)", rows, keys, ["rater"])] if rows else []
    pairs = [
        dict(_dict(p), rater=_dict(s).get("rater"))
        for s in _list(data.get("self_consistency"))
        for p in _list(_dict(s).get("pairs"))
    ]
    if pairs:
        keys = ["rater", "a", "b", "kappa", "agreement", "n_items"]
        blocks.append(table("Every test-retest comparison", pairs, keys, ["rater", "a", "b"]))
    return Section("consistency", "Self-consistency", "Each rater's Cohen's kappa with itself over "
                   "repeats and runs: the ceiling for agreement between raters.", blocks)  # fmt: skip


def _notes(id_: str, title: str, notes: Sequence[Any]) -> Section | None:
    lines = [str(n) for n in notes]
    return Section(id_, title, "", [Text(lines)] if lines else [])
