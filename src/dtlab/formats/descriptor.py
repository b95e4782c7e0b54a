"""Format descriptors: only the defining fields; everything else is derived exactly.

A float format is laid out as [sign][exponent][mantissa] from the most significant bit.
An integer format is two's complement (signed) or plain binary (unsigned).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property

from dtlab.errors import FormatSpecError

MAX_INT_BITS = 64
MAX_EXP_BITS = 15  # enough for float64 (11) with room; bounds 2**bias to a sane size
MAX_MAN_BITS = 112  # float128's mantissa; codes stay Python ints


class NanEncoding(enum.Enum):
    """Which codes of a float format are NaN."""

    IEEE = "ieee"  # exponent all ones, mantissa non-zero (float32, float16, e5m2, e3m4)
    ALL_ONES = "all-ones"  # only exponent and mantissa all ones, per sign (e4m3fn, e8m0fnu)
    NEG_ZERO = "neg-zero"  # only the code of -0, 0x80 in 8 bits (the fnuz formats)
    NONE = "none"  # no NaN at all (fp6, fp4)


@dataclass(frozen=True)
class IntFormat:
    """An integer format: two's complement if signed, plain binary if not.

    >>> IntFormat(8, signed=True).max
    127
    """

    bits: int
    signed: bool = True
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.bits, int) or not 1 <= self.bits <= MAX_INT_BITS:
            raise FormatSpecError(f"integer width must be 1..{MAX_INT_BITS} bits, got {self.bits}")
        if not self.name:
            object.__setattr__(self, "name", f"{'' if self.signed else 'u'}int{self.bits}")

    kind = "int"

    @property
    def container_bits(self) -> int:
        """Storage per value when not packed: the next of 8, 16, 32, 64 bits."""
        return _container(self.bits)

    @property
    def min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def code_count(self) -> int:
        return 1 << self.bits

    @property
    def finite_values(self) -> int:
        return 1 << self.bits

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format, described by its defining fields.

    ``subnormals=False`` means the exponent field 0 holds normal numbers (as in
    float8_e8m0fnu), so such a format has no zero. ``has_inf`` and ``nan`` are
    coupled: infinities take the IEEE exponent-all-ones codes, so they exist only
    with IEEE NaNs. Negative zero exists in a signed format unless its code is NaN.

    >>> f = FloatFormat(4, 3, 7, has_inf=False, nan=NanEncoding.ALL_ONES)
    >>> f.max, f.smallest_subnormal
    (Fraction(448, 1), Fraction(1, 512))
    """

    exp_bits: int
    man_bits: int
    bias: int
    signed: bool = True
    has_inf: bool = True
    nan: NanEncoding = NanEncoding.IEEE
    subnormals: bool = True
    name: str = field(default="", compare=False)
    # Some formats live in a wider container (tfloat32 in 32 bits).
    container_bits: int = field(default=0, compare=False)

    kind = "float"

    def __post_init__(self) -> None:
        if not isinstance(self.exp_bits, int) or not 1 <= self.exp_bits <= MAX_EXP_BITS:
            raise FormatSpecError(f"exponent bits must be 1..{MAX_EXP_BITS}, got {self.exp_bits}")
        if not isinstance(self.man_bits, int) or not 0 <= self.man_bits <= MAX_MAN_BITS:
            raise FormatSpecError(f"mantissa bits must be 0..{MAX_MAN_BITS}, got {self.man_bits}")
        limit = 1 << (self.exp_bits + 1)
        if not isinstance(self.bias, int) or abs(self.bias) > limit:
            raise FormatSpecError(f"bias must be an integer within ±{limit}, got {self.bias}")
        if self.has_inf != (self.nan is NanEncoding.IEEE):
            raise FormatSpecError(
                "infinities take the exponent-all-ones codes, so they come with IEEE NaNs: "
                "use inf with nan=ieee, or no inf with nan=all-ones, neg-zero or none"
            )
        if self.nan is NanEncoding.NEG_ZERO and not self.signed:
            raise FormatSpecError("an unsigned format has no -0 code to use as NaN")
        if self.has_inf and self.exp_bits < 2:
            raise FormatSpecError("IEEE infinities need at least 2 exponent bits")
        if self.nan is NanEncoding.IEEE and self.man_bits == 0:
            raise FormatSpecError("IEEE NaNs need at least 1 mantissa bit")
        if not self.name:
            object.__setattr__(self, "name", _generated_name(self))
        if not self.container_bits:
            object.__setattr__(self, "container_bits", _container(self.bits))

    # ---- layout -------------------------------------------------------------
    @property
    def bits(self) -> int:
        return int(self.signed) + self.exp_bits + self.man_bits

    @property
    def sign_bits(self) -> int:
        return int(self.signed)

    @property
    def exp_max_field(self) -> int:
        return (1 << self.exp_bits) - 1

    @property
    def man_max_field(self) -> int:
        return (1 << self.man_bits) - 1

    @property
    def code_count(self) -> int:
        return 1 << self.bits

    @property
    def sign_mask(self) -> int:
        return (1 << (self.bits - 1)) if self.signed else 0

    @property
    def has_nan(self) -> bool:
        return self.nan is not NanEncoding.NONE

    @property
    def has_negative_zero(self) -> bool:
        return self.signed and self.has_zero and self.nan is not NanEncoding.NEG_ZERO

    @property
    def has_zero(self) -> bool:
        """Without subnormals, exponent-0 codes are normal; code 0 stays zero if there is a
        mantissa (gfloat's rule); with no mantissa bits it is 2**-bias (float8_e8m0fnu)."""
        return self.subnormals or self.man_bits > 0

    # ---- special codes (magnitude part, sign excluded) -----------------------
    @cached_property
    def max_code(self) -> int:
        """The code (without sign) of the largest finite value."""
        top = (self.exp_max_field << self.man_bits) | self.man_max_field
        if self.nan is NanEncoding.IEEE:
            return ((self.exp_max_field - 1) << self.man_bits) | self.man_max_field
        if self.nan is NanEncoding.ALL_ONES:
            return top - 1
        return top

    def is_nan_code(self, code: int) -> bool:
        mag = code & ~self.sign_mask
        if self.nan is NanEncoding.IEEE:
            return (mag >> self.man_bits) == self.exp_max_field and (mag & self.man_max_field) != 0
        if self.nan is NanEncoding.ALL_ONES:
            return mag == (self.exp_max_field << self.man_bits) | self.man_max_field
        if self.nan is NanEncoding.NEG_ZERO:
            return code == self.sign_mask
        return False

    def is_inf_code(self, code: int) -> bool:
        return self.has_inf and (code & ~self.sign_mask) == self.exp_max_field << self.man_bits

    @property
    def nan_code(self) -> int | None:
        """The canonical quiet NaN code dtlab writes (positive, top mantissa bit set)."""
        if self.nan is NanEncoding.IEEE:
            return (self.exp_max_field << self.man_bits) | (1 << (self.man_bits - 1))
        if self.nan is NanEncoding.ALL_ONES:
            return (self.exp_max_field << self.man_bits) | self.man_max_field
        if self.nan is NanEncoding.NEG_ZERO:
            return self.sign_mask
        return None

    @property
    def inf_code(self) -> int | None:
        return self.exp_max_field << self.man_bits if self.has_inf else None

    # ---- derived values (exact) ---------------------------------------------
    @property
    def emin(self) -> int:
        """Unbiased exponent of the smallest normal number."""
        return (1 if self.subnormals else 0) - self.bias

    @property
    def emax(self) -> int:
        """Unbiased exponent of the largest finite number."""
        return (self.max_code >> self.man_bits) - self.bias

    def magnitude_of(self, mag_code: int) -> Fraction:
        """Exact value of a finite code without its sign bit (codes past max_code extend
        the grid as if the exponent were unbounded)."""
        e_field, m = mag_code >> self.man_bits, mag_code & self.man_max_field
        if e_field == 0 and (self.subnormals or (m == 0 and self.man_bits > 0)):
            return _pow2(1 - self.bias - self.man_bits) * m
        return _pow2(e_field - self.bias - self.man_bits) * ((1 << self.man_bits) + m)

    @cached_property
    def max(self) -> Fraction:
        return self.magnitude_of(self.max_code)

    @property
    def min(self) -> Fraction:
        """The lowest finite value (numpy's ``finfo.min``): -max, or the smallest if unsigned."""
        if self.signed:
            return -self.max
        return self.magnitude_of(0)

    @property
    def smallest_normal(self) -> Fraction:
        """Smallest positive normal value (numpy's ``finfo.tiny``)."""
        if self.subnormals:
            return _pow2(self.emin)
        return self.smallest_positive

    @property
    def tiny(self) -> Fraction:
        return self.smallest_normal

    @property
    def smallest_subnormal(self) -> Fraction:
        """Smallest positive value (the smallest normal when there are no subnormals)."""
        return self.smallest_positive

    @property
    def smallest_positive(self) -> Fraction:
        return self.magnitude_of(1 if self.has_zero else 0)

    @property
    def eps(self) -> Fraction:
        """Distance from 1 to the next larger value: 2**-man_bits where 1 is a normal number;
        where it is a subnormal (emin > 0, as in bias-0 formats such as e1m6fn) the subnormal
        spacing 2**(emin - man_bits)."""
        if self.subnormals and self.emin > 0:
            return _pow2(self.emin - self.man_bits)
        return _pow2(-self.man_bits)

    @property
    def epsneg(self) -> Fraction:
        """Distance from 1 to the next smaller value (by formula when 1 is not representable)."""
        if self.emin < 0 or not self.subnormals:
            return _pow2(-self.man_bits - 1)
        # 1 is the smallest normal: below it lies the subnormal spacing, or zero
        return self.eps if self.man_bits > 0 else Fraction(1)

    @property
    def machep(self) -> int:
        return -self.man_bits

    @property
    def negep(self) -> int:
        return _exact_log2(self.epsneg)

    @property
    def minexp(self) -> int:
        return self.emin

    @property
    def maxexp(self) -> int:
        """The smallest power of two that overflows (numpy's ``finfo.maxexp``)."""
        return self.emax + 1

    @property
    def precision(self) -> int:
        """Decimal digits of precision: floor(-log10(eps)), as numpy defines it."""
        p = 0
        while Fraction(1, 10 ** (p + 1)) >= self.eps:
            p += 1
        return p

    @property
    def resolution(self) -> Fraction:
        return Fraction(1, 10**self.precision)

    @property
    def nan_codes(self) -> int:
        signs = 2 if self.signed else 1
        if self.nan is NanEncoding.IEEE:
            return signs * self.man_max_field
        if self.nan is NanEncoding.ALL_ONES:
            return signs
        return 1 if self.nan is NanEncoding.NEG_ZERO else 0

    @property
    def inf_codes(self) -> int:
        return (2 if self.signed else 1) if self.has_inf else 0

    @property
    def finite_codes(self) -> int:
        return self.code_count - self.nan_codes - self.inf_codes

    @property
    def finite_values(self) -> int:
        """Distinct finite values (+0 and -0 count once)."""
        return self.finite_codes - int(self.has_negative_zero)

    @property
    def dynamic_range_binades(self) -> float:
        """log2(max / smallest positive), as a float (an approximation of an exact log)."""
        r = self.max / self.smallest_positive
        return math.log2(r.numerator) - math.log2(r.denominator)

    def __str__(self) -> str:
        return self.name


Format = IntFormat | FloatFormat


def _pow2(e: int) -> Fraction:
    return Fraction(1 << e) if e >= 0 else Fraction(1, 1 << -e)


def _exact_log2(x: Fraction) -> int:
    if x.numerator == 1 and x.denominator & (x.denominator - 1) == 0:
        return -(x.denominator.bit_length() - 1)
    if x.denominator == 1 and x.numerator & (x.numerator - 1) == 0:
        return x.numerator.bit_length() - 1
    raise ValueError(f"{x} is not a power of two")


def _container(bits: int) -> int:
    size = 8
    while size < bits:
        size *= 2
    return size


def default_bias(exp_bits: int, nan: NanEncoding) -> int:
    """2**(e-1) - 1, one more for the fnuz formats (the ml_dtypes convention)."""
    return (1 << (exp_bits - 1)) - 1 + (1 if nan is NanEncoding.NEG_ZERO else 0)


def style_nan(style: str, bits: int) -> NanEncoding:
    """The NaN encoding a short-spec suffix implies.

    ``fn`` (finite) puts NaN at the all-ones code from 8 bits up (ml_dtypes) and means
    no NaN at all below 8 bits (the OCP MX fp6/fp4 element formats).
    """
    if style == "fnuz":
        return NanEncoding.NEG_ZERO
    if style == "fn":
        return NanEncoding.ALL_ONES if bits >= 8 else NanEncoding.NONE
    return NanEncoding.IEEE


def _generated_name(f: FloatFormat) -> str:
    """ml_dtypes-style name (float8_e4m3b11fnuz), with long-form overrides after colons."""
    style = {NanEncoding.IEEE: "", NanEncoding.NEG_ZERO: "fnuz"}.get(f.nan, "fn")
    bias = "" if f.bias == default_bias(f.exp_bits, f.nan) else f"b{f.bias}"
    name = f"float{f.bits}_e{f.exp_bits}m{f.man_bits}{bias}{style}{'' if f.signed else 'u'}"
    if f.nan is not style_nan(style, f.bits):
        name += f":nan={f.nan.value}"
    if f.subnormals != (f.man_bits > 0):
        name += f":subnormals={'yes' if f.subnormals else 'no'}"
    return name
