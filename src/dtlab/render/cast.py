"""Cast reports and analyses -> rich tables."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from dtlab.analysis.format_fit import Analysis, InputSummary
from dtlab.cast import CastReport
from dtlab.numtext import approx_float as g
from dtlab.render.text import printable


def summary_line(s: InputSummary, source: str, shape: tuple[int, ...]) -> Text:
    dims = "×".join(str(d) for d in shape) or "scalar"
    extra = "".join(
        f", {n:,} {what}"
        for n, what in (
            (s.histogram.nan, "NaN"),
            (s.histogram.inf, "inf"),
            (s.histogram.zeros, "zeros"),
        )
        if n
    )
    return Text(
        f"{printable(source)}: {dims} {s.dtype}, {s.n:,} values{extra}; |x| max {g(s.absmax, 5)}, "
        f"mean {g(s.mean, 4)}, std {g(s.std, 4)}"
    )


def metrics_table(a: Analysis) -> Table:
    table = Table(
        title="errors, best SQNR first (≈: rounded float64 figures)", title_justify="left"
    )
    table.add_column("format", no_wrap=True)
    for col in ("SQNR dB", "cosine", "max |err|", "mean |err|", "RMSE", "max rel", "mean rel"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in a.ranked():
        m = r.metrics
        table.add_row(
            r.format.name,
            g(m.sqnr_db, 4),
            g(m.cosine, 7),
            g(m.max_abs_error, 4),
            g(m.mean_abs_error),
            g(m.rmse),
            g(m.max_rel_error),
            g(m.mean_rel_error),
        )
    return table


def counts_table(a: Analysis) -> Table:
    table = Table(
        title=f"values out of the normal range, of {a.input.n:,} (exact counts)",
        title_justify="left",
    )
    table.add_column("format", no_wrap=True)
    for col in ("overflow", "became inf/NaN", "underflow to 0", "subnormal", "range (binades)"):
        table.add_column(col, justify="right", no_wrap=True)
    n = a.input.n
    for r in a.ranked():
        m, rng = r.metrics, r.range
        span = (
            f"2^{rng.emin_sub} .. 2^{rng.emax}"
            if r.format.kind == "float"
            else f"0 .. 2^{rng.emax}"
        )
        table.add_row(
            r.format.name,
            _share(m.overflow, n),
            _share(m.nonfinite_output, n),
            _share(m.underflow, n),
            _share(m.subnormal, n),
            span,
        )
    return table


def _share(count: int, total: int) -> str:
    return f"{count:,}" if count == 0 or count * 1000 >= total else f"{count:,} (<0.1%)"


def cast_table(r: CastReport) -> RenderableType:
    a = r.analysis
    policy = a.overflow.value if a.overflow else "format default"
    parts: list[RenderableType] = [
        summary_line(a.input, r.source, r.shape),
        Text(f"rounding {a.rounding.value}, overflow {policy}, subnormals {a.subnormals.value}"),
        metrics_table(a),
        counts_table(a),
    ]
    if r.output:
        parts.append(Text(f"wrote {r.output}"))
    return Group(*parts)
