"""The numbers a kernel needs for one (format, rounding, overflow, subnormals) choice.

Every special case is decided here, once, from the exact scalar path, so that the C kernel
and the pure-torch kernel only apply a table of values: what NaN, ±inf, a negative input to
an unsigned format and an overflow become.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from dtlab.errors import OptionError
from dtlab.formats.descriptor import FloatFormat, Format, IntFormat
from dtlab.modes import Overflow, Rounding, Subnormals
from dtlab.scalar.codec import check_options, decode, encode
from dtlab.values import NAN, ExactValue, Kind

ROUNDING_CODE = {
    Rounding.NEAREST_EVEN: 0,
    Rounding.NEAREST_AWAY: 1,
    Rounding.TOWARD_ZERO: 2,
    Rounding.UP: 3,
    Rounding.DOWN: 4,
    Rounding.STOCHASTIC: 5,
}


@dataclass(frozen=True)
class KernelParams:
    is_int: bool
    man_bits: int
    emin: int
    low_region: int  # 0 none, 1: only 0 and v1 below v1, 2: only v1 below v1 (no zero)
    neg_zero: bool
    rounding: int
    flush: bool
    saturate: bool
    signed: bool
    int_bits: int
    wrap: bool
    max_value: float
    v1: float  # smallest positive value
    tiny: float  # smallest normal value (flush threshold)
    overflow_value: float  # what a finite overflow becomes (magnitude; NaN or inf or max)
    nan_out: float
    pos_inf_out: float
    neg_inf_out: float
    neg_out: float  # a negative input to an unsigned float format
    int_min: float
    int_max: float
    fits_float32: bool  # every value of the format is a float32: the 32-bit lanes are exact

    def c_args(self) -> tuple[tuple[int, ...], tuple[float, ...]]:
        ints = (int(self.is_int), self.man_bits, self.emin, self.low_region, int(self.neg_zero),
                self.rounding, int(self.flush), int(self.saturate), int(self.signed),
                self.int_bits, int(self.wrap))  # fmt: skip
        floats = (self.max_value, self.v1, self.tiny, self.overflow_value, self.nan_out,
                  self.pos_inf_out, self.neg_inf_out, self.neg_out, self.int_min,
                  self.int_max)  # fmt: skip
        return ints, floats


def _value(code: int, fmt: Format) -> float:
    return float(decode(code, fmt))


def _outcome_value(x: ExactValue, fmt: Format, rounding: Rounding, overflow: Overflow) -> float:
    """What the scalar reference makes of x: the single source of truth for special inputs."""
    mode = Rounding.NEAREST_EVEN if rounding is Rounding.STOCHASTIC else rounding
    return _value(encode(x, fmt, rounding=mode, overflow=overflow).code, fmt)


@lru_cache(maxsize=512)
def kernel_params(
    fmt: Format, rounding: Rounding, overflow: Overflow | None, subnormals: Subnormals
) -> KernelParams:
    policy = check_options(fmt, Rounding.NEAREST_EVEN, overflow)
    code = ROUNDING_CODE[rounding]
    inf, ninf = ExactValue(Kind.INF, False), ExactValue(Kind.INF, True)
    specials = dict(
        nan_out=_outcome_value(NAN, fmt, rounding, policy),
        pos_inf_out=_outcome_value(inf, fmt, rounding, policy),
        neg_inf_out=_outcome_value(ninf, fmt, rounding, policy),
    )
    if isinstance(fmt, IntFormat):
        wrap = policy is Overflow.WRAP
        big = float("inf")
        return KernelParams(
            True, 0, 0, 0, False, code, False, True, fmt.signed, fmt.bits, wrap,
            big, 1.0, 1.0, big, neg_out=0.0, int_min=-big if wrap else float(fmt.min),
            int_max=big if wrap else float(fmt.max), fits_float32=fmt.bits <= 24, **specials,
        )  # fmt: skip
    return _float_params(fmt, code, policy, subnormals, specials)


def _float_params(
    fmt: FloatFormat,
    code: int,
    policy: Overflow,
    subnormals: Subnormals,
    specials: dict[str, float],
) -> KernelParams:
    if fmt.emin - fmt.man_bits < -1074 or fmt.emax > 1023:
        raise OptionError(
            f"{fmt.name} reaches beyond float64: the tensor kernels cannot emulate it"
        )
    low_region = 0 if fmt.subnormals else (1 if fmt.has_zero else 2)
    # what a finite value past the top becomes when rounding away from zero
    over = encode(ExactValue.of(fmt.max * 2), fmt, rounding=Rounding.UP, overflow=policy)
    neg = encode(ExactValue.of(-fmt.smallest_positive), fmt, overflow=policy)
    # float32 lanes read a float32 subnormal's exponent as -127: exact when emin >= -127
    fits32 = fmt.emin >= -127 and fmt.emin - fmt.man_bits >= -149 and fmt.emax <= 127
    return KernelParams(
        False, fmt.man_bits, fmt.emin, low_region, fmt.has_negative_zero, code,
        subnormals is Subnormals.FLUSH, policy is Overflow.SATURATE, fmt.signed, fmt.bits, False,
        float(fmt.max), float(fmt.smallest_positive), float(fmt.smallest_normal),
        abs(_value(over.code, fmt)), neg_out=_value(neg.code, fmt), int_min=0.0, int_max=0.0,
        fits_float32=fits32, **specials,
    )  # fmt: skip
