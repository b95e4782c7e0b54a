"""Tables fitted to the page: a table wider than the page is stacked, never cut.

rich shrinks a table that does not fit by cutting cells with "…", which turns ``103/103``
into ``103/…`` and a heading into ``smal…``. Here a table wider than the page becomes
several tables, each repeating the first (key) column with as many of the others as fit at
their full width; a single column still too wide wraps (``fold``), so a digit is never lost.
"""

from __future__ import annotations

import dataclasses

from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table

CONTINUED = "(continued)"


def fit_to_width(renderable: RenderableType, console: Console) -> RenderableType:
    """``renderable`` with every table in it (also inside groups) fitted to the page."""
    if isinstance(renderable, Table):
        parts = fit_table(renderable, console)
        return parts[0] if len(parts) == 1 else Group(*parts)
    if isinstance(renderable, Group):
        return Group(
            *(fit_to_width(r, console) for r in renderable.renderables), fit=renderable.fit
        )
    return renderable


def fit_table(table: Table, console: Console) -> list[Table]:
    """``table`` as one or more tables no wider than the page, with no cell cut short."""
    width = console.width
    if len(table.columns) < 2 or _natural_width(table, console) <= width:
        return [_unclipped(table)]
    groups: list[list[int]] = []
    current: list[int] = []
    for i in range(1, len(table.columns)):
        trial = [*current, i]
        if current and _natural_width(_subtable(table, [0, *trial]), console) > width:
            groups.append(current)
            trial = [i]
        current = trial
    groups.append(current)
    parts = [_unclipped(_subtable(table, [0, *g])) for g in groups]
    for k, part in enumerate(parts):
        if k:
            part.title = CONTINUED
        if k < len(parts) - 1:
            part.caption = None
    return parts


def _natural_width(table: Table, console: Console) -> int:
    options = console.options.update_width(1 << 16)
    return Measurement.get(console, options, table).maximum


def _subtable(table: Table, columns: list[int]) -> Table:
    sub = Table.__new__(Table)
    sub.__dict__.update(table.__dict__)
    sub.columns = [dataclasses.replace(table.columns[i], _index=j) for j, i in enumerate(columns)]
    return sub


def _unclipped(table: Table) -> Table:
    """Cells wrap instead of ending in "…" if the page is narrower than one column."""
    for column in table.columns:
        if column.overflow == "ellipsis":
            column.overflow = "fold"
        column.no_wrap = False
    return table
