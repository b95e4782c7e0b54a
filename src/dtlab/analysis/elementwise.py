"""Metrics of rounding a tensor into elementwise formats, and whether its values fit them.

On CPU the C kernel quantizes a block into a small buffer and reduces it at once, so each
format costs one read of the input and no output tensor; elsewhere the torch path quantizes
a chunk and measures it in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import torch

from dtlab.analysis.metrics import ErrorMetrics, Partial, _Sums, measure_partial
from dtlab.formats import FloatFormat, Format, IntFormat
from dtlab.kernels import has_c_kernel, quantize
from dtlab.kernels.native import MetricLimits, MetricSums, fused_metrics
from dtlab.kernels.params import as_format, prepare, seed_for
from dtlab.modes import Overflow, Rounding, Subnormals


@dataclass(frozen=True)
class Limits:
    """|x| beyond which rounding leaves the range, for positive and negative x."""

    pos: float
    pos_inclusive: bool
    neg: float
    neg_inclusive: bool


def _side(
    bound: Fraction, beyond: Fraction, bound_even: bool, mode: Rounding
) -> tuple[float, bool]:
    mid = (bound + beyond) / 2
    if mode is Rounding.NEAREST_EVEN:
        return _f(mid), not bound_even
    if mode is Rounding.NEAREST_AWAY:
        return _f(mid), True
    if mode in (Rounding.UP, Rounding.STOCHASTIC):  # away from zero (stochastic: any excess)
        return _f(bound), False
    return _f(beyond), True  # toward zero


def _f(x: Fraction) -> float:
    try:
        return float(x)
    except OverflowError:
        return math.inf


@lru_cache(maxsize=512)
def overflow_limits(fmt: Format, rounding: Rounding) -> Limits:
    """Exact thresholds: |x| > limit (or ==, when inclusive) rounds past the largest value."""
    pos_mode = Rounding.TOWARD_ZERO if rounding is Rounding.DOWN else rounding
    neg_mode = {Rounding.UP: Rounding.TOWARD_ZERO, Rounding.DOWN: Rounding.UP}.get(
        rounding, rounding
    )
    if isinstance(fmt, IntFormat):
        hi, lo = Fraction(fmt.max), Fraction(-fmt.min)
        pos = _side(hi, hi + 1, fmt.max % 2 == 0, pos_mode)
        neg = _side(lo, lo + 1, (-fmt.min) % 2 == 0, neg_mode)
        return Limits(*pos, *neg)
    beyond = fmt.magnitude_of(fmt.max_code + 1)
    even = fmt.max_code % 2 == 0 and fmt.man_bits > 0  # no mantissa: ties go up
    pos = _side(fmt.max, beyond, even, pos_mode)
    neg = _side(fmt.max, beyond, even, neg_mode) if fmt.signed else (0.0, False)
    return Limits(*pos, *neg)


def _tiny(f: Format) -> float:
    """Non-zero results below this are subnormal (0: the format has no subnormals)."""
    return float(f.smallest_normal) if isinstance(f, FloatFormat) and f.subnormals else 0.0


@lru_cache(maxsize=512)
def _metric_limits(f: Format, mode: Rounding) -> MetricLimits:
    lim = overflow_limits(f, mode)
    return MetricLimits(
        pos=lim.pos,
        pos_inclusive=lim.pos_inclusive,
        neg=lim.neg,
        neg_inclusive=lim.neg_inclusive,
        tiny=_tiny(f),
    )


def format_metrics(
    x: torch.Tensor,
    fmt: Format | str,
    *,
    rounding: Rounding | str = Rounding.NEAREST_EVEN,
    overflow: Overflow | str | None = None,
    subnormals: Subnormals | str = Subnormals.KEEP,
    generator: torch.Generator | None = None,
    backend: str = "auto",
) -> ErrorMetrics:
    """The error metrics of rounding x into fmt (see ErrorMetrics), in one pass on CPU.

    >>> import torch
    >>> m = format_metrics(torch.tensor([1.0, 1000.0, 1e-9, 0.3]), "fp8")
    >>> m.overflow, m.underflow, m.nonfinite_output
    (1, 1, 1)
    """
    return format_partial(
        x,
        fmt,
        rounding=rounding,
        overflow=overflow,
        subnormals=subnormals,
        generator=generator,
        backend=backend,
    ).finish()


def format_partial(
    x: torch.Tensor,
    fmt: Format | str,
    *,
    rounding: Rounding | str = Rounding.NEAREST_EVEN,
    overflow: Overflow | str | None = None,
    subnormals: Subnormals | str = Subnormals.KEEP,
    generator: torch.Generator | None = None,
    backend: str = "auto",
) -> Partial:
    """The sums and counts behind format_metrics, to merge across the chunks of a tensor."""
    f = as_format(fmt)
    mode = Rounding.parse(rounding)
    prep = prepare(f, mode, overflow, subnormals)
    if has_c_kernel() and x.device.type == "cpu" and backend in ("auto", "c"):
        seed = seed_for(prep.params.rounding, generator)
        return _partial_of(fused_metrics(x, prep, seed, _metric_limits(f, mode)), x.numel())
    lim = overflow_limits(f, mode)
    tiny = _tiny(f)
    return _torch_partial(x, f, mode, overflow, subnormals, generator, lim, tiny)


def _torch_partial(
    x: torch.Tensor,
    f: Format,
    mode: Rounding,
    overflow: Overflow | str | None,
    subnormals: Subnormals | str,
    generator: torch.Generator | None,
    lim: Limits,
    tiny: float,
) -> Partial:
    q = quantize(
        x,
        f,
        rounding=mode,
        overflow=overflow,
        subnormals=subnormals,
        generator=generator,
        backend="torch",
    )

    def events(xs: torch.Tensor, qs: torch.Tensor) -> tuple[int, int]:
        a = xs.abs()
        pos = (a > lim.pos) | ((a == lim.pos) & lim.pos_inclusive)
        neg = (a > lim.neg) | ((a == lim.neg) & lim.neg_inclusive)
        over = int((xs.isfinite() & torch.where(xs < 0, neg, pos)).sum())
        return over, int(((qs != 0) & (qs.abs() < tiny)).sum())

    return measure_partial(x, q, events)


def _partial_of(m: MetricSums, n: int) -> Partial:
    s = _Sums(
        n=n,
        nan=m.nan,
        inf=m.inf,
        count=m.pairs,
        rel_count=m.rel_count,
        nonfinite=m.nonfinite,
        abs_sum=m.abs_sum,
        abs_max=m.abs_max,
        sq_err=m.sq_err,
        rel_sum=m.rel_sum,
        rel_max=m.rel_max,
        xx=m.xx,
        qq=m.qq,
        xq=m.xq,
        xmax=m.xmax,
        xfinite=m.nan + m.inf < n,
    )
    return Partial(s, overflow=m.overflow, underflow=m.underflow, subnormal=m.subnormal)
