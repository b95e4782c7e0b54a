"""Analyses -> PNG files (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from dtlab.analysis.comparison import QuantAnalysis
from dtlab.analysis.format_fit import Analysis
from dtlab.analysis.ops import DotExperiment
from dtlab.formats import FloatFormat
from dtlab.kernels import decode
from dtlab.outputs import check_plot_path, write_atomic

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
SAMPLE = 200_000  # values drawn for the linear histogram


def _pyplot() -> Any:
    # Under an unwritable HOME matplotlib logs two multi-line warnings and makes a new cache
    # every run: give it a lasting cache of dtlab's own, and keep its notices off stderr.
    if "MPLCONFIGDIR" not in os.environ and not os.access(Path.home(), os.W_OK):
        uid = getattr(os, "getuid", lambda: 0)()
        cache = Path(tempfile.gettempdir()) / f"dtlab-matplotlib-{uid}"
        cache.mkdir(mode=0o700, exist_ok=True)
        os.environ["MPLCONFIGDIR"] = str(cache)
    logging.getLogger("matplotlib").setLevel(logging.ERROR)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def analysis_plot(a: Analysis, x: torch.Tensor, path: Path, title: str) -> None:
    """Three panels: the binade histogram against each format's range; the values with the
    first format's grid, max, smallest normal and smallest subnormal; SQNR per format."""
    check_plot_path(path)
    plt = _pyplot()
    fig, (top, mid, bottom) = plt.subplots(3, 1, figsize=(10, 11))
    _binades(top, a)
    _values(mid, a, x)
    _sqnr(bottom, a)
    fig.suptitle(title)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)


def _color(a: Analysis, fmt: Any) -> str:
    names = [r.format.name for r in a.results]
    return COLORS[names.index(fmt.name) % len(COLORS)]


def _binades(ax: Any, a: Analysis) -> None:
    counts = a.input.histogram.counts
    lo, hi = (counts[0][0], counts[-1][0]) if counts else (-10, 10)
    if counts:
        es, cs = zip(*counts, strict=True)
        ax.bar(es, cs, width=1.0, color="#bbbbbb", edgecolor="#888888", label="values per binade")
    ax.set_xlim(lo - 12, hi + 12)  # the data's binades; far-away format limits are in the legend
    for r in a.results:
        c = _color(a, r.format)
        rng = r.range
        ax.axvspan(rng.emin_sub - 0.5, rng.emin - 0.5, color=c, alpha=0.08)
        ax.axvline(rng.emin_sub - 0.5, color=c, ls=":", lw=1)
        ax.axvline(rng.emin - 0.5, color=c, ls="--", lw=1)
        span = f"2^{rng.emin_sub}..2^{rng.emax}" if r.format.kind == "float" else f"0..2^{rng.emax}"
        ax.axvline(rng.emax + 0.5, color=c, ls="-", lw=1.5, label=f"{r.format.name} ({span})")
    ax.set_yscale("log")
    ax.set_xlabel(
        "binade: floor(log2 |x|)   (lines per format: dotted smallest subnormal, "
        "dashed smallest normal, solid top of the max binade)"
    )
    ax.set_ylabel("values")
    ax.legend(fontsize=8, loc="upper left")


def _values(ax: Any, a: Analysis, x: torch.Tensor) -> None:
    flat = x.detach().reshape(-1)
    flat = flat[flat.isfinite()].double()
    if flat.numel() > SAMPLE:
        g = torch.Generator().manual_seed(0)
        flat = flat[torch.randint(0, flat.numel(), (SAMPLE,), generator=g)]
    if not flat.numel():
        return
    lo, hi = float(flat.quantile(0.001)), float(flat.quantile(0.999))
    span = max(abs(lo), abs(hi)) or 1.0
    ax.hist(flat.clamp(-span, span).numpy(), bins=200, color="#bbbbbb", range=(-span, span))
    fmt = min((r.format for r in a.results), key=lambda f: f.bits)  # the coarsest grid shows best
    color = _color(a, fmt)
    grid = _grid(fmt, span)
    if grid is not None:
        ax.plot(grid, [0] * len(grid), "|", color=color, ms=12, label=f"{fmt.name} values")
    marks = [(float(fmt.max), "max", "-")]
    if isinstance(fmt, FloatFormat):
        marks += [
            (float(fmt.smallest_normal), "smallest normal", "--"),
            (float(fmt.smallest_subnormal), "smallest subnormal", ":"),
        ]
    for value, label, ls in marks:
        if value <= span:
            ax.axvline(value, color=color, ls=ls, lw=1, label=f"{fmt.name} {label} {value:g}")
            ax.axvline(-value, color=color, ls=ls, lw=1)
    ax.set_xlim(-span, span)
    ax.set_xlabel("value (finite values, 0.1 %..99.9 % range)")
    ax.set_ylabel("count")
    ax.legend(fontsize=8, loc="upper right")


def _grid(fmt: Any, span: float) -> list[float] | None:
    """The representable values within ±span, when there are at most a few thousand."""
    if fmt.bits > 12:
        return None
    v = decode(torch.arange(1 << fmt.bits), fmt, dtype=torch.float64)
    return list(v[v.isfinite() & (v.abs() <= span)].tolist())


def _sqnr(ax: Any, a: Analysis) -> None:
    ranked = a.ranked()
    names = [r.format.name for r in ranked]
    vals = [r.metrics.sqnr_db if math.isfinite(r.metrics.sqnr_db) else 0.0 for r in ranked]
    bars = ax.bar(names, vals, color=[_color(a, r.format) for r in ranked])
    for bar, r in zip(bars, ranked, strict=True):
        rel = r.metrics.mean_rel_error
        ax.annotate(
            f"{r.metrics.sqnr_db:.1f} dB\nmean rel {rel:.2g}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_ylabel("SQNR (dB), higher is better")
    ax.tick_params(axis="x", labelrotation=20)


def dot_plot(e: DotExperiment, path: Path) -> None:
    """Relative error of each (format, accumulation), on a log scale."""
    check_plot_path(path)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 5))
    labels = [f"{r.format.name}\n{r.accumulate.value}" for r in e.results]
    vals = [r.rel_error if r.rel_error > 0 else float("nan") for r in e.results]
    ax.bar(labels, vals, color=[COLORS[i % len(COLORS)] for i in range(len(labels))])
    ax.set_yscale("log")
    ax.set_ylabel("relative error vs float64")
    ax.set_title(f"dot product of {e.n:,} values ({e.source})")
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)


def quant_plot(a: QuantAnalysis, path: Path, title: str) -> None:
    """SQNR against storage cost: each quantizer a point, better ones up and to the left."""
    check_plot_path(path)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 6))
    for i, r in enumerate(a.rows):
        bits = float(r.effective_bits)
        ax.scatter([bits], [r.metrics.sqnr_db], color=COLORS[i % len(COLORS)], s=60)
        ax.annotate(
            r.spec, (bits, r.metrics.sqnr_db), textcoords="offset points", xytext=(6, 4), fontsize=9
        )
    ax.set_xlabel("bits per value, scales included")
    ax.set_ylabel("SQNR (dB), higher is better")
    ax.set_title(f"quantizing {title}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
