"""The numbers a kernel needs for one (format, rounding, overflow, subnormals) choice.

Every special case is decided here, once, from the exact scalar path, so that the C kernel
and the pure-torch kernel only apply a table of values: what NaN, ±inf, a negative input to
an unsigned format and an overflow become.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import torch

from dtlab.errors import OptionError
from dtlab.formats import FloatFormat, Format, IntFormat, get_format
from dtlab.modes import Overflow, Rounding, Subnormals
from dtlab.scalar.codec import check_options, decode, encode
from dtlab.values import NAN, ExactValue, Kind


class RoundingCode(enum.IntEnum):
    """The number of each rounding mode in KernelParams.rounding (and in the C kernel's
    ROUNDING_MODES, which a test holds to this list)."""

    NEAREST_EVEN = 0
    NEAREST_AWAY = 1
    TOWARD_ZERO = 2
    UP = 3
    DOWN = 4
    STOCHASTIC = 5

    @classmethod
    def of(cls, mode: Rounding) -> RoundingCode:
        return cls[mode.name]


class LowRegion(enum.IntEnum):
    """What lies below a float format's smallest positive value v1 (KernelParams.low_region)."""

    NONE = 0  # subnormals: the quantum continues down to v1
    ZERO_OR_V1 = 1  # no subnormals: only 0 and v1
    V1_ONLY = 2  # no subnormals and no zero: only v1


@dataclass(frozen=True)
class KernelParams:
    is_int: bool
    man_bits: int
    emin: int
    low_region: LowRegion
    neg_zero: bool
    rounding: RoundingCode
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
        """The two parameter tuples the C kernel reads, field by field in INT_FIELDS and
        FLOAT_FIELDS order."""
        ints = tuple(int(getattr(self, name)) for name in INT_FIELDS)
        floats = tuple(float(getattr(self, name)) for name in FLOAT_FIELDS)
        return ints, floats


# The order in which the C kernel reads KernelParams (PARAM_INTS and PARAM_FLOATS in
# _kernel.h); fits_float32 only chooses the lanes. A test holds both sides to these lists.
INT_FIELDS = (
    "is_int",
    "man_bits",
    "emin",
    "low_region",
    "neg_zero",
    "rounding",
    "flush",
    "saturate",
    "signed",
    "int_bits",
    "wrap",
)
FLOAT_FIELDS = (
    "max_value",
    "v1",
    "tiny",
    "overflow_value",
    "nan_out",
    "pos_inf_out",
    "neg_inf_out",
    "neg_out",
    "int_min",
    "int_max",
)


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
    code = RoundingCode.of(rounding)
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
            is_int=True,
            man_bits=0,
            emin=0,
            low_region=LowRegion.NONE,
            neg_zero=False,
            rounding=code,
            flush=False,
            saturate=True,
            signed=fmt.signed,
            int_bits=fmt.bits,
            wrap=wrap,
            max_value=big,
            v1=1.0,
            tiny=1.0,
            overflow_value=big,
            neg_out=0.0,
            int_min=-big if wrap else float(fmt.min),
            int_max=big if wrap else float(fmt.max),
            fits_float32=fmt.bits <= 24,
            **specials,
        )
    return _float_params(fmt, code, policy, subnormals, specials)


def _float_params(
    fmt: FloatFormat,
    code: RoundingCode,
    policy: Overflow,
    subnormals: Subnormals,
    specials: dict[str, float],
) -> KernelParams:
    if fmt.emin - fmt.man_bits < -1074 or fmt.emax > 1023:
        raise OptionError(
            f"{fmt.name} reaches beyond float64: the tensor kernels cannot emulate it"
        )
    if fmt.subnormals:
        low_region = LowRegion.NONE
    else:
        low_region = LowRegion.ZERO_OR_V1 if fmt.has_zero else LowRegion.V1_ONLY
    # what a finite value past the top becomes when rounding away from zero
    over = encode(ExactValue.of(fmt.max * 2), fmt, rounding=Rounding.UP, overflow=policy)
    neg = encode(ExactValue.of(-fmt.smallest_positive), fmt, overflow=policy)
    # float32 lanes read a float32 subnormal's exponent as -127: exact when emin >= -127
    fits32 = fmt.emin >= -127 and fmt.emin - fmt.man_bits >= -149 and fmt.emax <= 127
    return KernelParams(
        is_int=False,
        man_bits=fmt.man_bits,
        emin=fmt.emin,
        low_region=low_region,
        neg_zero=fmt.has_negative_zero,
        rounding=code,
        flush=subnormals is Subnormals.FLUSH,
        saturate=policy is Overflow.SATURATE,
        signed=fmt.signed,
        int_bits=fmt.bits,
        wrap=False,
        max_value=float(fmt.max),
        v1=float(fmt.smallest_positive),
        tiny=float(fmt.smallest_normal),
        overflow_value=abs(_value(over.code, fmt)),
        neg_out=_value(neg.code, fmt),
        int_min=0.0,
        int_max=0.0,
        fits_float32=fits32,
        **specials,
    )


# ---- one call's options, prepared once ----------------------------------------------------


def as_format(fmt: Any) -> Format:
    """A format given as itself, or as anything get_format reads (a name, spec or dtype)."""
    return fmt if isinstance(fmt, (IntFormat, FloatFormat)) else get_format(fmt)


class Prepared(NamedTuple):
    """A call's options resolved: the format, its kernel parameters and their C tuples."""

    fmt: Format
    params: KernelParams
    ints: tuple[int, ...]
    floats: tuple[float, ...]


@lru_cache(maxsize=1024)
def prepare(fmt: Any, rounding: Any, overflow: Any, subnormals: Any) -> Prepared:
    """Everything a call needs that depends only on its options, computed once."""
    f = as_format(fmt)
    mode = Rounding.parse(rounding)
    policy = Overflow.parse(overflow) if overflow is not None else None
    p = kernel_params(f, mode, policy, Subnormals.parse(subnormals))
    ints, floats = p.c_args()
    return Prepared(fmt=f, params=p, ints=ints, floats=floats)


def seed_for(rounding: RoundingCode, generator: torch.Generator | None) -> int:
    """The seed of one stochastic rounding call, drawn from generator; 0 for other modes."""
    if rounding != RoundingCode.STOCHASTIC:
        return 0
    device = generator.device if generator is not None else "cpu"
    return int(torch.randint(0, 2**62, (1,), generator=generator, device=device).item())
