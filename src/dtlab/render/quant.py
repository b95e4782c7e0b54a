"""Quantization comparisons -> rich tables."""

from __future__ import annotations

from fractions import Fraction

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from dtlab.analysis.comparison import QuantAnalysis
from dtlab.numtext import approx_float as g
from dtlab.render.cast import summary_line
from dtlab.values import exact_decimal


def _bits(b: Fraction) -> str:
    text = exact_decimal(b)
    return text if text is not None and len(text) <= 8 else f"≈{float(b):.4f}"


def quant_table(a: QuantAnalysis, source: str, shape: tuple[int, ...]) -> RenderableType:
    table = Table(
        title="best SQNR first; bits per value include the scales (≈: rounded)",
        title_justify="left",
    )
    table.add_column("quantizer", no_wrap=True)
    table.add_column("bits/value", justify="right", no_wrap=True)
    table.add_column("SQNR dB", justify="right", no_wrap=True)
    table.add_column("mean rel", justify="right", no_wrap=True)
    table.add_column("max |err|", justify="right", no_wrap=True)
    table.add_column("clipped", justify="right", no_wrap=True)
    table.add_column("to 0", justify="right", no_wrap=True)
    for r in a.ranked():
        m = r.metrics
        table.add_row(
            r.spec,
            _bits(r.effective_bits),
            g(m.sqnr_db, 4),
            g(m.mean_rel_error),
            g(m.max_abs_error, 4),
            f"{m.overflow:,}",
            f"{m.underflow:,}",
        )
    notes = Text(
        f"scales per channel along axis {a.channel_axis} (one per tensor below rank 2, as in "
        f"dtlab model memory); groups and blocks along axis "
        f"{a.group_axis}; int formats symmetric unless :asym (unsigned: always), absmax unless "
        ":mse or :pNN; MX scale rule floor (OCP) unless given"
    )
    return Group(summary_line(a.input, source, shape), table, notes)
