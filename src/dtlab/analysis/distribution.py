"""Does this tensor fit these formats? Its binade histogram, and every format's metrics."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from dtlab.analysis.elementwise import format_metrics
from dtlab.analysis.metrics import CHUNK, ErrorMetrics
from dtlab.formats import Format, IntFormat
from dtlab.kernels import Subnormals
from dtlab.modes import Overflow, Rounding


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

    max: float
    emax: int
    emin: int
    emin_sub: int


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
        return tuple(sorted(self.results, key=lambda r: -_rank(r.metrics.sqnr_db)))


def _rank(v: float) -> float:
    return -math.inf if math.isnan(v) else v


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
    al.) and absmax, in float64. Memory stays a few chunks, whatever the size of x."""

    def __init__(self, x: torch.Tensor, *, moments: bool) -> None:
        flat = x.detach().reshape(-1)
        totals: dict[int, int] = {}
        zeros = nan = inf = 0
        self.count, self.mean, self.m2, self.absmax = 0, 0.0, 0.0, math.nan
        for start in range(0, max(flat.numel(), 1), CHUNK):
            part = flat[start : start + CHUNK]
            if not part.dtype.is_floating_point or part.dtype == torch.bfloat16:
                part = part.float()
            nan += int(part.isnan().sum())
            inf += int(part.isinf().sum())
            chunk_zeros = int((part == 0).sum())
            zeros += chunk_zeros
            keep = part[part.isfinite() & (part != 0)]
            if moments:
                self._add(keep.double(), chunk_zeros)
            if not keep.numel():
                continue
            _, exp = torch.frexp(keep)
            e = exp.to(torch.int64) - 1
            lo = int(e.min())
            counts = torch.bincount(e - lo)
            for i in counts.nonzero().reshape(-1).tolist():
                totals[lo + i] = totals.get(lo + i, 0) + int(counts[i])
        self.histogram = BinadeHistogram(tuple(sorted(totals.items())), zeros, nan, inf)

    def _add(self, nonzero: torch.Tensor, zeros: int) -> None:
        k = nonzero.numel() + zeros
        if not k:
            return
        mean = float(nonzero.sum()) / k
        m2 = float(((nonzero - mean) ** 2).sum()) + zeros * mean * mean
        peak = float(nonzero.abs().max()) if nonzero.numel() else 0.0
        total = self.count + k
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.count * k / total
        self.mean += delta * k / total
        self.count = total
        self.absmax = peak if math.isnan(self.absmax) else max(self.absmax, peak)


def format_range(fmt: Format) -> FormatRange:
    if isinstance(fmt, IntFormat):
        top = max(fmt.max, -fmt.min)
        return FormatRange(float(top), top.bit_length() - 1, 0, 0)
    sub = fmt.smallest_subnormal
    return FormatRange(
        float(fmt.max), fmt.emax, math.floor(math.log2(fmt.smallest_normal)),
        sub.numerator.bit_length() - sub.denominator.bit_length(),
    )  # fmt: skip


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
