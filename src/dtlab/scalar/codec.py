"""Exact encode and decode of one value: the reference every faster path is tested against.

The exact rational is rounded once, directly to the target format (no detour through
float64), by locating the two codes that bracket it and choosing between them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from fractions import Fraction

from dtlab.errors import OptionError, ParseError
from dtlab.formats.descriptor import FloatFormat, Format, IntFormat
from dtlab.modes import Overflow, Rounding
from dtlab.values import ExactValue, Kind


class Outcome(enum.Enum):
    """What happened to a value on its way into a format."""

    EXACT = "exact"
    ROUNDED = "rounded"
    UNDERFLOW = "underflow"  # a non-zero value became zero (or, with no zero, the smallest value)
    SATURATED = "saturated"  # beyond the range (or inf): clamped to the extreme finite value
    OVERFLOW_INF = "overflow-inf"  # finite beyond the range, became inf
    OVERFLOW_NAN = "overflow-nan"  # beyond the range or inf, became NaN
    WRAPPED = "wrapped"  # integer kept its low bits
    NAN_LOST = "nan-lost"  # NaN in a format without NaN: stored as 0


@dataclass(frozen=True)
class Encoded:
    code: int
    outcome: Outcome


def resolve_modes(
    fmt: Format, rounding: Rounding | str, overflow: Overflow | str | None
) -> tuple[Rounding, Overflow]:
    """The rounding mode and overflow policy as enums, from members or from what a user typed
    (one parser for the whole API: "up", "sat", ...), with the overflow default resolved and
    combinations that mean nothing refused."""
    mode = Rounding.parse(rounding)
    policy = None if overflow is None else Overflow.parse(overflow)
    return mode, check_options(fmt, mode, policy)


def check_options(fmt: Format, rounding: Rounding, overflow: Overflow | None) -> Overflow:
    """Resolve the overflow default and refuse combinations that mean nothing."""
    if rounding is Rounding.STOCHASTIC:
        raise OptionError("stochastic rounding needs random bits: use the tensor kernels")
    if overflow is None:
        return Overflow.SATURATE if isinstance(fmt, IntFormat) else Overflow.INF_NAN
    if isinstance(fmt, IntFormat) and overflow is Overflow.INF_NAN:
        raise OptionError(f"{fmt.name} has no inf or NaN: use overflow saturate or wrap")
    if isinstance(fmt, FloatFormat) and overflow is Overflow.WRAP:
        raise OptionError(f"wrap-around is for integers; {fmt.name} can saturate or use inf-nan")
    return overflow


def decode(code: int, fmt: Format) -> ExactValue:
    """The exact value of a bit pattern.

    >>> from dtlab.formats import get_format
    >>> str(decode(0x7E, get_format("e4m3fn")))
    '448'
    """
    if not 0 <= code < (1 << fmt.bits):
        raise ParseError(f"code {code:#x} does not fit in the {fmt.bits} bits of {fmt.name}")
    if isinstance(fmt, IntFormat):
        if fmt.signed and code >> (fmt.bits - 1):
            return ExactValue.of(code - (1 << fmt.bits))
        return ExactValue.of(code)
    negative = bool(code & fmt.sign_mask)
    if fmt.is_nan_code(code):
        return ExactValue(Kind.NAN, negative)
    if fmt.is_inf_code(code):
        return ExactValue(Kind.INF, negative)
    return ExactValue(Kind.FINITE, negative, fmt.magnitude_of(code & ~fmt.sign_mask))


def encode(
    x: ExactValue,
    fmt: Format,
    *,
    rounding: Rounding | str = Rounding.NEAREST_EVEN,
    overflow: Overflow | str | None = None,
) -> Encoded:
    """The code an exact value becomes in fmt, and what happened on the way (modes as enums
    or as the strings the CLI takes)."""
    mode, policy = resolve_modes(fmt, rounding, overflow)
    if isinstance(fmt, IntFormat):
        return _encode_int(x, fmt, mode, policy)
    return _encode_float(x, fmt, mode, policy)


# ---- integers ---------------------------------------------------------------------------


def round_to_integer(x: Fraction, rounding: Rounding) -> int:
    floor = x.numerator // x.denominator
    rest = x - floor
    if rest == 0:
        return floor
    if rounding is Rounding.DOWN:
        return floor
    if rounding is Rounding.UP:
        return floor + 1
    if rounding is Rounding.TOWARD_ZERO:
        return floor + 1 if x < 0 else floor
    half = Fraction(1, 2)
    if rest != half:
        return floor + (rest > half)
    if rounding is Rounding.NEAREST_AWAY:
        return floor + 1 if x > 0 else floor
    return floor + (floor & 1)  # ties to even


def _encode_int(x: ExactValue, fmt: IntFormat, rounding: Rounding, policy: Overflow) -> Encoded:
    mask = (1 << fmt.bits) - 1
    if x.kind is Kind.NAN:
        return Encoded(0, Outcome.NAN_LOST)  # torch and numpy give 0 for NaN too
    if x.kind is Kind.INF:
        if policy is Overflow.WRAP:
            return Encoded(0, Outcome.WRAPPED)  # torch float->int8 gives 0 for ±inf
        return Encoded((fmt.min if x.negative else fmt.max) & mask, Outcome.SATURATED)
    n = round_to_integer(x.fraction, rounding)
    outcome = Outcome.EXACT if n == x.fraction else Outcome.ROUNDED
    if n > fmt.max or n < fmt.min:
        if policy is Overflow.WRAP:
            return Encoded(n & mask, Outcome.WRAPPED)
        n, outcome = (fmt.max if n > fmt.max else fmt.min), Outcome.SATURATED
    return Encoded(n & mask, outcome)


# ---- floats -----------------------------------------------------------------------------


def _floor_log2(a: Fraction) -> int:
    """floor(log2(a)) for a > 0, exactly."""
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if (a.numerator << -e if e < 0 else a.numerator) < (
        a.denominator << e if e > 0 else a.denominator
    ):
        e -= 1
    return e


def _floor_code(a: Fraction, fmt: FloatFormat) -> int:
    """The largest magnitude code whose (unbounded-grid) value is <= a, for a > 0, or -1."""
    man = fmt.man_bits
    e = _floor_log2(a)
    if fmt.subnormals and e < fmt.emin:  # subnormal range: code = multiple of the spacing
        steps = a / Fraction(2) ** (fmt.emin - man)
        return steps.numerator // steps.denominator
    e_field = e + fmt.bias
    if e_field < 0:
        return -1 if not fmt.has_zero else 0
    frac = a / Fraction(2) ** (e - man) - (1 << man)
    code = (e_field << man) | (frac.numerator // frac.denominator)
    if not fmt.subnormals and fmt.has_zero and code == 0:
        return 0  # [2^-bias, next) lies above the zero code
    return code


def _sign_aware(rounding: Rounding, negative: bool) -> Rounding:
    """The mode on magnitudes, where UP means away from zero and DOWN does not occur."""
    if rounding is Rounding.UP:
        return Rounding.TOWARD_ZERO if negative else Rounding.UP
    if rounding is Rounding.DOWN:
        return Rounding.UP if negative else Rounding.TOWARD_ZERO
    return rounding


def _choose(a: Fraction, lo: int, fmt: FloatFormat, mode: Rounding) -> int:
    """Pick lo or lo + 1 for magnitude a, where value(lo) <= a < value(lo + 1)."""
    if lo < 0:
        return 0  # below the smallest value of a format with no zero: its only neighbour
    v_lo = fmt.magnitude_of(lo)
    if v_lo == a:
        return lo
    if mode is Rounding.TOWARD_ZERO:
        return lo
    if mode is Rounding.UP:
        return lo + 1
    v_hi = fmt.magnitude_of(lo + 1)
    below, above = a - v_lo, v_hi - a
    if below != above:
        return lo if below < above else lo + 1
    if mode is Rounding.NEAREST_AWAY or fmt.man_bits == 0:
        # With no mantissa bits every significand is 1: ties go up, as torch and ml_dtypes do.
        return lo + 1
    return lo if lo % 2 == 0 else lo + 1


def _overflow_code(fmt: FloatFormat, policy: Overflow, toward_zero: bool) -> Encoded:
    if policy is Overflow.SATURATE or toward_zero:
        return Encoded(fmt.max_code, Outcome.SATURATED)
    if fmt.has_inf:
        return Encoded(fmt.inf_code or 0, Outcome.OVERFLOW_INF)
    if fmt.nan_code is not None:
        return Encoded(fmt.nan_code, Outcome.OVERFLOW_NAN)
    return Encoded(fmt.max_code, Outcome.SATURATED)


def _encode_float(x: ExactValue, fmt: FloatFormat, rounding: Rounding, policy: Overflow) -> Encoded:
    lowest = 0  # the zero code, or the smallest value when the format has no zero
    if x.kind is Kind.NAN:
        if fmt.nan_code is not None:
            return Encoded(fmt.nan_code, Outcome.EXACT)
        return Encoded(lowest, Outcome.NAN_LOST)
    if x.negative and not fmt.signed and not x.is_zero:  # below an unsigned range
        if policy is Overflow.INF_NAN and fmt.nan_code is not None:
            return Encoded(fmt.nan_code, Outcome.OVERFLOW_NAN)
        return Encoded(lowest, Outcome.SATURATED)
    sign = fmt.sign_mask if x.negative else 0
    mode = _sign_aware(rounding, x.negative)
    if x.kind is Kind.INF:
        if policy is Overflow.INF_NAN and fmt.has_inf:
            return Encoded(sign | (fmt.inf_code or 0), Outcome.EXACT)
        enc = _overflow_code(fmt, policy, toward_zero=False)
        return Encoded(enc.code if enc.code == fmt.nan_code else sign | enc.code, enc.outcome)
    a = x.magnitude
    if a == 0:
        if not fmt.has_zero:
            return Encoded(0, Outcome.ROUNDED)
        keep_sign = fmt.has_negative_zero
        return Encoded(sign if keep_sign else 0, Outcome.EXACT)
    lo = _floor_code(a, fmt)
    if lo >= fmt.max_code:
        lo = fmt.max_code  # the choice is between max and the first value past it
        if a >= fmt.magnitude_of(lo + 1):
            return _signed(_overflow_code(fmt, policy, mode is Rounding.TOWARD_ZERO), sign, fmt)
    code = _choose(a, lo, fmt, mode)
    if code > fmt.max_code:
        return _signed(_overflow_code(fmt, policy, toward_zero=False), sign, fmt)
    value = fmt.magnitude_of(code)
    if value == 0 or (lo < 0 and value > a):
        outcome = Outcome.UNDERFLOW
        if value == 0 and not fmt.has_negative_zero:
            sign = 0
    else:
        outcome = Outcome.EXACT if value == a else Outcome.ROUNDED
    return Encoded(sign | code, outcome)


def _signed(enc: Encoded, sign: int, fmt: FloatFormat) -> Encoded:
    if enc.outcome is Outcome.OVERFLOW_NAN:
        return enc  # one canonical NaN code, whatever the sign
    return Encoded(sign | enc.code, enc.outcome)
