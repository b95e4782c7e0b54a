"""Scan reports -> rich tables, CSV and Markdown."""

from __future__ import annotations

import csv
import io
import math

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from dtlab.checkpoint.scan import ScanReport, Status
from dtlab.numtext import counted
from dtlab.render.prequant import layout_line
from dtlab.render.text import markdown_cell, printable


def scan_view(r: ScanReport, show_all: bool, label: str | None = None) -> RenderableType:
    rate = r.params / r.seconds if r.seconds else math.inf
    head = Text(
        f"{printable(label or r.source)}: {counted(len(r.tensors), 'tensor')}, "
        f"{counted(r.params, 'value')}, {r.stored_bytes:,} bytes scanned in "
        f"{r.seconds:.2f} s ({rate / 1e6:,.1f} M params/s, "
        f"{counted(r.workers, 'worker')})"
    )
    summary = Table(
        title=f"per format (lossy: SQNR below {r.sqnr_threshold_db:g} dB)", title_justify="left"
    )
    summary.add_column("format", no_wrap=True)
    for col in ("safe", "overflowing", "values over", "lossy", "NaN/inf", "worst SQNR", "all SQNR"):
        summary.add_column(col, justify="right", no_wrap=True)
    for s in r.summaries:
        summary.add_row(
            s.format.name,
            f"{s.safe}/{s.tensors}",
            str(s.overflowing),
            f"{s.overflow_values:,}",
            str(s.lossy),
            str(s.nan),
            _db(s.worst_sqnr_db),
            _db(s.mean_sqnr_db),
        )
    worst = Text(
        "\n".join(
            f"worst in {s.format.name}: " + ", ".join(map(printable, s.worst[:3]))
            for s in r.summaries
            if s.worst
        )
    )
    rows = Table(
        title="tensors" + ("" if show_all else " that are not safe in every format"),
        title_justify="left",
    )
    rows.add_column("tensor", overflow="fold")
    rows.add_column("stored", no_wrap=True)
    rows.add_column("|x| max", justify="right", no_wrap=True)
    rows.add_column("verdicts")
    shown = 0
    for t in r.tensors:
        if not t.verdicts:
            continue
        if not show_all and all(v.status is Status.SAFE for v in t.verdicts):
            continue
        shown += 1
        verdicts = "; ".join(
            f"{v.format.name}: {v.message}"
            for v in t.verdicts
            if show_all or v.status is not Status.SAFE
        )
        rows.add_row(printable(t.name), t.stored_as or t.dtype, f"{t.absmax:.4g}", verdicts)
    line = layout_line(r.layout, "dequantized and scanned")
    parts: list[RenderableType] = [head, *([line] if line else []), summary, worst]
    scanned = any(t.verdicts for t in r.tensors)
    nothing = "no floating-point tensor to scan"
    parts.append(
        rows if shown else Text("every tensor is safe in every format" if scanned else nothing)
    )
    return Group(*parts)


def _db(v: float) -> str:
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    return "—" if math.isnan(v) else f"≈{v:.1f} dB"


def scan_csv(r: ScanReport) -> str:
    """One row per (tensor, format): the stable columns of dtlab.scan CSV."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(
        [
            "tensor",
            "dtype",
            "shape",
            "numel",
            "absmax",
            "nan",
            "inf",
            "format",
            "status",
            "overflow",
            "underflow",
            "subnormal",
            "sqnr_db",
            "max_abs_error",
            "mean_rel_error",
            "message",
        ]
    )
    for t in r.tensors:
        shape = "x".join(str(s) for s in t.shape)
        for v in t.verdicts:
            m = v.metrics
            w.writerow(
                [
                    t.name,
                    t.dtype,
                    shape,
                    t.numel,
                    repr(t.absmax),
                    t.nan,
                    t.inf,
                    v.format.name,
                    v.status.value,
                    m.overflow,
                    m.underflow,
                    m.subnormal,
                    repr(m.sqnr_db),
                    repr(m.max_abs_error),
                    repr(m.mean_rel_error),
                    v.message,
                ]
            )
    return out.getvalue()


def scan_markdown(r: ScanReport) -> str:
    lines = [
        f"# dtlab scan of {markdown_cell(r.source)}",
        "",
        f"{counted(len(r.tensors), 'tensor')}, {counted(r.params, 'value')}; "
        f"lossy means SQNR below {r.sqnr_threshold_db:g} dB.",
        "",
        "| format | safe | overflowing tensors | values over | lossy | NaN/inf "
        "| worst SQNR (dB) | worst tensor |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in r.summaries:
        worst = markdown_cell(s.worst[0]) if s.worst else "—"
        lines.append(
            f"| {s.format.name} | {s.safe}/{s.tensors} | {s.overflowing} | "
            f"{s.overflow_values:,} | {s.lossy} | {s.nan} | {s.worst_sqnr_db:.1f} | {worst} |"
        )
    bad = [(t, v) for t in r.tensors for v in t.verdicts if v.status is not Status.SAFE]
    if bad:
        lines += ["", "| tensor | format | verdict |", "|---|---|---|"]
        lines += [
            f"| {markdown_cell(t.name)} | {v.format.name} | {markdown_cell(v.message)} |"
            for t, v in bad
        ]
    return "\n".join(lines) + "\n"
