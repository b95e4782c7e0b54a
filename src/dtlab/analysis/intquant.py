"""Integer (linear) quantization with scales per tensor, per channel or per group.

A value x becomes the integer code ``c = clamp(round(x / scale) + zero_point, qmin, qmax)``
and comes back as ``(c - zero_point) * scale``. Conventions, per slice (the elements that
share one scale):

* Symmetric: ``scale = amax / qmax`` with ``qmax = fmt.max``, so the codes used are
  ``-qmax..qmax``; a signed format's lowest code ``fmt.min = -qmax - 1`` is left unused.
  The zero point is 0 and not stored. Unsigned formats need asymmetric quantization.
* Asymmetric: ``[min, max]`` is first widened to contain 0, ``scale = (max - min) / (qmax -
  qmin)`` with ``qmin, qmax = fmt.min, fmt.max``, and ``zero_point = round(qmin - min /
  scale)`` (ties to even) clamped to ``[qmin, qmax]``; 0.0 is then exactly the zero point.
* Scales are float32. The quotient is computed in float64 and rounded to the nearest
  float32 for symmetric slices (``amax / scale`` then exceeds qmax by at most qmax * 2**-24,
  which rounds back to qmax), and rounded up for asymmetric ones, so that after the zero
  point is rounded ``[min, max]`` still lies within half a step of the codes. Scales are
  clamped to the positive finite float32 range. A slice whose range is 0 gets scale 1.
* Only finite values set the scale. NaN gets the zero point's code and dequantizes to NaN;
  +-inf saturates to the slice's end codes.
* An element is *clipped* when it is finite and ``x / scale`` lies more than half a step
  outside ``[qmin - zero_point, qmax - zero_point]``: its error exceeds what rounding to
  nearest alone would give. ABSMAX never clips.

Quotients run in float64. For float32 and narrower inputs and formats of up to 29 bits, the
float64 quotient ``x / scale`` rounds to the same integer as the exact one; for float64 inputs
(or wider formats, accepted up to 32 bits) a quotient within 2**-53 of a tie may round either
way. Formats wider than 24 bits have steps finer than a float32 scale can place the range.

>>> import torch
>>> q = int_quantize(torch.tensor([-1.0, 0.0, 0.5, 1.0]), "int8")
>>> q.codes.tolist(), q.scales.item() == torch.tensor(1 / 127).item()
([-127, 0, 64, 127], True)
>>> q.dequantize()[2].item()
0.503937...
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction

import torch

from dtlab.analysis.groups import from_groups, to_groups
from dtlab.analysis.metrics import ErrorMetrics, Partial, measure, measure_partial
from dtlab.errors import OptionError
from dtlab.formats import IntFormat
from dtlab.formats.quantizer import SCALE_BITS, Granularity, Quantizer, ScaleMethod, Symmetry
from dtlab.formats.quantizer_spec import int_quantizer, parse_quantizer
from dtlab.kernels import quantize
from dtlab.kernels.checks import check_float_tensor
from dtlab.modes import Rounding

__all__ = ["MSE_GRID", "IntQuantReport", "IntQuantized", "int_metrics", "int_quantize"]

MSE_GRID = 100  # clipping ratios k / MSE_GRID for k = 1..MSE_GRID
_F32 = torch.finfo(torch.float32)
_TINY32 = 2.0**-149  # the smallest positive float32


@dataclass(frozen=True, eq=False)  # tensors have no truth value to compare with
class IntQuantized:
    """A tensor as integer codes and per-slice float32 scales (and zero points).

    ``codes`` has x's shape, in the smallest signed torch integer dtype holding the format
    (uint8 for unsigned formats of up to 8 bits). ``scales`` and ``zero_points`` have the
    shape of the slices (see ``_Slices``); ``zero_points`` is None for symmetric. ``spec`` is
    the quantizer with its axis made non-negative. ``nan_mask`` marks the input's NaN (None
    when there was none); ``clipped`` counts the finite elements the range clipped.
    """

    codes: torch.Tensor
    scales: torch.Tensor
    zero_points: torch.Tensor | None
    spec: Quantizer
    rounding: Rounding
    dtype: torch.dtype
    clipped: int
    nan_mask: torch.Tensor | None = None

    @property
    def fmt(self) -> IntFormat:
        assert isinstance(self.spec.format, IntFormat)
        return self.spec.format

    @property
    def scale_count(self) -> int:
        return self.scales.numel()

    @property
    def effective_bits(self) -> Fraction:
        """Storage bits per element: the code, plus each slice's float32 scale (and zero point,
        of fmt.bits) spread over the elements. Int4 symmetric, groups of 128: 4 + 32/128."""
        extra = SCALE_BITS + (self.fmt.bits if self.zero_points is not None else 0)
        return self.fmt.bits + Fraction(self.scale_count * extra, self.codes.numel())

    def dequantize(self) -> torch.Tensor:
        """``(codes - zero_point) * scale`` in float64, rounded once to x's dtype."""
        lay = _Slices(tuple(self.codes.shape), self.spec)
        zp = 0.0 if self.zero_points is None else lay.slice_rows(self.zero_points.double())
        values = (lay.rows(self.codes.double()) - zp) * lay.slice_rows(self.scales.double())
        out = lay.unrows(values).to(self.dtype)
        return out if self.nan_mask is None else out.masked_fill(self.nan_mask, math.nan)


@dataclass(frozen=True)
class IntQuantReport:
    """What integer quantization did to a tensor and what it costs to store.

    ``metrics.overflow`` is the number of clipped elements.
    """

    spec: Quantizer
    metrics: ErrorMetrics
    effective_bits: Fraction
    scale_count: int
    clipped: int


def int_quantize(
    x: torch.Tensor,
    quantizer: Quantizer | IntFormat | str | torch.dtype,
    *,
    rounding: Rounding | str = Rounding.NEAREST_EVEN,
    generator: torch.Generator | None = None,
    clip_range: tuple[float, float] | None = None,
) -> IntQuantized:
    """Quantize x to integer codes with one scale per slice (see the module notes).

    ``quantizer`` is a Quantizer (``int_quantizer`` builds one from keywords), a spec such as
    ``"int4:g128:asym"``, or an integer format (one scale per tensor, symmetric when signed).
    ``generator`` seeds stochastic rounding. ``clip_range`` gives a per-tensor absmax
    quantizer its range [lo, hi] (lo <= 0 <= hi) when the tensor comes in parts: computed once
    over all of them, it gives every part the whole tensor's scale.

    >>> import torch
    >>> q = int_quantize(torch.tensor([0.0, 1.0, 2.0, 3.0]), "uint8")
    >>> q.codes.tolist(), q.zero_points.item()
    ([0, 85, 170, 255], 0)
    >>> w = torch.arange(12.0).reshape(2, 6)
    >>> int_quantize(w, int_quantizer("int4", group_size=4)).scales.shape
    torch.Size([2, 2])
    """
    spec = _spec(x, quantizer)
    mode = Rounding.parse(rounding)
    lay = _Slices(tuple(x.shape), spec)
    values = lay.rows(x.double())
    rows = _Rows(values, values.isfinite(), spec, mode)
    lo, hi = rows.bounds() if clip_range is None else _given_range(spec, clip_range, rows)
    mse = spec.clipping is ScaleMethod.MSE
    scale, zp = rows.search(lo, hi, x.dtype) if mse else rows.params(lo, hi)
    t, steps = rows.steps(scale, zp, mode, generator)
    qmin, qmax = rows.qrange
    clipped = (rows.finite & ((t < qmin - zp - 0.5) | (t > qmax - zp + 0.5))).sum()
    nan, dt = x.isnan(), _code_dtype(rows.fmt)
    zps = lay.to_slices(zp[:, 0]).to(dt) if spec.symmetry is Symmetry.ASYMMETRIC else None
    return IntQuantized(
        codes=lay.unrows(steps + zp).to(dt),
        scales=lay.to_slices(scale[:, 0]),
        zero_points=zps,
        spec=spec,
        rounding=mode,
        dtype=x.dtype,
        clipped=int(clipped),
        nan_mask=nan if bool(nan.any()) else None,
    )


def int_metrics(x: torch.Tensor, quantized: IntQuantized) -> IntQuantReport:
    """Error metrics of ``quantized.dequantize()`` against x, with the clipped elements as
    overflow, and the storage cost.

    >>> import torch
    >>> x = torch.tensor([-1.0, 0.0, 0.5, 1.0])
    >>> r = int_metrics(x, int_quantize(x, "int4:g2"))
    >>> r.effective_bits, r.metrics.overflow
    (Fraction(20, 1), 0)
    """
    if tuple(x.shape) != tuple(quantized.codes.shape):
        raise OptionError(f"x has shape {tuple(x.shape)}, the codes {tuple(quantized.codes.shape)}")
    m = measure(x, quantized.dequantize(), overflow=quantized.clipped)
    return IntQuantReport(
        spec=quantized.spec,
        metrics=m,
        effective_bits=quantized.effective_bits,
        scale_count=quantized.scale_count,
        clipped=quantized.clipped,
    )


def int_partial(
    x: torch.Tensor,
    quantizer: Quantizer | IntFormat | str,
    *,
    rounding: Rounding | str = Rounding.NEAREST_EVEN,
    clip_range: tuple[float, float] | None = None,
) -> Partial:
    """The sums of ``int_metrics`` for x, to merge with those of other parts of a tensor
    (each part holding whole scale slices, or sharing the tensor's ``clip_range``)."""
    q = int_quantize(x, quantizer, rounding=rounding, clip_range=clip_range)
    p = measure_partial(x, q.dequantize())
    return dataclasses.replace(p, overflow=p.overflow + q.clipped)


def _given_range(
    spec: Quantizer, clip_range: tuple[float, float], rows: _Rows
) -> tuple[torch.Tensor, torch.Tensor]:
    lo, hi = clip_range
    if spec.granularity is not Granularity.TENSOR or spec.clipping is not ScaleMethod.ABSMAX:
        raise OptionError(f"{spec.name}: a given clipping range is for per-tensor absmax scales")
    if not lo <= 0 <= hi:
        raise OptionError(f"the clipping range [{lo}, {hi}] must hold 0")
    n = rows.values.shape[0]
    return torch.full((n,), float(lo), dtype=torch.float64), torch.full(
        (n,), float(hi), dtype=torch.float64
    )


# ---- options ------------------------------------------------------------------------------


def _spec(x: object, quantizer: Quantizer | IntFormat | str | torch.dtype) -> Quantizer:
    """The quantizer, checked against x, with its axis made non-negative."""
    t = check_float_tensor(x, "int_quantize")
    if t.numel() == 0:
        raise OptionError("int_quantize needs a non-empty tensor")
    if isinstance(quantizer, Quantizer):
        q = quantizer
    elif isinstance(quantizer, str) and ":" in quantizer:
        q = parse_quantizer(quantizer)
    else:
        q = int_quantizer(quantizer, symmetric=_signed(quantizer))
    if not q.is_int:
        raise OptionError(f"int_quantize needs an integer format, not {q.format.name}")
    return q.applied(t.dim())


def _signed(fmt: object) -> bool:
    """Symmetric for a signed format, asymmetric for an unsigned one (the grammar's default)."""
    from dtlab.formats import get_format

    f = fmt if isinstance(fmt, IntFormat) else get_format(fmt)
    return not isinstance(f, IntFormat) or (f.signed and f.max > 0)


def _code_dtype(fmt: IntFormat) -> torch.dtype:
    if not fmt.signed and fmt.bits <= 8:
        return torch.uint8
    width = fmt.bits + (0 if fmt.signed else 1)
    return next(
        d
        for d in (torch.int8, torch.int16, torch.int32, torch.int64)
        if width <= torch.iinfo(d).bits
    )


# ---- slices: every slice as one row -------------------------------------------------------


@dataclass(frozen=True)
class _Slices:
    """Rows of a (slices, elements) matrix; a ragged last group is padded with NaN."""

    shape: tuple[int, ...]
    spec: Quantizer

    @property
    def width(self) -> int | None:
        """Elements per row of a group layout: the group size, or the axis's length when one
        group covers it (int4:g1000000 pads nothing, rather than a million values a row)."""
        a, g = self.spec.axis, self.spec.group_size
        return None if a is None or g is None else min(g, max(self.shape[a], 1))

    def rows(self, t: torch.Tensor) -> torch.Tensor:
        a, g = self.spec.axis, self.width
        if a is None:
            return t.reshape(1, -1)
        if g is None:
            return t.movedim(a, 0).reshape(self.shape[a], -1)
        return to_groups(t, a, g, fill=math.nan).reshape(-1, g)

    def unrows(self, r: torch.Tensor) -> torch.Tensor:
        a, g = self.spec.axis, self.width
        if a is None:
            return r.reshape(self.shape)
        moved = (*self.shape[:a], *self.shape[a + 1 :], self.shape[a])
        if g is None:
            return r.reshape(moved[-1], *moved[:-1]).movedim(0, a)
        return from_groups(r.reshape(*moved[:-1], -1, g), a, self.shape[a])

    def to_slices(self, v: torch.Tensor) -> torch.Tensor:
        a, g = self.spec.axis, self.width
        if a is None:
            return v.reshape(())
        if g is None:
            return v
        moved = (*self.shape[:a], *self.shape[a + 1 :])
        return v.reshape(*moved, -(-self.shape[a] // g)).movedim(-1, a)

    def slice_rows(self, s: torch.Tensor) -> torch.Tensor:
        a, g = self.spec.axis, self.spec.group_size
        return (s if a is None or g is None else s.movedim(a, -1)).reshape(-1, 1)


# ---- scales -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Rows:
    """Every slice as one row of float64 values (NaN pads a ragged last group)."""

    values: torch.Tensor
    finite: torch.Tensor
    spec: Quantizer
    rounding: Rounding

    @property
    def fmt(self) -> IntFormat:
        assert isinstance(self.spec.format, IntFormat)
        return self.spec.format

    @property
    def qrange(self) -> tuple[int, int]:  # -qmax..qmax when symmetric
        fmt = self.fmt
        return (-fmt.max if self.spec.symmetry is Symmetry.SYMMETRIC else fmt.min), fmt.max

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row, the clipping range [lo, hi] with lo <= 0 <= hi (lo = -hi when symmetric)."""
        sym, p = self.spec.symmetry is Symmetry.SYMMETRIC, self.spec.percentile
        if self.spec.clipping is ScaleMethod.PERCENTILE:
            vals = torch.where(self.finite, self.values, math.nan)
            if sym:
                return -(amax := _percentile(vals.abs(), p)), amax
            return _percentile(vals, 100 - p).clamp(max=0), _percentile(vals, p).clamp(min=0)
        z = torch.where(self.finite, self.values, 0.0)  # 0 is in the range anyway
        if sym:
            return -(amax := z.abs().amax(dim=1)), amax
        return z.amin(dim=1).clamp(max=0), z.amax(dim=1).clamp(min=0)

    def params(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float32 scales and float64 zero points, each of shape (rows, 1)."""
        qmin, qmax = self.qrange
        width, levels = hi - lo, qmax - qmin  # symmetric: 2 amax / 2 qmax, exactly
        scale = (width / levels).float()
        if self.spec.symmetry is Symmetry.ASYMMETRIC:  # round up: [lo, hi] must fit the codes
            short = scale.double() * levels < width
            scale = torch.where(short, torch.nextafter(scale, scale.new_tensor(math.inf)), scale)
        scale = torch.where(width > 0, scale.clamp(_TINY32, _F32.max), 1.0)
        zp = torch.zeros_like(lo)
        if self.spec.symmetry is Symmetry.ASYMMETRIC:
            zp = (qmin - lo / scale.double()).round().clamp(qmin, qmax)
        return scale[:, None], zp[:, None]

    def steps(
        self, scale: torch.Tensor, zp: torch.Tensor, mode: Rounding, gen: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x / scale, and the code minus the zero point (NaN gives 0, inf saturates)."""
        qmin, qmax = self.qrange
        t = self.values / scale.double()
        wide = IntFormat(self.fmt.bits + 1)  # holds qmax - qmin and qmin - qmax
        return t, quantize(t, wide, rounding=mode, generator=gen).clamp(qmin - zp, qmax - zp)

    def search(
        self, lo: torch.Tensor, hi: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row, the scale and zero point of the clipping ratio with the least squared error,
        on values dequantized to x's dtype exactly as IntQuantized.dequantize does."""
        mode = Rounding.NEAREST_EVEN if self.rounding is Rounding.STOCHASTIC else self.rounding
        finite = _Rows(torch.where(self.finite, self.values, 0.0), self.finite, self.spec, mode)

        def candidate(alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            scale, zp = self.params(lo * alpha, hi * alpha)
            deq = finite.steps(scale, zp, mode, None)[1] * scale.double()
            if dtype != torch.float64:
                deq = deq.to(dtype).double()
            return ((deq - finite.values) ** 2).sum(dim=1, keepdim=True), scale, zp

        best_err, best_scale, best_zp = candidate(1.0)
        for k in range(MSE_GRID - 1, 0, -1):  # a tie keeps the larger alpha
            err, scale, zp = candidate(k / MSE_GRID)
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best_scale = torch.where(better, scale, best_scale)
            best_zp = torch.where(better, zp, best_zp)
        return best_scale, best_zp


def _percentile(vals: torch.Tensor, p: float) -> torch.Tensor:
    """numpy.percentile's default (linear) per row, ignoring NaN; 0 for a row without values."""
    s = vals.sort(dim=1).values  # NaN sorts last
    n = (~vals.isnan()).sum(dim=1, keepdim=True)
    pos = (n - 1).clamp(min=0).double() * (p / 100)
    below = pos.floor().long()
    above = torch.minimum(below + 1, (n - 1).clamp(min=0))
    a, b = s.gather(1, below), s.gather(1, above)
    return torch.where(n > 0, a + (b - a) * (pos - below), 0.0)[:, 0]
