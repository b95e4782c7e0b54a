"""CastReport -> a rich table."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from dtlab.cast import CastReport


def percent_of(count: int, total: int) -> str:
    """A share that never reads 100 % or 0 % unless it is."""
    text = f"{100 * count / total:.2f} %"
    if text == "100.00 %" and count != total:
        return "> 99.99 %"
    if text == "0.00 %" and count:
        return "< 0.01 %"
    return text.replace(".00 %", " %")


def cast_table(r: CastReport) -> RenderableType:
    shape = "×".join(str(s) for s in r.shape) or "scalar"
    policy = r.overflow.value if r.overflow else "format default"
    head = Text(
        f"{r.source}: {shape} {r.dtype}, {r.numel:,} values"
        + (f", {r.input_nan:,} NaN" if r.input_nan else "")
        + (f", {r.input_inf:,} inf" if r.input_inf else "")
        + f"\nrounding {r.rounding.value}, overflow {policy}, subnormals {r.subnormals.value}"
    )
    table = Table()
    for col in ("format", "changed", "became 0", "became NaN", "became inf"):
        table.add_column(col, justify="left" if col == "format" else "right")
    for row in r.rows:
        pct = f"  ({percent_of(row.changed, r.numel)})" if r.numel else ""
        table.add_row(row.format.name, f"{row.changed:,}{pct}", f"{row.to_zero:,}",
                      f"{row.to_nan:,}", f"{row.to_inf:,}")  # fmt: skip
    parts: list[RenderableType] = [head, table]
    if r.output:
        parts.append(Text(f"wrote {r.output}"))
    return Group(*parts)
