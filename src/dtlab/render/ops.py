"""Operation experiments -> rich tables."""

from __future__ import annotations

import math

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from dtlab.analysis.ops import DotExperiment


def _digits(d: float) -> str:
    return "all" if math.isinf(d) else ("—" if math.isnan(d) else f"≈{d:.2f}")


def dot_table(e: DotExperiment) -> RenderableType:
    table = Table(
        title=f"dot product of {e.n:,} values; float64 reference {e.exact!r}", title_justify="left"
    )
    for col in (
        "format",
        "accumulate",
        "result",
        "rel error",
        "rel error vs\nrounded inputs",
        "correct\ndigits",
        "operand\nbytes",
    ):
        table.add_column(
            col,
            justify="left" if col in ("format", "accumulate") else "right",
            no_wrap=col in ("format", "result"),
        )
    for r in e.results:
        table.add_row(
            r.format.name,
            r.accumulate.value,
            repr(r.value),
            f"≈{r.rel_error:.3g}",
            f"≈{r.rel_error_rounding:.3g}",
            _digits(r.correct_digits),
            f"{r.operand_bytes:,}",
        )
    note = Text(
        "result: the float64 the emulated accumulation ends with (repr: the digits that read it "
        "back exactly); 'vs rounded inputs' isolates what the accumulation loses"
    )
    return Group(table, note)
