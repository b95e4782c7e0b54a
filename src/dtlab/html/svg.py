"""Small inline SVG charts for the report: no library, no fonts to fetch, prints as vectors.

Inside an HTML page an ``<svg>`` element needs no namespace attribute: the parser gives it one.
Figures placed on a chart are float64 approximations; the charts say what they show.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

W = 760  # drawing width in user units; the page scales it to the column
TONES = ("safe", "lossy", "overflow", "nan", "other")


def _n(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, s: str, cls: str = "lbl", anchor: str = "start") -> str:
    return f'<text x="{_n(x)}" y="{_n(y)}" class="{cls}" text-anchor="{anchor}">{escape(s)}</text>'


def _rect(x: float, y: float, w: float, h: float, cls: str, tip: str = "") -> str:
    title = f"<title>{escape(tip)}</title>" if tip else ""
    box = f'x="{_n(x)}" y="{_n(y)}" width="{_n(max(w, 0))}" height="{_n(h)}"'
    return f'<rect {box} class="{cls}">{title}</rect>'


def _line(x1: float, x2: float, y1: float, y2: float, cls: str) -> str:
    return f'<line x1="{_n(x1)}" x2="{_n(x2)}" y1="{_n(y1)}" y2="{_n(y2)}" class="{cls}"/>'


def _svg(height: float, parts: list[str], label: str) -> str:
    return (
        f'<svg viewBox="0 0 {W} {_n(height)}" class="chart" role="img" '
        f'aria-label="{escape(label)}">' + "".join(parts) + "</svg>"
    )


def stacked_bars(rows: Sequence[tuple[str, Sequence[tuple[str, int]]]], label: str) -> str:
    """One horizontal bar per row, split into (tone, count) segments, counts written on them."""
    left, bar, gap = 170, 20, 8
    total = max((sum(c for _, c in segs) for _, segs in rows), default=0) or 1
    parts: list[str] = []
    for i, (name, segs) in enumerate(rows):
        y = 10 + i * (bar + gap)
        parts.append(_text(left - 8, y + 14, name, anchor="end"))
        x = float(left)
        for tone, count in segs:
            w = (W - left - 20) * count / total
            parts.append(_rect(x, y, w, bar, f"seg {tone}", f"{name}: {count:,} {tone}"))
            if count and w > 28:
                parts.append(_text(x + w / 2, y + 14, f"{count:,}", "val", "middle"))
            x += w
    legend_y = 10 + len(rows) * (bar + gap) + 4
    for j, tone in enumerate(t for t in TONES if any(s == t for _, segs in rows for s, _ in segs)):
        parts.append(_rect(left + j * 110, legend_y, 12, 12, f"seg {tone}"))
        parts.append(_text(left + j * 110 + 16, legend_y + 10, tone))
    return _svg(legend_y + 20, parts, label)


def histograms(
    series: Sequence[tuple[str, Sequence[float]]],
    label: str,
    unit: str,
    marker: float | None = None,
    bins: int = 24,
) -> str:
    """Small multiples: one histogram per series over a shared range of finite values; a
    dashed line at ``marker`` (a threshold). Non-finite values are counted in the caption."""
    finite = [v for _, vs in series for v in vs if math.isfinite(v)]
    if not finite:
        return _svg(30, [_text(10, 20, "no finite values to draw")], label)
    lo, hi = min(finite), max(finite)
    if marker is not None and math.isfinite(marker):
        lo, hi = min(lo, marker), max(hi, marker)
    hi = hi if hi > lo else lo + 1
    left, height, gap = 170, 46, 14
    span = W - left - 20
    parts: list[str] = []
    for i, (name, values) in enumerate(series):
        y0 = 8 + i * (height + gap)
        counts = [0] * bins
        for v in values:
            if math.isfinite(v):
                counts[min(int((v - lo) / (hi - lo) * bins), bins - 1)] += 1
        peak = max(counts) or 1
        others = sum(1 for v in values if not math.isfinite(v))
        note = f"{name}" + (f" (+{others} not finite)" if others else "")
        parts.append(_text(left - 8, y0 + height / 2 + 4, note, anchor="end"))
        for b, c in enumerate(counts):
            h = height * c / peak
            x = left + span * b / bins
            a, z = lo + (hi - lo) * b / bins, lo + (hi - lo) * (b + 1) / bins
            tip = f"{name}: {c:,} in [{a:.3g}, {z:.3g}) {unit}"
            parts.append(_rect(x + 0.5, y0 + height - h, span / bins - 1, h, "bar", tip))
        parts.append(_line(left, W - 20, y0 + height, y0 + height, "axis"))
    bottom = 8 + len(series) * (height + gap)
    if marker is not None and math.isfinite(marker):
        x = left + span * (marker - lo) / (hi - lo)
        parts.append(
            f'<line x1="{_n(x)}" x2="{_n(x)}" y1="4" y2="{_n(bottom - gap)}" class="marker"/>'
        )
        parts.append(_text(x + 3, bottom + 2, f"threshold {marker:g} {unit}", "val-dark"))
    parts.append(_text(left, bottom + 2, f"{lo:.3g} {unit}", "tick"))
    parts.append(_text(W - 20, bottom + 2, f"{hi:.3g} {unit}", "tick", "end"))
    return _svg(bottom + 10, parts, label)


def binade_histogram(
    counts: Sequence[tuple[int, int]], ranges: Sequence[tuple[str, int, int, int]], label: str
) -> str:
    """Values per binade (log2 |x|) as bars, and under them each format's range: subnormal
    binades from emin_sub, normal ones from emin to emax."""
    if not counts:
        return _svg(30, [_text(10, 20, "no non-zero finite values")], label)
    lo = min([b for b, _ in counts] + [r[1] for r in ranges if r[1] > -200]) - 1
    hi = max([b for b, _ in counts] + [min(r[3], 200) for r in ranges]) + 1
    lo, hi = max(lo, min(b for b, _ in counts) - 12), min(hi, max(b for b, _ in counts) + 12)
    left, top, height = 170, 8, 80
    span = W - left - 20
    col = span / (hi - lo + 1)
    peak = max(c for _, c in counts) or 1
    parts = [_text(left - 8, top + height / 2, "values per binade", anchor="end")]
    for b, c in counts:
        if lo <= b <= hi:
            h = height * c / peak
            parts.append(
                _rect(
                    left + (b - lo) * col,
                    top + height - h,
                    col - 1,
                    h,
                    "bar",
                    f"2^{b}: {c:,} values",
                )
            )
    y = top + height + 8
    for name, emin_sub, emin, emax in ranges:
        parts.append(_text(left - 8, y + 11, name, anchor="end"))
        a, s, e = max(emin_sub, lo), max(emin, lo), min(emax, hi)
        parts.append(
            _rect(
                left + (a - lo) * col,
                y + 2,
                (s - a) * col,
                10,
                "seg lossy",
                f"{name}: subnormal binades",
            )
        )
        parts.append(
            _rect(
                left + (s - lo) * col,
                y + 2,
                (e - s + 1) * col,
                10,
                "seg safe",
                f"{name}: normal binades",
            )
        )
        y += 16
    for b in range(lo, hi + 1, max(1, (hi - lo) // 10)):
        parts.append(_text(left + (b - lo + 0.5) * col, y + 12, f"2^{b}", "tick", "middle"))
    return _svg(y + 18, parts, label)


def scatter(points: Sequence[tuple[float, float, str]], label: str, xname: str, yname: str) -> str:
    """Labelled points on linear axes (x: bits per value, y: SQNR in dB, say)."""
    good = [(x, y, n) for x, y, n in points if math.isfinite(x) and math.isfinite(y)]
    if not good:
        return _svg(30, [_text(10, 20, "no finite points to draw")], label)
    x0, x1 = min(p[0] for p in good), max(p[0] for p in good)
    y0, y1 = min(p[1] for p in good), max(p[1] for p in good)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    dx, dy = (x1 - x0) * 0.06, (y1 - y0) * 0.08  # room for the points at the ends
    x0, x1, y0, y1 = x0 - dx, x1 + dx, y0 - dy, y1 + dy
    left, top, w, h = 60, 10, W - 200, 220
    parts = [
        _line(left, left + w, top + h, top + h, "axis"),
        _line(left, left, top, top + h, "axis"),
        _text(left + w / 2, top + h + 30, xname, "tick", "middle"),
        _text(left - 8, top + 8, f"{y1:.3g}", "tick", "end"),
        _text(left - 8, top + h, f"{y0:.3g}", "tick", "end"),
        _text(left, top + h + 14, f"{x0:.3g}", "tick", "middle"),
        _text(left + w, top + h + 14, f"{x1:.3g}", "tick", "middle"),
        _text(left - 8, top + h / 2, yname, "tick", "end"),
    ]
    placed: list[tuple[float, float]] = []
    for x, y, name in sorted(good, key=lambda p: -p[1]):
        px, py = left + w * (x - x0) / (x1 - x0), top + h - h * (y - y0) / (y1 - y0)
        parts.append(
            f'<circle cx="{_n(px)}" cy="{_n(py)}" r="4" class="dot">'
            f"<title>{escape(name)}</title></circle>"
        )
        ly = py + 4
        while any(abs(ly - qy) < 12 and abs(px - qx) < 90 for qx, qy in placed):
            ly += 12  # labels of close points stack instead of overprinting
        placed.append((px, ly))
        parts.append(_text(px + 7, ly, name, "val-dark"))
    return _svg(top + h + 40, parts, label)


def value_bars(points: Sequence[tuple[str, float]], label: str, unit: str) -> str:
    """One horizontal bar per (name, value) from zero, the value written beside it; values
    that are not finite or not positive get no bar and say so."""
    left, bar, gap = 170, 18, 6
    top = max((v for _, v in points if math.isfinite(v) and v > 0), default=1.0)
    parts: list[str] = []
    for i, (name, v) in enumerate(points):
        y = 8 + i * (bar + gap)
        parts.append(_text(left - 8, y + 13, name, anchor="end"))
        drawable = math.isfinite(v) and v > 0
        w = (W - left - 90) * v / top if drawable else 0.0
        parts.append(_rect(left, y, w, bar, "seg safe", f"{name}: {v:.6g} {unit}"))
        parts.append(
            _text(
                left + w + 6, y + 13, f"≈{v:.4g} {unit}" if drawable else f"{v} {unit}", "val-dark"
            )
        )
    return _svg(12 + len(points) * (bar + gap), parts, label)
