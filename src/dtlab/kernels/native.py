"""The typed boundary around the optional C kernel (dtlab.kernels._quantize).

Only this module touches the compiled module, data pointers and the positions of the
records it reads and returns; everything else calls the typed functions below. The C side
exports the names of its records and modes (see _kernel.h), and the module is used only
when they are the ones listed here, so that a stale or mismatched build falls back to the
pure-torch kernels rather than shift a field.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import ModuleType
from typing import NamedTuple

import torch

from dtlab.errors import OptionError
from dtlab.kernels.params import FLOAT_FIELDS, INT_FIELDS, LowRegion, Prepared, RoundingCode

__all__ = [
    "DotAccumulation",
    "KernelLayout",
    "MetricLimits",
    "MetricSums",
    "dot_sequential",
    "expected_layout",
    "fused_metrics",
    "ggml_quantize_blocks",
    "has_c_kernel",
    "has_ggml_kernel",
    "native_layout",
    "quantize_buffer",
    "set_avx2",
    "usable",
]


class DotAccumulation(enum.IntEnum):
    """How dot_sequential accumulates (DOT_ACCUMULATIONS in _kernel.h)."""

    FORMAT = 0  # each partial sum rounded into the format once (inputs already in it)
    FLOAT32_FMA = 1  # sequential fused multiply-add in float32
    FLOAT64_FMA = 2  # sequential fused multiply-add in float64


class MetricSums(NamedTuple):
    """What the fused metrics kernel returns (METRIC_SUMS in _kernel.h), over the pairs of
    x and its rounded value q; sums and maxima over the finite pairs."""

    abs_sum: float
    abs_max: float
    sq_err: float
    xx: float
    qq: float
    xq: float
    rel_sum: float
    rel_max: float
    xmax: float  # the largest finite |x|
    nan: int
    inf: int
    pairs: int  # finite pairs
    rel_count: int  # finite pairs with x non-zero
    nonfinite: int  # finite x with q NaN or inf
    underflow: int
    subnormal: int
    overflow: int


class MetricLimits(NamedTuple):
    """What the metrics kernel counts as an event (METRIC_LIMITS in _kernel.h): |x| beyond
    pos (x > 0) or neg (x < 0) overflows, or equal to it when inclusive; a non-zero |q| below
    tiny is subnormal."""

    pos: float
    pos_inclusive: bool
    neg: float
    neg_inclusive: bool
    tiny: float


@dataclass(frozen=True)
class KernelLayout:
    """The names, in order, of the C kernel's modes and records: each tuple's i-th name is
    code i, or the field at position i."""

    rounding_modes: tuple[str, ...]
    low_regions: tuple[str, ...]
    dot_accumulations: tuple[str, ...]
    param_int_fields: tuple[str, ...]
    param_float_fields: tuple[str, ...]
    metric_fields: tuple[str, ...]
    limit_fields: tuple[str, ...]


def expected_layout() -> KernelLayout:
    """The layout dtlab's Python side builds and reads."""

    def codes(e: type[enum.IntEnum]) -> tuple[str, ...]:
        members = sorted(e, key=int)
        if [int(m) for m in members] != list(range(len(members))):
            raise OptionError(f"{e.__name__} must number its members 0, 1, 2, ...")
        return tuple(m.name for m in members)

    return KernelLayout(
        rounding_modes=codes(RoundingCode),
        low_regions=codes(LowRegion),
        dot_accumulations=codes(DotAccumulation),
        param_int_fields=INT_FIELDS,
        param_float_fields=FLOAT_FIELDS,
        metric_fields=MetricSums._fields,
        limit_fields=MetricLimits._fields,
    )


def _layout_of(module: ModuleType) -> KernelLayout:
    def names(attr: str) -> tuple[str, ...]:
        return tuple(getattr(module, attr, ()))

    return KernelLayout(
        rounding_modes=names("ROUNDING_MODES"),
        low_regions=names("LOW_REGIONS"),
        dot_accumulations=names("DOT_ACCUMULATIONS"),
        param_int_fields=names("PARAM_INT_FIELDS"),
        param_float_fields=names("PARAM_FLOAT_FIELDS"),
        metric_fields=names("METRIC_FIELDS"),
        limit_fields=names("LIMIT_FIELDS"),
    )


_built: ModuleType | None
try:  # built by the package's install step; optional
    from dtlab.kernels import _quantize
except ImportError:  # pragma: no cover - exercised on machines without a compiler
    _built = None
else:
    _built = _quantize


def usable(module: ModuleType | None) -> ModuleType | None:
    """module, if it declares the layout this Python side expects; None otherwise."""
    return module if module is not None and _layout_of(module) == expected_layout() else None


_c = usable(_built)


def native_layout() -> KernelLayout | None:
    """The layout the built C kernel declares, or None where it was not built."""
    return _layout_of(_built) if _built is not None else None


def has_c_kernel() -> bool:
    """Whether the C kernel was built (and agrees with this Python side)."""
    return _c is not None


def _require() -> None:
    """Before any call into _quantize: _c is the module, if it is built and usable."""
    if _c is None:
        raise OptionError("the C kernel is not available here")


def _lanes(t: torch.Tensor) -> int:
    return 32 if t.dtype == torch.float32 else 64


def quantize_buffer(src: torch.Tensor, dst: torch.Tensor, prepared: Prepared, seed: int) -> None:
    """Round src into dst (which may be src itself): contiguous CPU tensors of one float32 or
    float64 dtype and size; float32 only where the format fits it (params.fits_float32)."""
    if _c is None:
        raise OptionError("the C kernel is not available here")
    dt = src.dtype  # the checks are kept cheap: this call costs about a microsecond in all
    lanes = 64 if dt is torch.float64 else 32 if dt is torch.float32 else 0
    if (
        not lanes
        or dst.dtype is not dt
        or (lanes == 32 and not prepared.params.fits_float32)
        or not (src.is_cpu and dst.is_cpu and src.is_contiguous() and dst.is_contiguous())
        or src.numel() != dst.numel()
    ):
        raise OptionError("the C kernel needs contiguous CPU float32 or float64 buffers")
    _quantize.quantize(
        lanes, src.data_ptr(), dst.data_ptr(), src.numel(), prepared.ints, prepared.floats, seed
    )


def fused_metrics(
    x: torch.Tensor, prepared: Prepared, seed: int, limits: MetricLimits
) -> MetricSums:
    """Round the CPU tensor x as prepared and measure it in one pass, with no output tensor.
    x is read in place when it is a contiguous tensor of the lanes the format needs."""
    _require()
    if not x.is_cpu:
        raise OptionError("the C kernel needs a CPU tensor")
    src = x.detach()
    fits32 = prepared.params.fits_float32
    if src.dtype not in (torch.float32, torch.float64) or not fits32:
        src = src.to(torch.float32 if fits32 else torch.float64)
    src = src.contiguous()
    r = _quantize.metrics(
        _lanes(src), src.data_ptr(), src.numel(), prepared.ints, prepared.floats, seed, limits
    )
    return MetricSums._make(r)


def dot_sequential(
    a: torch.Tensor, b: torch.Tensor, prepared: Prepared, accumulation: DotAccumulation
) -> float:
    """The dot product of two CPU vectors summed in order, as ``accumulation`` says; with
    DotAccumulation.FORMAT, a and b must hold values of the prepared format already."""
    _require()
    if a.shape != b.shape or a.dim() != 1 or not (a.is_cpu and b.is_cpu):
        raise OptionError("dot_sequential needs two CPU vectors of one length")
    ad = a.to(torch.float64).contiguous()
    bd = b.to(torch.float64).contiguous()
    return _quantize.dot_seq(
        ad.data_ptr(),
        bd.data_ptr(),
        ad.numel(),
        prepared.ints,
        prepared.floats,
        0,
        int(accumulation),
    )


def has_ggml_kernel() -> bool:
    """Whether the built C kernel has the GGML quantizers (a build older than _ggml.c has not)."""
    return _c is not None and hasattr(_c, "ggml_quantize")


def ggml_quantize_blocks(x: torch.Tensor, out: torch.Tensor, dm: torch.Tensor, kind: int) -> int:
    """GGML blocks of 32 (x: contiguous CPU float32, (n, 32)) into out (uint8, (n, type_size))
    and dm (float32, (n, 2): d and m, to be rounded to float16 by the caller); kind indexes
    q8_0, q4_0, q4_1, q5_0, q5_1. Returns how many codes were clipped."""
    if not has_ggml_kernel():
        raise OptionError("the C kernel's GGML quantizers are not available here")
    n = x.shape[0]
    ok = x.dtype is torch.float32 and out.dtype is torch.uint8 and dm.dtype is torch.float32
    ok = ok and x.is_cpu and out.is_cpu and dm.is_cpu and x.shape == (n, 32)
    ok = ok and out.dim() == 2 and out.shape[0] == n and dm.shape == (n, 2) and 0 <= kind <= 4
    if not ok or not (x.is_contiguous() and out.is_contiguous() and dm.is_contiguous()):
        raise OptionError("ggml_quantize_blocks: contiguous CPU buffers of matching sizes")
    clipped: int = _quantize.ggml_quantize(
        x.data_ptr(), out.data_ptr(), dm.data_ptr(), n, kind, out.shape[1]
    )
    return clipped


def set_avx2(flag: bool) -> bool:
    """Allow (True) or forbid (False) the AVX2 kernels; returns the previous setting. The
    tests run both."""
    _require()
    return _quantize.set_avx2(flag)
