"""Model comparisons and activation scans -> PNG files (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

from dtlab.models.activations import ActivationReport
from dtlab.models.compare import CompareReport
from dtlab.outputs import check_plot_path, write_atomic
from dtlab.render.plots import COLORS, _pyplot

__all__ = ["activations_plot", "compare_plot"]

_CAP_DB = 80.0  # identical layers (inf dB) are drawn at the top of the axis


def compare_plot(r: CompareReport, path: Path) -> None:
    """Per-layer SQNR of each format (layers in model order); for language models also the
    histogram of per-token KLD on a log scale."""
    check_plot_path(path)
    plt = _pyplot()
    lm = any(run.lm is not None for run in r.runs)
    fig, axes = plt.subplots(2 if lm else 1, 1, figsize=(11, 8 if lm else 4.5), squeeze=False)
    ax = axes[0][0]
    for i, run in enumerate(r.runs):
        rows = sorted(run.layers, key=lambda x: x.order)
        xs = [x.order for x in rows]
        ys = [min(x.sqnr_db, _CAP_DB) for x in rows]
        ax.plot(xs, ys, marker=".", lw=1, color=COLORS[i % len(COLORS)], label=run.spec)
    ax.set_xlabel("layer (model order)")
    ax.set_ylabel(f"SQNR vs fp32, dB (identical: {_CAP_DB:g})")
    ax.legend(fontsize=8)
    ax.set_title(f"{r.model}: each layer's output against the fp32 run")
    if lm:
        ax2 = axes[1][0]
        for i, run in enumerate(r.runs):
            if run.lm is None or not run.lm.kld_log10_histogram:
                continue
            bins = [b + 0.125 for b, _ in run.lm.kld_log10_histogram]
            ys = [c for _, c in run.lm.kld_log10_histogram]
            ax2.step(bins, ys, where="mid", color=COLORS[i % len(COLORS)], label=run.spec)
        ax2.set_xlabel("log10 KLD per token (bins of 1/4)")
        ax2.set_ylabel("tokens")
        ax2.legend(fontsize=8)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)


def activations_plot(r: ActivationReport, path: Path) -> None:
    """Each module's headroom (binades below each format's max) in execution order; below 0
    the module's largest output overflows."""
    check_plot_path(path)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for i, t in enumerate(r.targets):
        pts = [(m.order, m.fits[i].headroom_binades) for m in r.modules]
        pts = [(x, y) for x, y in pts if y == y and abs(y) != float("inf")]
        ax.scatter(
            [x for x, _ in pts],
            [y for _, y in pts],
            s=6,
            color=COLORS[i % len(COLORS)],
            label=t.format,
        )
    ax.axhline(0.0, color="black", lw=1)
    ax.set_xlabel("module (execution order)")
    ax.set_ylabel("headroom, binades (log2 max / |x| max)")
    ax.set_title(f"{r.model}: activation headroom per module")
    ax.legend(fontsize=8)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
