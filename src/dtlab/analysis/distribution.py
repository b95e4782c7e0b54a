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
    flat = x.detach().reshape(-1)
    totals: dict[int, int] = {}
    zeros = nan = inf = 0
    for start in range(0, max(flat.numel(), 1), CHUNK):
        part = flat[start : start + CHUNK]
        if not part.dtype.is_floating_point or part.dtype == torch.bfloat16:
            part = part.float()
        nan += int(part.isnan().sum())
        inf += int(part.isinf().sum())
        zeros += int((part == 0).sum())
        keep = part[part.isfinite() & (part != 0)]
        if not keep.numel():
            continue
        _, exp = torch.frexp(keep)
        e = exp.to(torch.int64) - 1
        lo = int(e.min())
        counts = torch.bincount(e - lo)
        for i in counts.nonzero().reshape(-1).tolist():
            totals[lo + i] = totals.get(lo + i, 0) + int(counts[i])
    return BinadeHistogram(tuple(sorted(totals.items())), zeros, nan, inf)


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
    flat = x.detach().reshape(-1)
    finite = flat[flat.isfinite()].double() if flat.numel() else flat.double()
    if finite.numel():
        absmax, mean = float(finite.abs().max()), float(finite.mean())
        std = float(finite.std()) if finite.numel() > 1 else 0.0
    else:
        absmax = mean = std = math.nan
    dtype = str(x.dtype).removeprefix("torch.")
    return InputSummary(flat.numel(), dtype, absmax, mean, std, binade_histogram(x))


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
