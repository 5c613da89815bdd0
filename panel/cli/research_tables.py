"""The researcher's sections of `panel agreement` as tables for people (from the report's JSON dict)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table

from ..text import for_console
from .apps import out_console

__all__ = ["ci", "num", "print_research"]

Data = Mapping[str, Any]
_KINDS = {
    "judge": "judge",
    "persona": "persona, pooled over members",
    "member": "member, pooled over personas",
}


def num(value: float | None, percent: bool = False) -> str:
    """A figure as the tables show it: three decimals, a whole percentage, or — for none."""
    if value is None:
        return "—"
    return f"{100 * value:.0f}%" if percent else f"{value:.3f}"


def ci(e: Data | None, percent: bool = False) -> str:
    if not e or e.get("point") is None:
        return "—"
    if e.get("low") is None:
        return num(e["point"], percent)
    note = f" {e['note']}" if e.get("note") else ""  # an interval that is one point says so
    return f"{num(e['point'], percent)} [{num(e['low'], percent)}, {num(e['high'], percent)}]{note}"


def _usd(value: float | None) -> str:
    return "—" if value is None else f"${value:.4f}"


def _names(names: Sequence[str]) -> str:
    return ", ".join(for_console(n) for n in names)


def _reference(research: Data) -> None:
    ref = research["reference"]
    line = (
        f"[bold]Reference[/]: {for_console(ref['source'])} · {ref['tools']} of {ref['tools_in_run']} tools "
        f"have a reference verdict · "
        + ", ".join(f"{for_console(c)} {num(s, percent=True)}" for c, s in ref["shares"].items())
    )
    out_console.print(line, highlight=False)
    if ref.get("human_agreement"):
        out_console.print(
            f"Human labels agree with each other (Krippendorff's alpha): {ci(ref['human_agreement'])}, "
            "the ceiling a judge can be expected to reach.",
            highlight=False,
        )
    table = Table(
        "who", "tools", "accuracy [95% CI]", "Cohen's κ [95% CI]", title="Agreement with the reference"
    )
    for row in research["accuracy"]:
        name = "all judges, pooled" if row["kind"] == "panel" else row["name"]
        kind = _KINDS.get(row["kind"], "")
        label = f"{for_console(name)}" + (f" [dim]({kind})[/]" if kind and row["kind"] != "judge" else "")
        table.add_row(label, str(row["n_tools"]), ci(row["accuracy"]), ci(row["kappa"]))
    out_console.print(table)


def _pooling(pooling: Data) -> None:
    table = Table(
        "verdict", "tools", "accuracy [95% CI]", "Cohen's κ [95% CI]", "cost per tool", title="Pooled"
    )
    for p in pooling["pooled"]:
        who = p["method"] + (f": {_names(p['judges'])}" if p["method"] == "best single judge" else "")
        table.add_row(
            for_console(who), str(p["n_tools"]), ci(p["accuracy"]), ci(p["kappa"]), _usd(p["cost_per_tool"])
        )
    out_console.print(table)
    sizes = Table("judges", "best sub-panel (majority vote)", "accuracy", "κ", "cost per tool")
    sizes.title = f"Best sub-panel per size ({pooling['search']})"
    for p in pooling["by_size"]:
        sizes.add_row(
            str(p["k"]), _names(p["judges"]), num(p["accuracy"]), num(p["kappa"]), _usd(p["cost_per_tool"])
        )
    out_console.print(sizes)
    frontier = Table(
        "cost per tool", "sub-panel", "κ", title="Cost frontier: no cheaper sub-panel agrees better"
    )
    for p in pooling["by_cost"]:
        frontier.add_row(_usd(p["cost_per_tool"]), _names(p["judges"]), num(p["kappa"]))
    out_console.print(frontier)
    for note in pooling["notes"]:
        out_console.print(f"[dim]note: {for_console(note)}[/]", highlight=False)


def _judges(research: Data, measured: Mapping[str, Data]) -> None:
    table = Table(
        "judge", "valid", "estimated accuracy (no labels)", "measured accuracy", "cost per tool",
        title="Reliability without labels (latent-truth model)",
    )  # fmt: skip
    for row in research["judges"]:
        seen = measured.get(row["judge"])
        table.add_row(
            for_console(row["judge"]), str(row["reviews"]), ci(row["estimated_accuracy"]),
            ci(seen["accuracy"]) if seen else "—", _usd(row["cost_per_tool"]),
        )  # fmt: skip
    latent = research["latent"]
    table.caption = (
        f"{latent['method']}; {latent['iterations']} iterations"
        f"{'' if latent['converged'] else ' (did not converge)'}; its verdict differs from the majority "
        f"vote on {latent['differs_from_majority']} of {latent['tools']} tools"
    )
    out_console.print(table)


def _variance(variance: Data) -> None:
    table = Table("part", "share of verdict variance [95% CI]", "variance [95% CI]")
    table.title = "Where disagreement comes from"
    for c in variance["components"]:
        table.add_row(for_console(c["name"]), ci(c["share"], percent=True), ci(c["variance"]))
    if variance.get("total"):
        table.add_row("total (the parts shown)", "100%", ci(variance["total"]))
    table.caption = for_console(variance["method"])
    out_console.print(table)
    for sentence in variance.get("reading", []):
        out_console.print(for_console(sentence), highlight=False)


def print_research(research: Data) -> None:
    """Reference agreement, pooling, label-free reliability and the variance split, as tables."""
    measured = {r["name"]: r for r in research.get("accuracy", []) if r["kind"] == "judge"}
    if research.get("reference"):
        _reference(research)
    if research.get("pooling"):
        _pooling(research["pooling"])
    for c in research.get("calibration", []):
        small = c.get("sample") or {}
        said = (
            f"expected calibration error {num(c['ece'])} over {c['n']} tools"
            if c.get("ece") is not None
            else f"no calibration error: {small.get('reason') or 'no tool to score'}"
        )
        out_console.print(
            f"Calibration against the reference, {for_console(c['probability'])}: {for_console(said)}",
            highlight=False,
        )
    _judges(research, measured)
    if research.get("variance"):
        _variance(research["variance"])
    for note in research.get("notes", []):
        out_console.print(f"[dim]note: {for_console(note)}[/]", highlight=False)
