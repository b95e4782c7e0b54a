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

import enum
import math
from dataclasses import dataclass
from fractions import Fraction

import torch
import torch.nn.functional as F

from dtlab.analysis.metrics import ErrorMetrics, measure
from dtlab.errors import OptionError
from dtlab.formats import IntFormat, get_format
from dtlab.kernels import quantize
from dtlab.modes import Rounding, parse_enum

__all__ = ["MSE_GRID", "SCALE_BITS", "Granularity", "IntQuantReport", "IntQuantSpec",
           "IntQuantized", "ScaleMethod", "Symmetry", "int_metrics", "int_quantize"]  # fmt: skip

SCALE_BITS = 32  # a float32 scale per slice
MSE_GRID = 100  # clipping ratios k / MSE_GRID for k = 1..MSE_GRID
MAX_BITS = 32
_FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
_F32 = torch.finfo(torch.float32)
_TINY32 = 2.0**-149  # the smallest positive float32


class Symmetry(enum.Enum):
    """Whether the codes are centred on 0 (no zero point) or shifted by a zero point."""

    SYMMETRIC = "symmetric"
    ASYMMETRIC = "asymmetric"


class ScaleMethod(enum.Enum):
    """How each slice's clipping range is chosen.

    * ``ABSMAX``: the full range of the finite values (``amax``, or ``min`` and ``max``).
    * ``PERCENTILE``: the p-th percentile of ``|x|`` (symmetric), or the (100 - p)-th and
      p-th percentiles of x (asymmetric), per slice, interpolated linearly between the two
      nearest ranks as ``numpy.percentile`` does by default.
    * ``MSE``: the range ``alpha * absmax-range`` for ``alpha = k / 100, k = 1..100`` that
      gives the least squared error of the slice's finite values after the round trip in
      the requested rounding (nearest-even stands in for stochastic). The grid holds
      ``alpha = 1``, and ties keep the larger alpha, so MSE is never worse than ABSMAX.
      It costs 100 quantizations of the tensor.
    """

    ABSMAX = "absmax"
    PERCENTILE = "percentile"
    MSE = "mse"


@dataclass(frozen=True)
class Granularity:
    """Which elements share a scale.

    * ``axis=None``: one scale for the whole tensor.
    * ``axis=a, group_size=None``: per channel, one scale per index along axis a (the scale
      covers every other axis), so the scales have shape ``(x.shape[a],)``.
    * ``axis=a, group_size=G``: per group, contiguous runs of G elements along axis a, one
      per position in the other axes; a last, shorter group holds the remainder when G does
      not divide ``x.shape[a]``. The scales have x's shape with ``x.shape[a]`` replaced by
      ``ceil(x.shape[a] / G)``.
    """

    axis: int | None = None
    group_size: int | None = None

    def __post_init__(self) -> None:
        if self.axis is not None and (not _is_int(self.axis) or self.axis < 0):
            raise OptionError(f"axis must be a non-negative int here, got {self.axis!r}")
        if self.group_size is not None:
            if not _is_int(self.group_size) or self.group_size < 1:
                raise OptionError(f"group_size must be an int >= 1, got {self.group_size!r}")
            if self.axis is None:
                raise OptionError("a group size needs the axis its groups run along")

    @property
    def kind(self) -> str:
        """One of tensor, channel, group."""
        if self.axis is None:
            return "tensor"
        return "channel" if self.group_size is None else "group"


@dataclass(frozen=True)
class IntQuantSpec:
    """Every choice that produced an IntQuantized (the axis normalised to be non-negative)."""

    fmt: IntFormat
    symmetry: Symmetry
    granularity: Granularity
    method: ScaleMethod
    percentile: float
    rounding: Rounding


@dataclass(frozen=True, eq=False)  # tensors have no truth value to compare with
class IntQuantized:
    """A tensor as integer codes and per-slice float32 scales (and zero points).

    ``codes`` has x's shape, in the smallest signed torch integer dtype holding the format
    (uint8 for unsigned formats of up to 8 bits). ``scales`` and ``zero_points`` have the
    shape of the slices (see Granularity); ``zero_points`` is None for symmetric.
    ``nan_mask`` marks the input's NaN (None when there was none); ``clipped`` counts the
    finite elements the range clipped.
    """

    codes: torch.Tensor
    scales: torch.Tensor
    zero_points: torch.Tensor | None
    spec: IntQuantSpec
    dtype: torch.dtype
    clipped: int
    nan_mask: torch.Tensor | None = None

    @property
    def scale_count(self) -> int:
        return self.scales.numel()

    @property
    def effective_bits(self) -> Fraction:
        """Storage bits per element: the code, plus each slice's float32 scale (and zero point,
        of fmt.bits) spread over the elements. Int4 symmetric, groups of 128: 4 + 32/128."""
        extra = SCALE_BITS + (self.spec.fmt.bits if self.zero_points is not None else 0)
        return self.spec.fmt.bits + Fraction(self.scale_count * extra, self.codes.numel())

    def dequantize(self) -> torch.Tensor:
        """``(codes - zero_point) * scale`` in float64, rounded once to x's dtype."""
        lay = _Layout(tuple(self.codes.shape), self.spec.granularity)
        zp = 0.0 if self.zero_points is None else lay.slice_rows(self.zero_points.double())
        values = (lay.rows(self.codes.double()) - zp) * lay.slice_rows(self.scales.double())
        out = lay.unrows(values).to(self.dtype)
        return out if self.nan_mask is None else out.masked_fill(self.nan_mask, math.nan)


@dataclass(frozen=True)
class IntQuantReport:
    """What integer quantization did to a tensor and what it costs to store.

    ``metrics.overflow`` is the number of clipped elements.
    """

    spec: IntQuantSpec
    metrics: ErrorMetrics
    effective_bits: Fraction
    scale_count: int
    clipped: int


def int_quantize(
    x: torch.Tensor,
    fmt: IntFormat | str | torch.dtype,
    *,
    symmetric: bool | Symmetry = True,
    axis: int | None = None,
    group_size: int | None = None,
    method: ScaleMethod | str = ScaleMethod.ABSMAX,
    percentile: float = 99.9,
    rounding: Rounding | str = Rounding.NEAREST_EVEN,
    generator: torch.Generator | None = None,
) -> IntQuantized:
    """Quantize x to integer codes of fmt with one scale per slice (see the module notes).

    ``axis`` alone gives per-channel scales along it; ``group_size`` gives groups running
    along ``axis`` (default: the last axis); neither gives one scale per tensor.
    ``generator`` seeds stochastic rounding.

    >>> import torch
    >>> q = int_quantize(torch.tensor([0.0, 1.0, 2.0, 3.0]), "uint8", symmetric=False)
    >>> q.codes.tolist(), q.zero_points.item()
    ([0, 85, 170, 255], 0)
    >>> w = torch.arange(12.0).reshape(2, 6)
    >>> int_quantize(w, "int4", group_size=4).scales.shape
    torch.Size([2, 2])
    """
    spec = _spec(x, fmt, symmetric, axis, group_size, method, percentile, rounding)
    lay = _Layout(tuple(x.shape), spec.granularity)
    values = lay.rows(x.double())
    rows = _Rows(values, values.isfinite(), spec)
    lo, hi = rows.bounds()
    mse = spec.method is ScaleMethod.MSE
    scale, zp = rows.search(lo, hi, x.dtype) if mse else rows.params(lo, hi)
    t, steps = rows.steps(scale, zp, spec.rounding, generator)
    qmin, qmax = rows.qrange
    clipped = (rows.finite & ((t < qmin - zp - 0.5) | (t > qmax - zp + 0.5))).sum()
    nan, dt = x.isnan(), _code_dtype(spec.fmt)
    zps = lay.to_slices(zp[:, 0]).to(dt) if spec.symmetry is Symmetry.ASYMMETRIC else None
    return IntQuantized(lay.unrows(steps + zp).to(dt), lay.to_slices(scale[:, 0]), zps, spec,
                        x.dtype, int(clipped), nan if bool(nan.any()) else None)  # fmt: skip


def int_metrics(x: torch.Tensor, quantized: IntQuantized) -> IntQuantReport:
    """Error metrics of ``quantized.dequantize()`` against x, with the clipped elements as
    overflow, and the storage cost.

    >>> import torch
    >>> x = torch.tensor([-1.0, 0.0, 0.5, 1.0])
    >>> r = int_metrics(x, int_quantize(x, "int4", group_size=2))
    >>> r.effective_bits, r.metrics.overflow
    (Fraction(20, 1), 0)
    """
    if tuple(x.shape) != tuple(quantized.codes.shape):
        raise OptionError(f"x has shape {tuple(x.shape)}, the codes {tuple(quantized.codes.shape)}")
    m = measure(x, quantized.dequantize(), overflow=quantized.clipped)
    return IntQuantReport(
        quantized.spec, m, quantized.effective_bits, quantized.scale_count, quantized.clipped
    )


# ---- options ------------------------------------------------------------------------------


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _spec(
    x: object,
    fmt: object,
    symmetric: bool | Symmetry,
    axis: int | None,
    group_size: int | None,
    method: ScaleMethod | str,
    percentile: float,
    rounding: Rounding | str,
) -> IntQuantSpec:
    if not isinstance(x, torch.Tensor) or x.dtype not in _FLOATS:
        got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise OptionError(f"int_quantize needs a floating-point tensor, not {got}")
    if x.numel() == 0:
        raise OptionError("int_quantize needs a non-empty tensor")
    f = fmt if isinstance(fmt, IntFormat) else get_format(fmt)
    if not isinstance(f, IntFormat):
        raise OptionError(f"int_quantize needs an integer format, not {f}")
    if f.bits > MAX_BITS:
        raise OptionError(f"int_quantize supports integer formats up to {MAX_BITS} bits, not {f}")
    bools = {True: Symmetry.SYMMETRIC, False: Symmetry.ASYMMETRIC}
    sym = symmetric if isinstance(symmetric, Symmetry) else bools.get(symmetric)
    if sym is None or not isinstance(symmetric, (bool, Symmetry)):
        raise OptionError(f"symmetric must be a bool or a Symmetry, not {symmetric!r}")
    if sym is Symmetry.SYMMETRIC and (not f.signed or f.max == 0):
        raise OptionError(f"{f} cannot be quantized symmetrically; use symmetric=False")
    m = parse_enum(ScaleMethod, method, "scale method")
    bad_p = isinstance(percentile, bool) or not isinstance(percentile, (int, float))
    if bad_p or not 0 < percentile <= 100:
        raise OptionError(f"percentile must be in (0, 100], got {percentile!r}")
    return IntQuantSpec(f, sym, _granularity(x.dim(), axis, group_size), m, float(percentile),
                        Rounding.parse(rounding))  # fmt: skip


def _granularity(ndim: int, axis: int | None, group_size: int | None) -> Granularity:
    if group_size is not None and axis is None:
        axis = -1
    if axis is None:
        return Granularity()
    if not _is_int(axis) or not -max(ndim, 1) <= axis < max(ndim, 1) or ndim == 0:
        raise OptionError(f"axis {axis!r} is out of range for a {ndim}-dimensional tensor")
    return Granularity(axis % ndim, group_size)


def _code_dtype(fmt: IntFormat) -> torch.dtype:
    if not fmt.signed and fmt.bits <= 8:
        return torch.uint8
    width = fmt.bits + (0 if fmt.signed else 1)
    return next(d for d in (torch.int8, torch.int16, torch.int32, torch.int64)
                if width <= torch.iinfo(d).bits)  # fmt: skip


# ---- layout: every slice as one row -------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Rows of a (slices, elements) matrix; a ragged last group is padded with NaN."""

    shape: tuple[int, ...]
    gran: Granularity

    def _moved(self) -> tuple[int, ...]:  # the shape with the axis moved last
        a = self.gran.axis
        assert a is not None
        return (*self.shape[:a], *self.shape[a + 1 :], self.shape[a])

    def rows(self, t: torch.Tensor) -> torch.Tensor:
        a, g = self.gran.axis, self.gran.group_size
        if a is None:
            return t.reshape(1, -1)
        if g is None:
            return t.movedim(a, 0).reshape(self.shape[a], -1)
        moved = t.movedim(a, -1)
        pad = -self.shape[a] % g
        return (F.pad(moved, (0, pad), value=math.nan) if pad else moved).reshape(-1, g)

    def unrows(self, r: torch.Tensor) -> torch.Tensor:
        a, g = self.gran.axis, self.gran.group_size
        if a is None:
            return r.reshape(self.shape)
        moved = self._moved()
        if g is None:
            return r.reshape(moved[-1], *moved[:-1]).movedim(0, a)
        n = moved[-1]
        return r.reshape(*moved[:-1], -(-n // g) * g)[..., :n].movedim(-1, a)

    def to_slices(self, v: torch.Tensor) -> torch.Tensor:
        a, g = self.gran.axis, self.gran.group_size
        if a is None:
            return v.reshape(())
        if g is None:
            return v
        moved = self._moved()
        return v.reshape(*moved[:-1], -(-moved[-1] // g)).movedim(-1, a)

    def slice_rows(self, s: torch.Tensor) -> torch.Tensor:
        a, g = self.gran.axis, self.gran.group_size
        return (s if a is None or g is None else s.movedim(a, -1)).reshape(-1, 1)


# ---- scales -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Rows:
    """Every slice as one row of float64 values (NaN pads a ragged last group)."""

    values: torch.Tensor
    finite: torch.Tensor
    spec: IntQuantSpec

    @property
    def qrange(self) -> tuple[int, int]:  # -qmax..qmax when symmetric
        fmt = self.spec.fmt
        return (-fmt.max if self.spec.symmetry is Symmetry.SYMMETRIC else fmt.min), fmt.max

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row, the clipping range [lo, hi] with lo <= 0 <= hi (lo = -hi when symmetric)."""
        sym, p = self.spec.symmetry is Symmetry.SYMMETRIC, self.spec.percentile
        if self.spec.method is ScaleMethod.PERCENTILE:
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
        wide = IntFormat(self.spec.fmt.bits + 1)  # holds qmax - qmin and qmin - qmax
        return t, quantize(t, wide, rounding=mode, generator=gen).clamp(qmin - zp, qmax - zp)

    def search(
        self, lo: torch.Tensor, hi: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row, the scale and zero point of the clipping ratio with the least squared error,
        on values dequantized to x's dtype exactly as IntQuantized.dequantize does."""
        mode = Rounding.NEAREST_EVEN if self.spec.rounding is Rounding.STOCHASTIC else None
        finite = _Rows(torch.where(self.finite, self.values, 0.0), self.finite, self.spec)

        def candidate(alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            scale, zp = self.params(lo * alpha, hi * alpha)
            deq = finite.steps(scale, zp, mode or self.spec.rounding, None)[1] * scale.double()
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
