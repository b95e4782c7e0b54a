"""One function per kind of dtlab result: the result's JSON data -> a :class:`Report`.

To report a new kind (``model compare``, ``model activations``, ...): write a function that
takes the ``result`` of its JSON document and returns a Report (a headline, cards, plots,
parameters, columns and rows), and add it to REPORT_KINDS under its schema name. The page,
the table's sorting, filtering and printing need nothing more.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from dtlab.html import svg
from dtlab.html.model import (
    Card,
    Column,
    Plot,
    Report,
    ReportError,
    approx,
    cell,
    field,
    listed,
    number,
    size_text,
)

METRIC_COLUMNS = (
    Column("overflow", "overflow", "num"),
    Column("underflow", "underflow", "num"),
    Column("subnormal", "subnormal", "num"),
    Column("sqnr_db", "SQNR dB", "num"),
    Column("max_abs_error", "max abs error", "num"),
    Column("mean_rel_error", "mean rel error", "num"),
)
_METRIC_KEYS = tuple(c.key for c in METRIC_COLUMNS)


def _metric_cells(metrics: Any) -> tuple[Any, ...]:
    if not isinstance(metrics, dict):
        return (None,) * len(_METRIC_KEYS)
    return tuple(cell(metrics.get(k)) for k in _METRIC_KEYS)


def _tone(s: Any) -> str:
    """A summary's tone: the worst thing it counts."""
    if s.get("nan"):
        return "nan"
    if s.get("overflowing"):
        return "overflow"
    return "lossy" if s.get("lossy") else "safe"


# ---- model scan ---------------------------------------------------------------------------


def scan_report(result: Any) -> Report:
    tensors = listed(result, "tensors")
    summaries = listed(result, "summaries")
    formats = [str(f) for f in listed(result, "formats")]
    threshold = number(field(result, "sqnr_threshold_db"))
    rows: list[tuple[Any, ...]] = []
    sqnr: dict[str, list[float]] = {f: [] for f in formats}
    for t in tensors:
        base = tuple(cell(field(t, k)) for k in ("name", "dtype", "shape", "numel"))
        verdicts = field(t, "verdicts") or []
        if not verdicts:
            rows.append((*base, "—", "not scanned", *(None,) * len(_METRIC_KEYS), "integer tensor"))
        for v in verdicts:
            m = field(v, "metrics")
            fmt = str(field(v, "format"))
            sqnr.setdefault(fmt, []).append(
                number(m.get("sqnr_db") if isinstance(m, dict) else None)
            )
            rows.append(
                (*base, fmt, cell(field(v, "status")), *_metric_cells(m), cell(v.get("message")))
            )
    cards = tuple(_scan_card(s) for s in summaries)
    n_bad = sum(1 for s in summaries if s.get("overflowing") or s.get("nan"))
    headline = (
        f"{len(tensors):,} tensors, {approx(result.get('params'))} parameters, scanned into "
        f"{', '.join(formats)}: "
        + (f"{n_bad} format(s) overflow or meet NaN" if n_bad else "no format overflows")
    )
    plots = (
        Plot(
            "Verdicts per format (tensors)",
            svg.stacked_bars(
                [
                    (str(s.get("format")), [(t, int(s.get(k) or 0)) for t, k in _segments(s)])
                    for s in summaries
                ],
                "verdicts per format",
            ),
        ),
        Plot(
            f"SQNR of each tensor, per format (dashed: the {threshold:g} dB threshold of 'lossy')",
            svg.histograms(list(sqnr.items()), "SQNR per tensor", "dB", threshold),
        ),
    )
    params = (
        ("checkpoint", str(result.get("source"))),
        ("size", size_text(result.get("stored_bytes"))),
        ("parameters", approx(result.get("params"))),
        ("formats", ", ".join(formats)),
        ("lossy below", f"{threshold:g} dB SQNR"),
        ("workers", approx(result.get("workers"))),
        ("chunk", size_text(result.get("chunk_bytes"))),
        ("scan time", f"{approx(result.get('seconds'), 3)} s"),
    )
    columns = (
        Column("tensor", "tensor"),
        Column("dtype", "dtype", facet=True),
        Column("shape", "shape"),
        Column("numel", "numel", "num"),
        Column("format", "format", facet=True),
        Column("status", "verdict", "verdict", facet=True),
        *METRIC_COLUMNS,
        Column("message", "message"),
    )
    return Report(
        "dtlab model scan",
        "dtlab.scan/1",
        headline,
        cards,
        plots,
        params,
        columns,
        tuple(rows),
    )


def _segments(s: Any) -> list[tuple[str, str]]:
    return [("safe", "safe"), ("lossy", "lossy"), ("overflow", "overflowing"), ("nan", "nan")]


def _scan_card(s: Any) -> Card:
    worst = [str(w) for w in (s.get("worst") or [])][:5]
    lines = (
        ("tensors", approx(s.get("tensors"))),
        ("safe", approx(s.get("safe"))),
        ("lossy", approx(s.get("lossy"))),
        (
            "overflowing",
            f"{approx(s.get('overflowing'))} ({approx(s.get('overflow_values'))} values)",
        ),
        ("with NaN", approx(s.get("nan"))),
        ("worst SQNR", f"{approx(s.get('worst_sqnr_db'))} dB"),
        ("SQNR overall", f"{approx(s.get('mean_sqnr_db'))} dB"),
    )
    return Card(str(s.get("format")), _tone(s), lines, tuple(worst))


# ---- cast ------------------------------------------------------------------------------------


def _input_params(inp: Any) -> tuple[tuple[str, str], ...]:
    return (
        ("values", approx(inp.get("n"))),
        ("dtype", str(inp.get("dtype"))),
        ("absmax", approx(inp.get("absmax"), 8)),
        ("mean", approx(inp.get("mean"))),
        ("std", approx(inp.get("std"))),
    )


def _histogram(inp: Any) -> list[tuple[int, int]]:
    counts = field(inp, "histogram", "counts")
    return [(int(b), int(c)) for b, c in counts]


def _flag(m: Any) -> str:
    """What a cast or a quantizer did to the range (these results carry no SQNR threshold,
    so "ok" says only: nothing overflowed, nothing became inf or NaN)."""
    if not isinstance(m, dict):
        return "other"
    if m.get("nonfinite_output"):
        return "nan"
    return "overflow" if m.get("overflow") else "ok"


def cast_report(result: Any) -> Report:
    analysis = field(result, "analysis")
    inp = field(analysis, "input")
    results = listed(analysis, "results")
    rows, cards, ranges, points = [], [], [], []
    for r in results:
        fmt, m, rng = str(field(r, "format")), field(r, "metrics"), field(r, "range")
        rows.append((fmt, _flag(m), *_metric_cells(m), cell(m.get("cosine")), cell(rng.get("max"))))
        ranges.append(
            (fmt, int(rng.get("emin_sub", 0)), int(rng.get("emin", 0)), int(rng.get("emax", 0)))
        )
        points.append((fmt, number(m.get("sqnr_db"))))
        cards.append(
            Card(
                fmt,
                _flag(m),
                (
                    ("SQNR", f"{approx(m.get('sqnr_db'))} dB"),
                    ("overflow", approx(m.get("overflow"))),
                    ("underflow", approx(m.get("underflow"))),
                    ("subnormal", approx(m.get("subnormal"))),
                    ("max abs error", approx(m.get("max_abs_error"))),
                ),
            )
        )
    best = max(points, key=lambda p: p[1] if math.isfinite(p[1]) else math.inf, default=None)
    headline = (
        f"{approx(inp.get('n'))} values of {result.get('source')} rounded into "
        + ", ".join(p[0] for p in points)
        + (f"; best SQNR: {best[0]}" if best else "")
    )
    plots = (
        Plot(
            "Where the values lie (binades of |x|) against each format's subnormal and normal "
            "range",
            svg.binade_histogram(_histogram(inp), ranges, "binades"),
        ),
        Plot("SQNR per format (dB)", _sqnr_bars(points)),
    )
    params = (
        ("source", str(result.get("source"))),
        ("shape", str(cell(result.get("shape")))),
        *_input_params(inp),
        ("rounding", str(analysis.get("rounding"))),
        ("overflow", str(analysis.get("overflow") or "default (inf-nan for floats)")),
        ("subnormals", str(analysis.get("subnormals"))),
        ("output", str(result.get("output") or "—")),
    )
    columns = (
        Column("format", "format", facet=True),
        Column("flag", "result", "verdict", facet=True),
        *METRIC_COLUMNS,
        Column("cosine", "cosine", "num"),
        Column("max", "format max", "num"),
    )
    return Report(
        "dtlab cast", "dtlab.cast/1", headline, tuple(cards), plots, params, columns, tuple(rows)
    )


def _sqnr_bars(points: list[tuple[str, float]]) -> str:
    return svg.value_bars(points, "SQNR per format", "dB")


# ---- quantize --------------------------------------------------------------------------------


def quantize_report(result: Any) -> Report:
    inp = field(result, "input")
    rows, cards, points = [], [], []
    for r in listed(result, "rows"):
        spec, m = str(field(r, "spec")), field(r, "metrics")
        bits = _frac(r.get("effective_bits"))
        rows.append(
            (
                spec,
                cell(r.get("kind")),
                cell(r.get("detail")),
                cell(r.get("effective_bits")),
                _flag(m),
                *_metric_cells(m),
            )
        )
        points.append((bits, number(m.get("sqnr_db")), spec))
        cards.append(
            Card(
                spec,
                _flag(m),
                (
                    ("bits per value", str(r.get("effective_bits"))),
                    ("SQNR", f"{approx(m.get('sqnr_db'))} dB"),
                    ("max abs error", approx(m.get("max_abs_error"))),
                ),
            )
        )
    headline = (
        f"{approx(inp.get('n'))} values quantized {len(rows)} ways: error against bits per "
        "value (scales included)"
    )
    plots = (
        Plot(
            "SQNR against bits per value",
            svg.scatter(points, "SQNR vs bits", "bits per value", "SQNR dB"),
        ),
        Plot(
            "Where the values lie (binades of |x|)",
            svg.binade_histogram(_histogram(inp), [], "binades"),
        ),
    )
    params = (
        *_input_params(inp),
        ("channel axis", str(result.get("channel_axis"))),
        ("group axis", str(result.get("group_axis"))),
    )
    columns = (
        Column("spec", "quantizer"),
        Column("kind", "kind", facet=True),
        Column("detail", "detail"),
        Column("bits", "bits per value", "num"),
        Column("flag", "result", "verdict", facet=True),
        *METRIC_COLUMNS,
    )
    return Report(
        "dtlab quantize",
        "dtlab.quantize/1",
        headline,
        tuple(cards),
        plots,
        params,
        columns,
        tuple(rows),
    )


def _frac(x: Any) -> float:
    """An exact figure (a Fraction string such as "4.25" or "33/8") as a float to draw."""
    if isinstance(x, str):
        try:
            return float(Fraction(x))
        except (ValueError, ZeroDivisionError):
            return math.nan
    return number(x)


REPORT_KINDS: dict[str, Callable[[Any], Report]] = {
    "dtlab.scan/1": scan_report,
    "dtlab.cast/1": cast_report,
    "dtlab.quantize/1": quantize_report,
}


def build_report(schema: str, result: Any) -> Report:
    """The Report of one result, or a ReportError naming the kinds there are."""
    make = REPORT_KINDS.get(schema)
    if make is None:
        kinds = ", ".join(sorted(REPORT_KINDS))
        raise ReportError(f"no report for results of schema {schema!r}; reports exist for {kinds}")
    try:
        return make(result)
    except ReportError as exc:
        raise ReportError(f"malformed {schema} result: {exc}") from None
    except (AttributeError, TypeError, ValueError) as exc:  # a field of the wrong type
        raise ReportError(f"malformed {schema} result: {type(exc).__name__}: {exc}") from None
