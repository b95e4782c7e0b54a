"""What a report page shows, independent of the result it came from.

A result kind (scan, cast, quantize, ...) becomes a :class:`Report` through one function
registered in ``dtlab.html.kinds.REPORT_KINDS``; the page, its table, sorting, filtering and
printing are the same for every kind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dtlab.errors import DtlabError

Cell = str | int | float | None


class ReportError(DtlabError):
    """A result file the report cannot read: not JSON, not a dtlab result, or malformed."""


@dataclass(frozen=True)
class Column:
    """One column of the table. ``kind``: ``text``, ``num`` (sorted as numbers; "inf" and
    "nan" strings allowed) or ``verdict`` (coloured by value). ``facet``: the page offers a
    filter by its distinct values."""

    key: str
    label: str
    kind: str = "text"
    facet: bool = False


@dataclass(frozen=True)
class Card:
    """One box of the summary: a title, its tone (safe, lossy, overflow, nan, other) and
    (label, value) lines."""

    title: str
    tone: str
    lines: tuple[tuple[str, str], ...]
    items: tuple[str, ...] = ()  # a short list under the lines (the worst tensors)


@dataclass(frozen=True)
class Plot:
    caption: str
    svg: str


@dataclass(frozen=True)
class Report:
    title: str
    schema: str
    headline: str
    cards: tuple[Card, ...]
    plots: tuple[Plot, ...]
    params: tuple[tuple[str, str], ...]
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    notes: tuple[str, ...] = ()


def field(data: Any, *keys: str | int) -> Any:
    """data[k1][k2]..., or a ReportError naming the path that is missing or of a wrong type."""
    here = data
    for k in keys:
        try:
            here = here[k]
        except (KeyError, IndexError, TypeError):
            where = ".".join(str(x) for x in keys)
            raise ReportError(f"no field {where!r} where the result has one") from None
    return here


def listed(data: Any, *keys: str) -> list[Any]:
    value = field(data, *keys)
    if not isinstance(value, list):
        raise ReportError(f"the result's {'.'.join(keys)!r} is not a list")
    return value


def number(x: Any) -> float:
    """A JSON figure as a float: numbers, and the strings "inf", "-inf", "nan" that strict
    JSON uses; anything else is NaN (drawn as missing)."""
    if isinstance(x, bool):
        return math.nan
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, str) and x.strip().lower() in ("inf", "-inf", "nan", "+inf"):
        return float(x.strip().lower())
    return math.nan


def cell(x: Any) -> Cell:
    """A value as a table cell: numbers and strings as they are, other things as text."""
    if x is None or (isinstance(x, (str, int, float)) and not isinstance(x, bool)):
        if isinstance(x, float) and not math.isfinite(x):
            return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
        return x
    if isinstance(x, list):
        return "×".join(str(v) for v in x)
    return str(x)


def approx(x: Any, digits: int = 4) -> str:
    """A float figure for the summary: ≈ and some digits; exact ints and strings unchanged."""
    if isinstance(x, bool) or x is None:
        return "—"
    if isinstance(x, int):
        return f"{x:,}"
    v = number(x)
    if math.isnan(v):
        return "—" if not isinstance(x, str) else x
    if math.isinf(v) or v == 0:
        return str(x)
    return f"≈{v:.{digits}g}"


def size_text(n: Any) -> str:
    """A byte count, exact, with a decimal megabyte figure."""
    if not isinstance(n, int) or isinstance(n, bool):
        return "—"
    return f"{n:,} bytes (≈{n / 1e6:,.1f} MB)"
