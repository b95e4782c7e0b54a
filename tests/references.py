"""Helpers shared by the tests that hold dtlab against its references (ml_dtypes, torch, gfloat
and the exact scalar path): the reference tables, exact values, bit-pattern comparison and the
known differences between ml_dtypes' casts and dtlab.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import gfloat
import gfloat.formats
import ml_dtypes
import numpy as np
import torch
from gfloat import RoundMode

from dtlab.formats import NUMPY_NAMES, FloatFormat, Format, get_format
from dtlab.modes import Overflow, Rounding
from dtlab.scalar import decode, encode
from dtlab.values import ExactValue, Kind

# ---- formats ------------------------------------------------------------------------------


def float_format(name: str) -> FloatFormat:
    fmt = get_format(name)
    assert isinstance(fmt, FloatFormat)
    return fmt


def numpy_type(name: str) -> type:
    module, attr = NUMPY_NAMES[name].split(".")
    return getattr(np if module == "numpy" else ml_dtypes, attr)


# ---- the exact scalar path ----------------------------------------------------------------


def exact(v: float) -> ExactValue:
    """The exact value of a float (float32 or float64), with the signs of zero, inf and NaN."""
    negative = math.copysign(1.0, v) < 0
    if math.isnan(v):
        return ExactValue(Kind.NAN, negative)
    if math.isinf(v):
        return ExactValue(Kind.INF, negative)
    return ExactValue(Kind.FINITE, negative, abs(Fraction(v)))


def scalar_value(
    v: float,
    fmt: Format,
    rounding: Rounding = Rounding.NEAREST_EVEN,
    overflow: str | Overflow | None = None,
) -> float:
    """v through the exact scalar encoder and decoder, as a float."""
    policy = Overflow.parse(overflow) if overflow else None
    return float(decode(encode(exact(v), fmt, rounding=rounding, overflow=policy).code, fmt))


# ---- bit patterns -------------------------------------------------------------------------

INT_DTYPE = {torch.float64: torch.int64, torch.float32: torch.int32,
             torch.float16: torch.int16, torch.bfloat16: torch.int16}  # fmt: skip


def bits_of(t: torch.Tensor) -> torch.Tensor:
    """Bit patterns as signed integers of t's width, every NaN as -1 (a NaN pattern itself, so
    no value has it). Compare them only with the patterns of a tensor of the same dtype."""
    return torch.where(t.isnan(), -1, t.view(INT_DTYPE[t.dtype]))


def assert_same(x: torch.Tensor, got: torch.Tensor, want: torch.Tensor, what: str) -> None:
    """The same dtype, shape and bit patterns (NaN where NaN; NaN signs and payloads are not
    compared); a failure shows the first inputs that differ."""
    assert got.dtype == want.dtype and got.shape == want.shape, what
    bad = (bits_of(got) != bits_of(want)).nonzero().flatten()
    xi = x.view(INT_DTYPE[x.dtype])
    width = 2 * x.element_size()
    detail = [
        (f"{int(xi[i]) & ((1 << 4 * width) - 1):0{width}x}", float(got[i]), float(want[i]))
        for i in bad[:8].tolist()
    ]
    assert bad.numel() == 0, f"{what}: {bad.numel()} differ (input bits, got, want): {detail}"


# ---- known differences --------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """Inputs where a reference is known to give something else than dtlab, and what it gives.

    ``where(x, d)`` selects them (x the float inputs, d dtlab's results); ``value(x, d)``
    gives the reference's results (only the selected ones are used)."""

    why: str
    where: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    value: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def const(v: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    return lambda x, d: torch.full_like(d, v)


E8M0_MIN = 2.0**-127


def e8m0_subnormal(x: torch.Tensor) -> torch.Tensor:
    return (x > E8M0_MIN) & (x < 1.5 * E8M0_MIN)


# Reading a float32 subnormal (exponent field 0), torch's and ml_dtypes' e8m0 casts round every
# value in (2**-127, 1.5 * 2**-127) up to 2**-126; the nearest e8m0 value is 2**-127.
# checked: 0x00400001 (2**-127 + 2**-149) -> code 01 in both.
E8M0_SUBNORMAL = Rule(
    "e8m0 from a float32 subnormal in (2**-127, 1.5 * 2**-127): references give 2**-126",
    lambda x, d: e8m0_subnormal(x),
    const(2.0**-126),
)

# ---- ml_dtypes ----------------------------------------------------------------------------

ML_FLOATS = ["float16", "bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e4m3b11fnuz",
             "float8_e4m3", "float8_e5m2", "float8_e5m2fnuz", "float8_e3m4", "float8_e8m0fnu",
             "float6_e2m3fn", "float6_e3m2fn", "float4_e2m1fn"]  # fmt: skip
ML_INTS = ["int1", "int2", "int4", "uint1", "uint2", "uint4"]

# no NaN in fp6/fp4: dtlab stores +0; ml_dtypes gives -0 for a NaN whose sign bit is clear
# (and +0, as dtlab, for one whose sign bit is set). checked on every NaN payload here.
ML_NAN_TO_NEG_ZERO = Rule(
    "NaN into fp6/fp4: ml_dtypes gives -0 (dtlab +0)",
    lambda x, d: x.isnan() & ~torch.signbit(x),
    const(-0.0),
)
# ml_dtypes' float casts under dtlab's default policy (inf-nan; fp6/fp4 saturate): where they
# differ from dtlab (FORMATS.md section 2)
ML_RULES: dict[str, list[Rule]] = {
    "float8_e8m0fnu": [
        Rule("e8m0 from ±0: ml_dtypes gives NaN, dtlab the smallest value 2**-127",
             lambda x, d: x == 0, const(math.nan)),
        E8M0_SUBNORMAL,
    ],
    "float6_e2m3fn": [ML_NAN_TO_NEG_ZERO],
    "float6_e3m2fn": [ML_NAN_TO_NEG_ZERO],
    "float4_e2m1fn": [ML_NAN_TO_NEG_ZERO],
}  # fmt: skip


def ml_cast(x: torch.Tensor, name: str) -> torch.Tensor:
    """x (float32) cast to ml_dtypes' type for name (numpy's for float16) and back to float32."""
    dtype = np.float16 if name == "float16" else getattr(ml_dtypes, name)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow and NaN casts warn
        return torch.from_numpy(x.numpy().astype(dtype).astype(np.float32))


# ---- gfloat -------------------------------------------------------------------------------

_GF = gfloat.formats
GFLOAT_INFO = {
    "float16": _GF.format_info_binary16,
    "bfloat16": _GF.format_info_bfloat16,
    "float8_e4m3fn": _GF.format_info_ocp_e4m3,
    "float8_e5m2": _GF.format_info_ocp_e5m2,
    "float6_e2m3fn": _GF.format_info_ocp_e2m3,
    "float6_e3m2fn": _GF.format_info_ocp_e3m2,
    "float4_e2m1fn": _GF.format_info_ocp_e2m1,
    "float8_e8m0fnu": _GF.format_info_ocp_e8m0,
}
# gfloat's Stochastic* modes take caller-supplied random bits (srbits) and round the dropped
# fraction to srnumbits bits first; dtlab draws its own 32 bits per element (splitmix64), so
# the two cannot be fed the same randomness: only the deterministic modes are compared.
GFLOAT_MODES = {
    RoundMode.TowardZero: Rounding.TOWARD_ZERO,
    RoundMode.TowardPositive: Rounding.UP,
    RoundMode.TowardNegative: Rounding.DOWN,
    RoundMode.TiesToEven: Rounding.NEAREST_EVEN,
    RoundMode.TiesToAway: Rounding.NEAREST_AWAY,
}
