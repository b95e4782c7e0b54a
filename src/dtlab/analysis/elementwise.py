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
from dtlab.kernels import quantize
from dtlab.kernels.api import as_format, c_module, prepare, seed_for
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
    return format_partial(x, fmt, rounding=rounding, overflow=overflow, subnormals=subnormals,
                          generator=generator, backend=backend).finish()  # fmt: skip


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
    lim = overflow_limits(f, mode)
    tiny = float(f.smallest_normal) if isinstance(f, FloatFormat) and f.subnormals else 0.0
    c = c_module()
    if c is not None and x.device.type == "cpu" and backend in ("auto", "c"):
        src = x.detach()
        if src.dtype not in (torch.float32, torch.float64) or not prep.params.fits_float32:
            src = src.to(torch.float64 if not prep.params.fits_float32 else torch.float32)
        src = src.contiguous()
        seed = seed_for(prep.params.rounding, generator)
        kind = 32 if src.dtype == torch.float32 else 64
        limits = (lim.pos, lim.pos_inclusive, lim.neg, lim.neg_inclusive, tiny)
        r = c.metrics(kind, src.data_ptr(), src.numel(), prep.ints, prep.floats, seed, limits)
        s = _Sums(
            n=src.numel(), nan=r[8], inf=r[9], count=r[10], rel_count=r[11], nonfinite=r[12],
            abs_sum=r[0], abs_max=r[1], sq_err=r[2], xx=r[3], qq=r[4], xq=r[5], rel_sum=r[6],
            rel_max=r[7], xmax=r[16], xfinite=r[8] + r[9] < src.numel(),
        )  # fmt: skip
        return Partial(s, overflow=r[15], underflow=r[13], subnormal=r[14])
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
    q = quantize(x, f, rounding=mode, overflow=overflow, subnormals=subnormals,
                 generator=generator, backend="torch")  # fmt: skip

    def events(xs: torch.Tensor, qs: torch.Tensor) -> tuple[int, int]:
        a = xs.abs()
        pos = (a > lim.pos) | ((a == lim.pos) & lim.pos_inclusive)
        neg = (a > lim.neg) | ((a == lim.neg) & lim.neg_inclusive)
        over = int((xs.isfinite() & torch.where(xs < 0, neg, pos)).sum())
        return over, int(((qs != 0) & (qs.abs() < tiny)).sum())

    return measure_partial(x, q, events)
