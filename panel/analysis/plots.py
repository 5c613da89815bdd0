"""PNG figures of an agreement report: kappa heatmaps, ship rates, and the researcher's charts
(accuracy forest plot, estimates with intervals as bars, the cost frontier).

Every figure is drawn by a ``*_png`` function that returns the PNG's bytes, for files
(:func:`write_plots`) and for the data URIs of the HTML report alike. matplotlib is imported
only when a figure is drawn, so the package works without the ``analysis`` extra until
someone asks for plots. Names on a figure are data (personas, members, tools): each is
cleaned, cut to a length a figure can hold, and kept from being read as mathtext.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MissingExtraError
from ..report.files import write_atomic
from ..text import clean

if TYPE_CHECKING:
    from .agreement import AgreementReport, KappaMatrix

__all__ = [
    "Interval", "bars_png", "forest_png", "frontier_png", "kappa_heatmap", "kappa_png", "label",
    "reliability_png", "ship_rate_chart", "ship_rate_png", "write_plots",
]  # fmt: skip

Interval = tuple[float | None, float | None, float | None]
"""An estimate as (point, low, high); ``None`` where it is undefined."""
LABEL_CHARS = 40
_BLUE, _RED, _GREY, _ORANGE = "#4c72b0", "#c44e52", "#8c8c8c", "#dd8452"


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise MissingExtraError("--plots", "matplotlib", "analysis") from None
    # Files only: a headless backend, whatever display the machine has.
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def label(text: object, limit: int = LABEL_CHARS) -> str:
    """A name as a figure shows it: one line, no controls, at most ``limit`` characters, and
    every ``$`` escaped so matplotlib never parses it as mathtext (a malformed one raises).

    A long name loses its middle, not its end: "persona / member" names differ at both ends.
    """
    flat = " ".join(clean(text).split())
    if len(flat) > limit:
        head = (limit - 1) // 2
        flat = flat[:head] + "…" + flat[len(flat) - (limit - 1 - head) :]
    return flat.replace("$", r"\$")


def _png(draw: Callable[[Any], Any], dpi: int = 100) -> bytes:
    """The figure ``draw(plt)`` returns, as PNG bytes; the figure is closed whatever happens."""
    plt = _pyplot()
    fig = draw(plt)
    try:
        with warnings.catch_warnings():
            # A name in a script the font lacks shows as boxes; that is no reason to fail.
            warnings.filterwarnings("ignore", message="Glyph .* missing", category=UserWarning)
            warnings.filterwarnings("ignore", message="Tight layout not applied", category=UserWarning)
            fig.tight_layout()
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=dpi)
        return buffer.getvalue()
    finally:
        plt.close(fig)


def _nan(v: float | None) -> float:
    return math.nan if v is None else float(v)


def kappa_png(
    labels: Sequence[str], kappa: Sequence[Sequence[float | None]], title: str, dpi: int = 100
) -> bytes:
    """An annotated raters x raters heatmap; the colour scale is always [-1, 1]."""
    import numpy as np

    values = np.array([[_nan(v) for v in row] for row in kappa], dtype=float).reshape(len(labels), -1)
    names = [label(n, 32) for n in labels]
    n = len(names)

    def draw(plt: Any) -> Any:
        side = 2.8 + 0.9 * n
        fig, ax = plt.subplots(figsize=(side + 1.6, side))
        # A fixed scale keeps heatmaps of different runs comparable at a glance.
        cmap = plt.get_cmap("RdBu").with_extremes(bad="#d9d9d9")
        image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=-1.0, vmax=1.0)
        ax.set_xticks(range(n), names, rotation=35, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(n), names)
        for i in range(n):
            for j in range(n):
                v = values[i, j]
                text, dark = ("n/a", False) if np.isnan(v) else (f"{v:.2f}", abs(v) > 0.6)
                ax.text(j, i, text, ha="center", va="center", fontsize=9, color="white" if dark else "black")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="Cohen's kappa")
        ax.set_title(label(title, 90), fontsize=11)
        return fig

    return _png(draw, dpi)


def kappa_heatmap(
    labels: Sequence[str], kappa: Sequence[Sequence[float | None]], title: str, path: Path
) -> Path:
    """:func:`kappa_png` written to ``path``, whole or not at all."""
    write_atomic(path, kappa_png(labels, kappa, title, dpi=120))
    return path


def ship_rate_png(
    rates: dict[str, float | None], title: str, positive: str = "ship", dpi: int = 100
) -> bytes:
    """Horizontal bars of each rater's share of ``positive`` verdicts (leniency), with the 50% line."""
    names = list(rates)

    def draw(plt: Any) -> Any:
        shares = [100.0 * (rates[n] or 0.0) for n in names]
        fig, ax = plt.subplots(figsize=(8.0, 1.2 + 0.45 * len(names)))
        bars = ax.barh(range(len(names)), shares, color=_BLUE)
        ax.set_yticks(range(len(names)), [label(n) for n in names])
        ax.invert_yaxis()  # first rater on top, as in the tables
        ax.axvline(50.0, color=_RED, linestyle="--", linewidth=1.2, label="50%")
        for bar, name in zip(bars, names, strict=True):
            text = "no valid reviews" if rates[name] is None else f"{bar.get_width():.0f}%"
            ax.text(bar.get_width() + 1.0, bar.get_y() + bar.get_height() / 2, text, va="center", fontsize=8)
        ax.set_xlim(0.0, 110.0)
        ax.set_xlabel(f"{label(positive)} verdicts, % of valid reviews")
        ax.set_title(label(title, 90), fontsize=11)
        ax.legend(loc="lower right", fontsize=8)
        return fig

    return _png(draw, dpi)


def ship_rate_chart(rates: dict[str, float | None], title: str, path: Path, positive: str = "ship") -> Path:
    """:func:`ship_rate_png` written to ``path``, whole or not at all."""
    write_atomic(path, ship_rate_png(rates, title, positive, dpi=120))
    return path


def _errorbar(ax: Any, ys: Sequence[float], values: Sequence[Interval], **style: Any) -> None:
    """Points with their intervals at heights ``ys``, in one legend entry; undefined points are left out."""
    kept = [(y, p, lo, hi) for y, (p, lo, hi) in zip(ys, values, strict=True) if p is not None]
    if not kept:
        return
    left = [max(p - lo, 0.0) if lo is not None else 0.0 for _, p, lo, _ in kept]
    right = [max(hi - p, 0.0) if hi is not None else 0.0 for _, p, _, hi in kept]
    ax.errorbar(
        [p for _, p, _, _ in kept], [y for y, _, _, _ in kept], xerr=[left, right], capsize=3, **style
    )


def forest_png(
    rows: Sequence[str], series: Mapping[str, Sequence[Interval]], title: str, xlabel: str
) -> bytes:
    """One row per name, one marker with its interval per series (offset so they sit side by side)."""
    names = [label(r) for r in rows]
    styles = [dict(fmt="o", color=_BLUE), dict(fmt="s", color=_ORANGE), dict(fmt="D", color=_GREY)]

    def draw(plt: Any) -> Any:
        fig, ax = plt.subplots(figsize=(8.0, 1.4 + 0.42 * len(names)))
        offset = 0.36 / max(len(series), 1)
        for s, (name, values) in enumerate(series.items()):
            ys = [i + (s - (len(series) - 1) / 2) * offset for i in range(len(names))]
            _errorbar(ax, ys, values, label=label(name), markersize=5, **styles[s % len(styles)])
        ax.set_yticks(range(len(names)), names)
        ax.set_ylim(len(names) - 0.5, -0.5)  # first row on top, as in the tables
        ax.set_xlim(0.0, 1.0)
        ax.grid(axis="x", color="#e0e0e0")
        ax.set_xlabel(label(xlabel, 90))
        ax.set_title(label(title, 90), fontsize=11)
        if any(p is not None for values in series.values() for p, _, _ in values):
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1 - 0.6 / len(names)), ncol=2, fontsize=8)
        return fig

    return _png(draw)


def bars_png(
    rows: Sequence[str],
    values: Sequence[Interval],
    title: str,
    xlabel: str,
    *,
    highlight: Sequence[bool] = (),
    percent: bool = False,
) -> bytes:
    """Horizontal bars of point estimates with their intervals; highlighted bars are drawn apart."""
    names = [label(r) for r in rows]
    scale = 100.0 if percent else 1.0
    shown: list[Interval] = [
        (
            None if p is None else scale * p,
            None if lo is None else scale * lo,
            None if hi is None else scale * hi,
        )
        for p, lo, hi in values
    ]

    def draw(plt: Any) -> Any:
        fig, ax = plt.subplots(figsize=(8.0, 1.3 + 0.45 * len(names)))
        colors = [_ORANGE if i < len(highlight) and highlight[i] else _BLUE for i in range(len(names))]
        points = [0.0 if p is None else p for p, _, _ in shown]
        ax.barh(range(len(names)), points, color=colors, height=0.6)
        _errorbar(ax, list(range(len(names))), shown, fmt="none", ecolor="#1b1a17", elinewidth=1.2)
        top = max([100.0 if percent else 1.0, *points, *(h for _, _, h in shown if h is not None)])
        for i, (p, _, high) in enumerate(shown):
            text = "—" if p is None else (f"{p:.0f}%" if percent else f"{p:.3f}")
            x = max(0.0 if p is None else p, 0.0 if high is None else high) + 0.015 * top
            ax.text(x, i, text, va="center", fontsize=8)
        ax.set_yticks(range(len(names)), names)
        ax.set_ylim(len(names) - 0.5, -0.5)
        ax.axvline(0.0, color="#1b1a17", linewidth=0.8)
        lows = [lo for _, lo, _ in shown if lo is not None]
        ax.set_xlim(min([0.0, *points, *lows]), 1.14 * top)
        ax.grid(axis="x", color="#e0e0e0")
        ax.set_axisbelow(True)
        ax.set_xlabel(label(xlabel, 90))
        ax.set_title(label(title, 90), fontsize=11)
        return fig

    return _png(draw)


def frontier_png(
    series: Mapping[str, Sequence[tuple[float | None, float | None]]], title: str, xlabel: str, ylabel: str
) -> bytes:
    """Cost (x) against kappa (y): a step line for the first series (the frontier), points for the rest."""
    markers = ["o", "s", "^", "D"]
    colors = [_BLUE, _ORANGE, _GREY, _RED]

    def draw(plt: Any) -> Any:
        fig, ax = plt.subplots(figsize=(8.0, 4.6))
        drawn = False
        for s, (name, points) in enumerate(series.items()):
            kept = [(x, y) for x, y in points if x is not None and y is not None]
            if not kept:
                continue
            xs, ys = zip(*kept, strict=True)
            ax.plot(xs, ys, linestyle="-" if s == 0 else "none", marker=markers[s % 4], color=colors[s % 4],
                    label=label(name), drawstyle="steps-post" if s == 0 else "default")  # fmt: skip
            drawn = True
        ax.grid(color="#e0e0e0")
        ax.set_xlabel(label(xlabel, 90))
        ax.set_ylabel(label(ylabel, 90))
        ax.set_title(label(title, 90), fontsize=11)
        if drawn:  # beside the axes, so it hides no point
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        return fig

    return _png(draw)


def reliability_png(
    series: Mapping[str, Sequence[tuple[float | None, float | None, int]]], title: str
) -> bytes:
    """Reliability diagrams: per series, each bin's (mean predicted, observed rate, count) as a
    point sized by its count, joined by a line, over the diagonal of perfect calibration."""
    markers = ["o", "s", "^", "D"]
    colors = [_BLUE, _ORANGE, _GREY, _RED]

    def draw(plt: Any) -> Any:
        fig, ax = plt.subplots(figsize=(6.4, 5.4))
        ax.plot([0.0, 1.0], [0.0, 1.0], color="#1b1a17", linestyle="--", linewidth=0.8,
                label="perfectly calibrated")  # fmt: skip
        biggest = max((c for bins in series.values() for _, _, c in bins), default=1) or 1
        for s, (name, bins) in enumerate(series.items()):
            kept = [(x, y, c) for x, y, c in bins if x is not None and y is not None and c > 0]
            if not kept:
                continue
            xs, ys, cs = zip(*kept, strict=True)
            ax.plot(xs, ys, color=colors[s % 4], linewidth=1.0, label=label(name, 60))
            ax.scatter(xs, ys, s=[12 + 140 * c / biggest for c in cs], marker=markers[s % 4],
                       color=colors[s % 4], zorder=3)  # fmt: skip
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(0.0, 1.0)
        ax.grid(color="#e0e0e0")
        ax.set_xlabel("predicted probability of ship (mean in each bin)")
        ax.set_ylabel("the reference's ship rate")
        ax.set_title(label(title, 70), fontsize=11)
        ax.legend(loc="lower right", fontsize=8)  # below the diagonal of a calibrated panel: empty
        return fig

    return _png(draw)


def _matrix_file(m: KappaMatrix) -> str:
    return f"kappa_{m.axis}s_{_slug(m.within) if m.within is not None else 'pooled'}.png"


def write_plots(report: AgreementReport, folder: Path) -> list[Path]:
    """Every heatmap and the ship-rate chart of ``report`` into ``folder``; the files written."""
    _pyplot()  # fail on a missing extra before writing anything
    data = report.to_dict()
    written = []
    for matrix, shown in zip(report.cohen, data["cohen"], strict=True):
        title = f"Cohen's kappa, {matrix.title} ({matrix.n_items} items)"
        written.append(kappa_heatmap(matrix.raters, shown["kappa"], title, folder / _matrix_file(matrix)))
    rates = data["stats"]["ship_rate"]
    positive = report.stats.positive
    title = f"{positive.capitalize()} rate by {report.by} (run {report.basis['run']})"
    written.append(ship_rate_chart(rates, title, folder / "ship_rate.png", positive))
    return written
