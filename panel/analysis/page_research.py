"""The researcher's sections of the agreement page: the reference, each judge's accuracy, the
latent-truth model, pooled verdicts and sub-panels, and where the variance comes from.

Built from ``data["research"]`` alone; see :mod:`panel.analysis.page` for the formatting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import plots
from .page import (
    Block,
    Cell,
    Section,
    Table,
    Text,
    _dict,
    _list,
    facts,
    figure,
    interval,
    label,
    point,
    table,
    too_small,
    value,
)

__all__ = ["research_sections"]


def research_sections(research: Mapping[str, Any], stats: Mapping[str, Any]) -> list[Section | None]:
    if not research:
        return []
    categories = [str(c) for c in _list(research.get("categories") or stats.get("categories"))]
    small, few = research.get("sample"), research.get("reference_sample")
    variance = _variance(_dict(research.get("variance")))
    return [
        _reference(_dict(research.get("reference"))),
        _withheld(_accuracy(research), few, "accuracy", "Accuracy of each judge"),
        _withheld(_latent(research, categories), small, "latent", "Reliability without labels"),
        _withheld(_pooling(_dict(research.get("pooling")), research), few, "pooling", "Pooled verdicts"),
        _calibration([_dict(c) for c in _list(research.get("calibration"))]),
        _withheld(variance, small, "variance", "Where disagreement comes from"),
        Section("research-notes", "Notes on the research figures", "",
                [Text([str(n) for n in _list(research.get("notes"))])] if research.get("notes") else []),
    ]  # fmt: skip


def _withheld(found: Section | None, sample: Any, id_: str, title: str) -> Section | None:
    """A section whose figures are left out for too small a sample, saying so first."""
    said = too_small(sample, "Its figures are left out (null in the JSON).")
    if not said:
        return found
    if found is None:
        return Section(id_, title, "", said)
    return Section(found.id, found.title, found.dek, [*said, *found.blocks])


def _reference(ref: Mapping[str, Any]) -> Section | None:
    if not ref:
        return None
    blocks: list[Block] = [
        Text([], facts(ref, ["source", "tools", "tools_in_run", "raters", "human_agreement"]))
    ]
    shares = _dict(ref.get("shares"))
    if shares:
        rows = [{"category": c, "share": s} for c, s in shares.items()]
        blocks.append(table("The reference's verdicts", rows, ["category", "share"], ["category"]))
    if ref.get("notes"):
        blocks.append(Text([str(n) for n in _list(ref.get("notes"))]))
    return Section("reference", "The reference", "The labels every judge is measured against.", blocks)


def _calibration(found: list[dict[str, Any]]) -> Section | None:
    if not found:
        return None
    blocks: list[Block] = []
    for c in found:
        blocks += too_small(c.get("sample"), "Read the diagram with care; no calibration error is given.")
    blocks.append(table("Expected calibration error (count-weighted gap between predicted and observed)",
                        found, ["probability", "n", "ece"], ["probability"]))  # fmt: skip
    series = {
        str(c.get("probability")): [
            (point(b.get("predicted")), point(b.get("observed")), int(b.get("count") or 0))
            for b in map(_dict, _list(c.get("bins")))
        ]
        for c in found
    }
    caption = "Reliability diagram: predicted probability of ship against the reference's ship rate"
    blocks.append(figure(caption, plots.reliability_png(series, "Reliability diagram")))
    for c in found:
        rows = [_dict(b) for b in _list(c.get("bins")) if _dict(b).get("count")]
        keys = ["low", "high", "count", "predicted", "observed"]
        blocks.append(table(f"Bins of {c.get('probability')}", rows, keys))
    return Section("calibration", "Calibration", "How far the panel's probability of ship can be taken at "
                   "its word: in each bin of predicted probability, the share the reference calls ship.",
                   blocks)  # fmt: skip


def _judges(research: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [_dict(j) for j in _list(research.get("judges"))]


def _accuracy(research: Mapping[str, Any]) -> Section | None:
    rows = [_dict(r) for r in _list(research.get("accuracy"))]
    judges = _judges(research)
    blocks: list[Block] = []
    if rows:
        keys = ["name", "kind", "n_tools", "n_ratings", "accuracy", "kappa"]
        blocks.append(table("Accuracy and Cohen's kappa with the reference", rows, keys, ["name"]))
    names = [str(j.get("judge")) for j in judges]
    names += [str(r.get("name")) for r in rows if str(r.get("name")) not in names]
    by_name = {str(r.get("name")): r for r in rows}
    latent = {str(j.get("judge")): j.get("estimated_accuracy") for j in judges}
    series: dict[str, list[plots.Interval]] = {}
    if rows:
        series["against the reference"] = [interval(by_name.get(n, {}).get("accuracy")) for n in names]
    if any(point(v) is not None for v in latent.values()):
        series["latent model's estimate"] = [interval(latent.get(n)) for n in names]
    if names and series:
        caption = "Each judge's accuracy with its interval"
        blocks.insert(0, figure(caption, plots.forest_png(names, series, caption, "accuracy")))
    return Section("accuracy", "Accuracy of each judge", "The share of verdicts equal to the reference's, "
                   "for each judge, persona, member and the whole panel, beside the accuracy the latent "
                   "model estimates without the reference.", blocks)  # fmt: skip


def _latent(research: Mapping[str, Any], categories: Sequence[str]) -> Section | None:
    latent = _dict(research.get("latent"))
    judges = _judges(research)
    blocks: list[Block] = []
    if latent:
        keys = ["method", "iterations", "converged", "log_likelihood", "tools", "differs_from_majority"]
        blocks.append(Text([], facts(latent, keys)))
        priors = [{"category": c, "prior": p} for c, p in _dict(latent.get("priors")).items()]
        if priors:
            blocks.append(table("The latent verdicts' shares", priors, ["category", "prior"], ["category"]))
    if judges:
        keys = ["judge", "persona", "member", "reviews", "cost_per_tool", "estimated_accuracy"]
        base = table("Each judge as the latent model sees it", judges, keys, ["judge", "persona", "member"])
        head, rows = list(base.head), [list(r) for r in base.rows]
        size = max((len(_list(j.get("confusion"))) for j in judges), default=0)
        names = [*categories, *(str(i) for i in range(len(categories), size))]
        pairs = [(t, g) for t in range(size) for g in range(size)]
        head += [f"{names[t]} → {names[g]}" for t, g in pairs]
        for row, j in zip(rows, judges, strict=True):
            confusion = [_list(r) for r in _list(j.get("confusion"))]
            row += [_cell(confusion, t, g) for t, g in pairs]
        caption = base.caption + " (confusion: latent verdict → the judge's verdict, as a probability)"
        blocks.append(Table(caption, head, rows, base.wrap))
    return Section("latent", "Reliability without labels", "A latent-truth model estimates each judge's "
                   "confusion matrix from the verdicts alone, with no reference.", blocks)  # fmt: skip


def _cell(confusion: list[list[Any]], t: int, g: int) -> Cell:
    return value("p", confusion[t][g]) if t < len(confusion) and g < len(confusion[t]) else "—"


def _pooling(pooling: Mapping[str, Any], research: Mapping[str, Any]) -> Section | None:
    if not pooling:
        return None
    blocks: list[Block] = []
    pooled = [_dict(p) for p in _list(pooling.get("pooled"))]
    everyone = {str(j.get("judge")) for j in _judges(research)}
    if pooled:
        keys = ["method", "judges", "n_tools", "accuracy", "kappa", "cost_per_tool"]
        shown = [dict(p, judges=_panel(p.get("judges"), everyone)) for p in pooled]
        blocks.append(
            table("Pooled verdicts beside the best single judge", shown, keys, ["method", "judges"])
        )
        methods = [str(p.get("method")) for p in pooled]
        values = [interval(p.get("kappa")) for p in pooled]
        best = [m == "best single judge" for m in methods]
        caption = "Kappa with the reference: pooled verdicts and the best single judge"
        blocks.append(figure(caption, plots.bars_png(methods, values, caption, "Cohen's kappa",
                                                             highlight=best)))  # fmt: skip
    thresholds = [_dict(t) for t in _list(pooling.get("thresholds"))]
    if thresholds:
        blocks.append(
            table("The ship share at each threshold", thresholds, ["threshold", "accuracy", "kappa"])
        )
    keys = ["k", "judges", "accuracy", "kappa", "cost_per_tool"]
    by_size = [_dict(p) for p in _list(pooling.get("by_size"))]
    by_cost = [_dict(p) for p in _list(pooling.get("by_cost"))]
    if by_size:
        blocks.append(table("The best sub-panel of each size (majority vote)", by_size, keys, ["judges"]))
    if by_cost:
        blocks.append(table("The cost frontier: no cheaper sub-panel does better", by_cost, keys, ["judges"]))
        blocks.append(_frontier(by_cost, by_size, pooled, research))
    blocks.append(Text([str(n) for n in _list(pooling.get("notes"))], facts(pooling, ["search"])))
    return Section("pooling", "Pooled verdicts", "The panel's verdict pooled three ways, against the "
                   "reference, beside the best single judge; and the smaller panels that do as well.",
                   blocks)  # fmt: skip


def _panel(judges: Any, everyone: set[str]) -> Any:
    """A list of judges, or "all N judges" when it is the whole panel."""
    names = [str(j) for j in _list(judges)]
    return f"all {len(names)} judges" if len(names) > 1 and set(names) == everyone else judges


def _frontier(
    by_cost: list[dict[str, Any]], by_size: list[dict[str, Any]], pooled: list[dict[str, Any]],
    research: Mapping[str, Any],
) -> Block:  # fmt: skip
    accuracy = {
        str(r.get("name")): r for r in map(_dict, _list(research.get("accuracy"))) if r.get("kind") == "judge"
    }
    singles = [(point(j.get("cost_per_tool")), point(accuracy.get(str(j.get("judge")), {}).get("kappa")))
               for j in _judges(research)]  # fmt: skip

    def pairs(rows: list[dict[str, Any]]) -> list[tuple[float | None, float | None]]:
        return [(point(r.get("cost_per_tool")), point(r.get("kappa"))) for r in rows]

    series = {"cost frontier": pairs(by_cost), "best sub-panel per size": pairs(by_size),
              "single judges": singles, "whole panel pooled": pairs(pooled)}  # fmt: skip
    caption = "Cost per tool against kappa with the reference"
    return figure(caption, plots.frontier_png(series, caption, "cost per tool (USD)", "Cohen's kappa"))


def _variance(variance: Mapping[str, Any]) -> Section | None:
    if not variance:
        return None
    blocks: list[Block] = [Text([], facts(variance, ["method", "n_tools", "n_reviews"]))]
    components = [_dict(c) for c in _list(variance.get("components"))]
    if components:
        shown = [*components, {"name": label("total"), "variance": variance.get("total"),
                                   "share": 1.0 if point(variance.get("total")) else None}]  # fmt: skip
        blocks.append(table("Variance components: each share is its variance over the total",
                            shown, ["name", "share", "variance"], ["name"]))  # fmt: skip
        names = [str(c.get("name")) for c in components]
        values = [interval(c.get("share")) for c in components]
        caption = "Share of the variance of verdicts, with intervals"
        blocks.append(figure(caption, plots.bars_png(names, values, caption, "% of the variance",
                                                             percent=True)))  # fmt: skip
    by_persona = [_dict(p) for p in _list(variance.get("by_persona"))]
    if by_persona:
        keys = list(dict.fromkeys(k for row in by_persona for k in row))
        blocks.append(table("By persona", by_persona, keys, [k for k in keys if k in ("persona", "name")]))
    if variance.get("reading"):
        blocks.append(Text([str(r) for r in _list(variance.get("reading"))], heading="Reading"))
    return Section("variance", "Where disagreement comes from", "The variance of verdicts split into tool, "
                   "persona, member and persona × member parts.", blocks)  # fmt: skip
