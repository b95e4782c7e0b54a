"""How a tensor fits formats (the analysis behind dtlab cast): its binade histogram against
each format's range, and every format's error metrics, best first."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from dtlab.analysis.elementwise import format_metrics
from dtlab.analysis.metrics import CHUNK, ErrorMetrics, by_sqnr
from dtlab.formats import Format, IntFormat
from dtlab.modes import Overflow, Rounding, Subnormals


@dataclass(frozen=True)
class BinadeHistogram:
    """How many finite non-zero values have floor(log2|x|) == e, for each e present."""

    counts: tuple[tuple[int, int], ...]  # (e, count), e ascending
    zeros: int
    nan: int
    inf: int

    @property
    def total_nonzero(self) -> int:
        return sum(c for _, c in self.counts)


@dataclass(frozen=True)
class InputSummary:
    n: int
    dtype: str
    absmax: float  # over finite values (nan when there are none)
    mean: float
    std: float
    histogram: BinadeHistogram


@dataclass(frozen=True)
class FormatRange:
    """The binades a format covers: normals in [2^emin, max], subnormals down to 2^emin_sub."""

    max: float  # the largest finite value
    emax: int
    emin: int
    emin_sub: int
    min: float = 0.0  # the lowest finite value: -max, int8's -128, or 0 when unsigned


@dataclass(frozen=True)
class FormatResult:
    format: Format
    range: FormatRange
    metrics: ErrorMetrics


@dataclass(frozen=True)
class Analysis:
    input: InputSummary
    rounding: Rounding
    overflow: Overflow | None
    subnormals: Subnormals
    results: tuple[FormatResult, ...]  # in the order asked

    def ranked(self) -> tuple[FormatResult, ...]:
        """Best SQNR first (NaN SQNR last)."""
        return tuple(sorted(self.results, key=lambda r: by_sqnr(r.metrics.sqnr_db)))


def binade_histogram(x: torch.Tensor) -> BinadeHistogram:
    """floor(log2|x|) of every finite non-zero value, counted exactly.

    >>> import torch
    >>> binade_histogram(torch.tensor([1.0, 1.5, 3.0, 0.0, float("nan")])).counts
    ((0, 2), (1, 1))
    """
    return _Scan(x, moments=False).histogram


class _Scan:
    """One pass over x in chunks of CHUNK values: the binade histogram and, with moments,
    the finite values' count, mean, sum of squared deviations (merged chunk by chunk, Chan et
    al.) and absmax, in float64. Memory stays a few chunks, whatever the size of x.

    Binades come from the exponent field: one bincount per chunk; only the chunk's zeros and
    subnormals (exponent field 0) and NaN and inf (all ones) are looked at again."""

    def __init__(self, x: torch.Tensor, *, moments: bool) -> None:
        flat = x.detach().reshape(-1)
        self.totals: dict[int, int] = {}
        self.zeros = self.nan = self.inf = 0
        self.count, self.mean, self.m2, self.absmax = 0, 0.0, 0.0, math.nan
        for start in range(0, flat.numel(), CHUNK):
            part = flat[start : start + CHUNK]
            if part.dtype not in (torch.float32, torch.float64):
                part = part.float()  # exact for every narrower float and int
            finite = self._binades(part)
            if moments:
                self._add(finite.double())
        self.histogram = BinadeHistogram(
            tuple(sorted(self.totals.items())), self.zeros, self.nan, self.inf
        )

    def _binades(self, part: torch.Tensor) -> torch.Tensor:
        """Count part's binades; return its finite values."""
        f32 = part.dtype == torch.float32
        ints, shift, top, bias = (
            (torch.int32, 23, 0xFF, 127) if f32 else (torch.int64, 52, 0x7FF, 1023)
        )
        field = (part.view(ints) >> shift) & top
        counts = torch.bincount(field.reshape(-1), minlength=top + 1).tolist()
        for f in range(1, top):
            if counts[f]:
                self._count(f - bias, counts[f])
        finite = part
        if counts[top]:  # NaN or inf
            nan = int(part.isnan().sum())
            self.nan += nan
            self.inf += counts[top] - nan
            finite = part[part.isfinite()]
        if counts[0]:  # zeros and subnormals
            low = part[field == 0]
            nonzero = low[low != 0]
            self.zeros += low.numel() - nonzero.numel()
            if nonzero.numel():
                _, exp = torch.frexp(nonzero)
                e = exp.to(torch.int64) - 1
                lo = int(e.min())
                sub = torch.bincount(e - lo)
                for i in sub.nonzero().reshape(-1).tolist():
                    self._count(lo + i, int(sub[i]))
        return finite

    def _count(self, e: int, n: int) -> None:
        self.totals[e] = self.totals.get(e, 0) + n

    def _add(self, finite: torch.Tensor) -> None:
        k = finite.numel()
        if not k:
            return
        var, mean_t = torch.var_mean(finite, correction=0)
        mean, m2 = float(mean_t), float(var) * k
        peak = float(finite.abs().max())
        total = self.count + k
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.count * k / total
        self.mean += delta * k / total
        self.count = total
        self.absmax = peak if math.isnan(self.absmax) else max(self.absmax, peak)


def format_range(fmt: Format) -> FormatRange:
    if isinstance(fmt, IntFormat):
        top = max(fmt.max, -fmt.min)  # the binades reach -128's for int8
        return FormatRange(
            max=float(fmt.max), emax=top.bit_length() - 1, emin=0, emin_sub=0, min=float(fmt.min)
        )
    sub = fmt.smallest_subnormal
    return FormatRange(
        max=float(fmt.max) if fmt.emax <= 1023 else math.inf,  # past float64 (e15m2): inf
        emax=fmt.emax,
        emin=fmt.emin,
        emin_sub=sub.numerator.bit_length() - sub.denominator.bit_length(),
        min=-math.inf if fmt.emax > 1023 else float(fmt.min),
    )


def summarize(x: torch.Tensor) -> InputSummary:
    """Size, dtype, absmax, mean, standard deviation (of the finite values, n - 1 in the
    denominator) and binade histogram of x, in one chunked pass.

    >>> import torch
    >>> s = summarize(torch.tensor([1.0, -3.0, 2.0, float("inf")]))
    >>> s.absmax, s.mean, s.std, s.histogram.inf
    (3.0, 0.0, 2.6457513110645907, 1)
    """
    scan = _Scan(x, moments=True)
    if scan.count:
        std = math.sqrt(scan.m2 / (scan.count - 1)) if scan.count > 1 else 0.0
        absmax, mean = scan.absmax, scan.mean
    else:
        absmax = mean = std = math.nan
    dtype = str(x.dtype).removeprefix("torch.")
    return InputSummary(x.numel(), dtype, absmax, mean, std, scan.histogram)


def analyze(
    x: torch.Tensor,
    fmts: list[Format],
    *,
    rounding: Rounding = Rounding.NEAREST_EVEN,
    overflow: Overflow | None = None,
    subnormals: Subnormals = Subnormals.KEEP,
    generator: torch.Generator | None = None,
) -> Analysis:
    """Metrics of x against each format (one pass per format), and x's binade histogram.

    >>> import torch
    >>> from dtlab.formats import get_format
    >>> a = analyze(torch.randn(1000), [get_format("fp8"), get_format("bf16")])
    >>> [r.format.name for r in a.ranked()]
    ['bfloat16', 'float8_e4m3fn']
    """
    results = tuple(
        FormatResult(
            f,
            format_range(f),
            format_metrics(
                x,
                f,
                rounding=rounding,
                overflow=overflow,
                subnormals=subnormals,
                generator=generator,
            ),
        )
        for f in fmts
    )
    return Analysis(summarize(x), rounding, overflow, subnormals, results)
