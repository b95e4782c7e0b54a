"""Activation scans (``dtlab model activations``) -> rich tables, CSV and Markdown.

Headroom is log2(format max / largest |output|) in binades, to 2 decimals; shares are of the
non-zero finite values, in percent to 3 significant digits.
"""

from __future__ import annotations

import csv
import io
import math

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from dtlab.models.activations import ActivationReport, FormatFit, ModuleActivations
from dtlab.numtext import counted
from dtlab.render.text import markdown_cell, printable

__all__ = [
    "activations_csv",
    "activations_markdown",
    "activations_view",
    "compact_rows",
    "module_rows",
    "target_rows",
]

SHOWN = 15


def _head(x: float) -> str:
    return "nan" if math.isnan(x) else ("inf" if math.isinf(x) else f"{x:+.2f}")


def _pct(x: float) -> str:
    return f"{100 * x:.3g} %"


def _name(name: str) -> str:
    return printable(name) if name else "(model)"


def target_rows(r: ActivationReport) -> tuple[tuple[str, ...], list[list[str]]]:
    head = ("format", "max", "first to overflow", "overflowing", "least headroom")
    rows = []
    for t in r.targets:
        least = ", ".join(f"{_name(n)} ({_head(h)})" for n, h in t.least_headroom[:1])
        first = _name(t.first_overflow) if t.first_overflow is not None else "none"
        rows.append([t.format, f"{t.max:g}", first, str(t.overflowing_modules), least])
    return head, rows


def _fit_cell(f: FormatFit) -> str:
    """Headroom, and the events when there are any: '-5.16 over 933', '+7.12 subn 0.68 %'."""
    parts = [_head(f.headroom_binades)]
    if f.overflow:
        parts.append(f"over {f.overflow}")
    if f.subnormal_share:
        parts.append(f"subn {_pct(f.subnormal_share)}")
    if f.underflow_share:
        parts.append(f"ftz {_pct(f.underflow_share)}")
    return " ".join(parts)


def compact_rows(
    r: ActivationReport, limit: int | None = SHOWN
) -> tuple[tuple[str, ...], list[list[str]]]:
    """The terminal's module table: one cell per format (headroom and events)."""
    head = ("#", "module", "|x| max", "min binade", "NaN/inf", *(t.format for t in r.targets))
    rows = [
        [
            str(m.order),
            _name(m.name),
            f"{m.absmax:.4g}",
            "" if m.smallest_binade is None else f"2^{m.smallest_binade}",
            f"{m.nan}/{m.inf}",
            *(_fit_cell(f) for f in m.fits),
        ]
        for m in _ranked(r)[:limit]
    ]
    return head, rows


def _ranked(r: ActivationReport) -> list[ModuleActivations]:
    mods = list(r.modules)
    if r.targets:
        mods.sort(key=lambda m: (m.fits[0].headroom_binades, m.order))
    return mods


def module_rows(
    r: ActivationReport, limit: int | None = SHOWN
) -> tuple[tuple[str, ...], list[list[str]]]:
    """Modules ranked by headroom against the first target (all targets' columns)."""
    fmts = [t.format for t in r.targets]
    head: tuple[str, ...] = ("#", "module", "type", "|x| max", "min binade", "NaN/inf")
    for f in fmts:
        head += (f"{f} headroom", f"{f} over", f"{f} subn", f"{f} ftz")
    rows = [_module_cells(m) for m in _ranked(r)[:limit]]
    return head, rows


def _module_cells(m: ModuleActivations) -> list[str]:
    cells = [
        str(m.order),
        _name(m.name),
        m.module_type,
        f"{m.absmax:.4g}",
        "" if m.smallest_binade is None else f"2^{m.smallest_binade}",
        f"{m.nan}/{m.inf}",
    ]
    for f in m.fits:
        cells += [
            _head(f.headroom_binades),
            str(f.overflow),
            _pct(f.subnormal_share),
            _pct(f.underflow_share),
        ]
    return cells


def _native_lines(r: ActivationReport) -> list[str]:
    n = r.native
    if n is None:
        return []
    if n.first_nonfinite is None:
        return [f"run in {n.dtype}: no module's output held inf or NaN"]
    lines = [
        f"run in {n.dtype}: first inf/NaN in {_name(n.first_nonfinite)} "
        f"({n.nan} NaN, {n.inf} inf); the modules before it, |x| max:"
    ]
    lines += [f"  {_name(name)}: {peak:.6g}" for name, peak in n.before]
    return lines


def _header(r: ActivationReport) -> str:
    unit = "passage" if r.sequences and r.kind.value == "encoder" else "sequence"
    return (
        f"{printable(r.model)} ({r.kind.value}): {counted(len(r.modules), 'module')} hooked, "
        f"one fp32 pass over {counted(r.sequences, unit)} of up to {r.seq_len} tokens "
        f"({printable(r.text_source)})"
    )


def _table(title: str, head: tuple[str, ...], rows: list[list[str]]) -> Table:
    t = Table(title=title, title_justify="left")
    for h in head:
        left = h in ("format", "module", "first to overflow", "least headroom")
        t.add_column(
            h,
            justify="left" if left else "right",
            overflow="fold",
            ratio=3 if h == "module" else None,
        )
    for row in rows:
        t.add_row(*row)
    return t


def activations_view(r: ActivationReport, show_all: bool = False) -> RenderableType:
    head, rows = compact_rows(r, None if show_all else SHOWN)
    parts: list[RenderableType] = [
        Text(_header(r)),
        _table("per format (headroom: binades below the format's max)", *target_rows(r)),
        _table(
            f"modules by headroom in {r.targets[0].format if r.targets else '-'}"
            + ("" if show_all else f" (the {SHOWN} with least; --all lists every one)"),
            head,
            rows,
        ),
    ]
    native = _native_lines(r)
    if native:
        parts.append(Text("\n".join(native)))
    parts.append(
        Text(
            "over: values past the format's overflow threshold; subn / ftz: shares of non-zero "
            "values that land among subnormals / flush to zero; min binade: floor(log2) of the "
            "smallest non-zero |x|"
        )
    )
    return Group(*parts)


def activations_csv(r: ActivationReport) -> str:
    head, rows = module_rows(r, None)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(head)
    w.writerows(rows)
    return out.getvalue()


def activations_markdown(r: ActivationReport) -> str:
    def table(head: tuple[str, ...], rows: list[list[str]]) -> list[str]:
        lines = ["| " + " | ".join(markdown_cell(h) for h in head) + " |", "|" + "---|" * len(head)]
        return lines + ["| " + " | ".join(markdown_cell(c) for c in row) + " |" for row in rows]

    lines = [
        f"# dtlab model activations: {markdown_cell(r.model)}",
        "",
        markdown_cell(_header(r)),
        "",
    ]
    lines += [
        *table(*target_rows(r)),
        "",
        "## Modules by headroom",
        "",
        *table(*module_rows(r, None)),
        "",
    ]
    native = _native_lines(r)
    if native:
        lines += ["## Native run", "", *(f"    {line}" for line in native), ""]
    return "\n".join(lines)
