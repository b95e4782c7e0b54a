"""Error metrics of a quantized tensor against its original.

All sums run in float64; the figures are float64 approximations of exact sums, which is
what the tests check them against (relative tolerance 1e-12). Counts are exact.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch

CHUNK = 1 << 22
_MIN_NORMAL, _MAX_FLOAT = sys.float_info.min, sys.float_info.max


@dataclass(frozen=True)
class ErrorMetrics:
    """What rounding did to a tensor.

    Error statistics cover the elements where both the input and its rounded value are
    finite; relative errors also need a non-zero input. NaN and inf present in the input
    are counted, never refused.

    The figures are float64 approximations of exact sums. The pure-torch path sums in
    float64; the C kernel, for float32 inputs, forms each error and ratio in float32 and sums
    runs of 16 values in float32 before float64, which keeps a relative accuracy near 1e-6
    (the tests hold it to that). It does so only for runs whose magnitudes are all zero or
    in [2^-40, 2^60), where no square under- or overflows float32; other runs are summed in
    float64. The figures do not depend on the number of threads. Counts are exact.
    """

    n: int
    input_nan: int
    input_inf: int
    overflow: int  # finite inputs beyond the range: saturated, or became inf or NaN
    underflow: int  # non-zero finite inputs that became zero
    subnormal: int  # non-zero results in the subnormal range
    nonfinite_output: int  # finite inputs whose result is inf or NaN
    max_abs_error: float
    mean_abs_error: float
    rmse: float
    max_rel_error: float
    mean_rel_error: float
    sqnr_db: float  # 10 log10(sum x^2 / sum (q - x)^2); inf when nothing changed
    cosine: float  # cosine similarity of x and q over the finite pairs, in [-1, 1]
    # When nonfinite_output > 0 the error figures are inf, sqnr_db -inf and cosine NaN: a
    # cast that creates inf or NaN never looks lossless.
    input_absmax: float = math.nan  # largest finite |x| (nan when there is none)


@dataclass
class _Sums:
    n: int = 0
    nan: int = 0
    inf: int = 0
    count: int = 0  # finite pairs
    rel_count: int = 0
    nonfinite: int = 0
    abs_sum: float = 0.0
    abs_max: float = 0.0
    sq_err: float = 0.0
    rel_sum: float = 0.0
    rel_max: float = 0.0
    xx: float = 0.0
    qq: float = 0.0
    xq: float = 0.0
    xmax: float = 0.0  # largest finite |x|
    xfinite: bool = False  # whether any x was finite (xmax means something)

    def merged(self, o: _Sums) -> _Sums:
        return _Sums(
            n=self.n + o.n,
            nan=self.nan + o.nan,
            inf=self.inf + o.inf,
            count=self.count + o.count,
            rel_count=self.rel_count + o.rel_count,
            nonfinite=self.nonfinite + o.nonfinite,
            abs_sum=self.abs_sum + o.abs_sum,
            abs_max=max(self.abs_max, o.abs_max),
            sq_err=self.sq_err + o.sq_err,
            rel_sum=self.rel_sum + o.rel_sum,
            rel_max=max(self.rel_max, o.rel_max),
            xx=self.xx + o.xx,
            qq=self.qq + o.qq,
            xq=self.xq + o.xq,
            xmax=max(self.xmax, o.xmax),
            xfinite=self.xfinite or o.xfinite,
        )

    def add(self, x: torch.Tensor, q: torch.Tensor) -> int:
        """Add a chunk; return its underflow count (non-zero finite x with q zero)."""
        xd, qd = x.reshape(-1).double(), q.reshape(-1).double()
        self.n += xd.numel()
        self.nan += int(xd.isnan().sum())
        self.inf += int(xd.isinf().sum())
        xfin = xd.isfinite()
        if bool(xfin.any()):
            self.xmax = max(self.xmax, float(xd[xfin].abs().max()))
            self.xfinite = True
        qfin = qd.isfinite()
        pair = xfin & qfin
        self.nonfinite += int((xfin & ~qfin).sum())
        xs, qs = xd[pair], qd[pair]
        err = (qs - xs).abs()
        self.count += xs.numel()
        if xs.numel():
            self.abs_sum += float(err.sum())
            self.abs_max = max(self.abs_max, float(err.max()))
            self.sq_err += float((err * err).sum())
            self.xx += float((xs * xs).sum())
            self.qq += float((qs * qs).sum())
            self.xq += float((xs * qs).sum())
            nz = xs != 0
            rel = err[nz] / xs[nz].abs()
            self.rel_count += rel.numel()
            if rel.numel():
                self.rel_sum += float(rel.sum())
                self.rel_max = max(self.rel_max, float(rel.max()))
        return int((xfin & (xd != 0) & (qd == 0)).sum())


@dataclass(frozen=True)
class Partial:
    """Sums and counts of part of a tensor: merge the parts, then finish (for chunked scans)."""

    sums: _Sums
    overflow: int
    underflow: int
    subnormal: int

    def merged(self, o: Partial) -> Partial:
        return Partial(
            sums=self.sums.merged(o.sums),
            overflow=self.overflow + o.overflow,
            underflow=self.underflow + o.underflow,
            subnormal=self.subnormal + o.subnormal,
        )

    def finish(self) -> ErrorMetrics:
        return finish(self.sums, self.overflow, self.underflow, self.subnormal)


def by_sqnr(sqnr_db: float, *, worst_first: bool = False) -> float:
    """A sort key on SQNR, best first (or worst first); NaN (nothing measured) last."""
    if math.isnan(sqnr_db):
        return math.inf
    return sqnr_db if worst_first else -sqnr_db


def finish(s: _Sums, overflow: int, underflow: int, subnormal: int) -> ErrorMetrics:
    def ratio(a: float, b: int | float) -> float:
        return a / b if b else math.nan

    if s.sq_err == 0:
        sqnr = math.inf if s.count else math.nan
    elif s.xx == 0:
        sqnr = -math.inf
    else:
        sqnr = 10 * math.log10(s.xx / s.sq_err)
    m = ErrorMetrics(
        n=s.n,
        input_nan=s.nan,
        input_inf=s.inf,
        overflow=overflow,
        underflow=underflow,
        subnormal=subnormal,
        nonfinite_output=s.nonfinite,
        max_abs_error=s.abs_max if s.count else math.nan,
        mean_abs_error=ratio(s.abs_sum, s.count),
        rmse=math.sqrt(ratio(s.sq_err, s.count)) if s.count else math.nan,
        max_rel_error=s.rel_max if s.rel_count else math.nan,
        mean_rel_error=ratio(s.rel_sum, s.rel_count),
        sqnr_db=sqnr,
        cosine=cosine(s.xq, s.xx, s.qq),
        input_absmax=s.xmax if s.xfinite else math.nan,
    )
    if s.nonfinite:  # a finite input became inf or NaN: the error is unbounded, never lossless
        inf = math.inf
        return dataclasses.replace(
            m,
            max_abs_error=inf,
            mean_abs_error=inf,
            rmse=inf,
            max_rel_error=inf,
            mean_rel_error=inf,
            sqnr_db=-inf,
            cosine=math.nan,
        )
    return m


def cosine(xq: float, xx: float, qq: float) -> float:
    """xq / sqrt(xx qq), never outside [-1, 1]; NaN when xx or qq is zero.

    Where xx * qq neither overflows nor underflows, sqrt(xx * qq) is exactly xx when qq == xx
    (in binary floating point, sqrt(x * x) rounds back to |x|), so that a tensor that rounding
    left unchanged has a cosine of exactly 1. Rounding in the sums can still push the quotient
    an ulp past 1 (Cauchy-Schwarz holds for the exact sums): the result is clamped.

    >>> cosine(2.0, 2.0, 2.0), cosine(-1.0, 1.0, 1.0)
    (1.0, -1.0)
    """
    if xx == 0 or qq == 0:
        return math.nan
    product = xx * qq
    if _MIN_NORMAL <= product <= _MAX_FLOAT:
        c = xq / math.sqrt(product)
    else:
        c = xq / (math.sqrt(xx) * math.sqrt(qq))
    if c > 1.0:  # NaN stays NaN
        return 1.0
    return -1.0 if c < -1.0 else c


def measure(
    x: torch.Tensor, q: torch.Tensor, *, overflow: int = 0, subnormal: int = 0
) -> ErrorMetrics:
    """Metrics of q (x after quantization) against x, computed directly in float64 torch, a chunk
    at a time. Underflow and non-finite results are counted here; what counts as overflow
    (values beyond an elementwise format's range, or clipped by a scale) and as subnormal
    depends on the quantizer, which passes its own counts.

    >>> import torch
    >>> m = measure(torch.tensor([1.0, 2.0, 0.001]), torch.tensor([1.0, 2.5, 0.0]))
    >>> m.max_abs_error, m.underflow, round(m.sqnr_db, 3)
    (0.5, 1, 13.01)
    """
    p = measure_partial(x, q)
    return finish(p.sums, overflow, p.underflow, subnormal)


EventCounts = Callable[[torch.Tensor, torch.Tensor], tuple[int, int]]


def measure_partial(x: torch.Tensor, q: torch.Tensor, events: EventCounts | None = None) -> Partial:
    """The sums and the underflow count of q against x, in float64 a chunk at a time;
    ``events(x_chunk, q_chunk)`` (float64) adds a quantizer's own overflow and subnormal
    counts."""
    if x.shape != q.shape:
        raise ValueError(f"shapes differ: {tuple(x.shape)} and {tuple(q.shape)}")
    sums = _Sums()
    over = under = sub = 0
    xf, qf = x.detach().reshape(-1), q.detach().reshape(-1)
    for start in range(0, max(xf.numel(), 1), CHUNK):
        xd, qd = xf[start : start + CHUNK].double(), qf[start : start + CHUNK].double()
        under += sums.add(xd, qd)
        if events is not None:
            o, s = events(xd, qd)
            over, sub = over + o, sub + s
    return Partial(sums, over, under, sub)
