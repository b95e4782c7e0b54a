"""Exact values (a rational, ±0, ±inf or NaN), how users write them, and exact decimals."""

from __future__ import annotations

import decimal
import enum
import re
from dataclasses import dataclass
from fractions import Fraction

from dtlab.errors import ParseError

MAX_EXPONENT = 20_000  # 10**20000 still rounds instantly; 1e999999999 would exhaust memory
MAX_DIGITS = 20_000


class Kind(enum.Enum):
    FINITE = "finite"
    INF = "inf"
    NAN = "nan"


@dataclass(frozen=True)
class ExactValue:
    """A number as written or as stored: sign and magnitude kept apart so -0 exists.

    >>> parse_value("-1/3").fraction
    Fraction(-1, 3)
    """

    kind: Kind
    negative: bool
    magnitude: Fraction = Fraction(0)

    @classmethod
    def of(cls, x: Fraction | int) -> ExactValue:
        x = Fraction(x)
        return cls(Kind.FINITE, x < 0, abs(x))

    @property
    def is_finite(self) -> bool:
        return self.kind is Kind.FINITE

    @property
    def is_nan(self) -> bool:
        return self.kind is Kind.NAN

    @property
    def is_zero(self) -> bool:
        return self.kind is Kind.FINITE and self.magnitude == 0

    @property
    def fraction(self) -> Fraction:
        """The signed rational (-0 gives 0); only for finite values."""
        if self.kind is not Kind.FINITE:
            raise ValueError(f"{self} is not finite")
        return -self.magnitude if self.negative else self.magnitude

    def __float__(self) -> float:
        if self.kind is Kind.NAN:
            return float("nan")
        if self.kind is Kind.INF:
            return float("-inf") if self.negative else float("inf")
        sign = -1.0 if self.negative else 1.0
        try:
            return sign * float(self.magnitude)
        except OverflowError:
            return sign * float("inf")

    def __str__(self) -> str:
        """Exact and parseable: a decimal when it terminates, else p/q; inf, -inf, nan, -0."""
        if self.kind is Kind.NAN:
            return "nan"
        sign = "-" if self.negative else ""
        if self.kind is Kind.INF:
            return f"{sign}inf"
        return sign + exact_text(self.magnitude)


NAN = ExactValue(Kind.NAN, False)

# ASCII digits only ([0-9], not \d, which takes Arabic-Indic and Devanagari digits too)
_DECIMAL = re.compile(r"([0-9]*)(?:\.([0-9]*))?(?:e([+-]?[0-9]+))?")
_HEX = re.compile(r"0x([0-9a-f]*)(?:\.([0-9a-f]*))?(?:p([+-]?[0-9]+))?")
_POWER = re.compile(r"2(?:\*\*|\^)(?:([+-]?[0-9]+)|\(([+-]?[0-9]+)\))")
_FRACTION = re.compile(r"([^/]+)/([^/]+)")


def parse_value(text: str) -> ExactValue:
    """Read a number exactly: ``0.1``, ``-1e-3``, ``1/3``, ``0x1.8p2``, ``2^-24``, ``inf``, ``-0``.

    >>> parse_value("0x1.8p2").fraction
    Fraction(6, 1)
    """
    raw = text
    # U+2212, the minus sign dtlab itself prints, reads as "-"
    s = text.strip().lower().replace("_", "").replace("\u2212", "-")
    if len(s) > MAX_DIGITS:
        raise ParseError(f"number too long ({len(s)} characters; at most {MAX_DIGITS})")
    negative = s.startswith("-")
    if s[:1] in "+-":
        s = s[1:]
    if s in ("inf", "infinity"):
        return ExactValue(Kind.INF, negative)
    if s == "nan":
        return ExactValue(Kind.NAN, negative)
    if m := _FRACTION.fullmatch(s):
        num, den = _unsigned(m.group(1), raw), _unsigned(m.group(2), raw)
        if den == 0:
            raise ParseError(f"{raw.strip()!r}: division by zero")
        return ExactValue(Kind.FINITE, negative, num / den)
    return ExactValue(Kind.FINITE, negative, _unsigned(s, raw))


def _unsigned(s: str, raw: str) -> Fraction:
    s = s.strip()
    if m := _HEX.fullmatch(s):
        whole, frac, exp = m.group(1), m.group(2) or "", m.group(3)
        if not whole + frac:
            raise ParseError(f"{raw.strip()!r}: a hex float needs digits, as in 0x1.8p2")
        return Fraction(int(whole + frac, 16), 16 ** len(frac)) * _pow(2, exp, raw)
    if m := _POWER.fullmatch(s):
        return _pow(2, m.group(1) or m.group(2), raw)
    m = _DECIMAL.fullmatch(s)
    if not m or not (m.group(1) or m.group(2)):
        raise ParseError(
            f"cannot read {raw.strip()!r} as a number "
            "(write 0.1, -1e-3, 1/3, 0x1.8p2, 2^-24, inf, -inf, nan or -0)"
        )
    whole, frac, exp = m.group(1), m.group(2) or "", m.group(3)
    return Fraction(_decimal_int(whole + frac or "0"), 10 ** len(frac)) * _pow(10, exp, raw)


def _decimal_int(digits: str) -> int:
    """int() of a string of decimal digits of any length up to MAX_DIGITS: past 4,300 digits
    Python's int() refuses, decimal does not (and the length is already bounded)."""
    return int(digits) if len(digits) <= 4000 else int(decimal.Decimal(digits))


def _pow(base: int, exp: str | None, raw: str) -> Fraction:
    if exp is None:
        return Fraction(1)
    e = int(exp)
    if abs(e) > MAX_EXPONENT:
        raise ParseError(f"{raw.strip()!r}: exponent {e} is beyond ±{MAX_EXPONENT}")
    return Fraction(base) ** e


def int_digits(n: int) -> str:
    """The decimal digits of an integer of any size. Python refuses ``str()`` of an int of
    more than 4,300 digits (a guard against quadratic time on untrusted input); dtlab's
    inputs are bounded (MAX_EXPONENT, the spec grammar's 15 exponent bits: at most ~20,000
    digits), so such numbers are printed in full, through ``decimal`` (no such limit).

    >>> len(int_digits(10**5000))
    5001
    """
    if n.bit_length() < 14_000:  # about 4,200 digits: str() is allowed
        return str(n)
    return str(decimal.Decimal(n))


def exact_decimal(x: Fraction) -> str | None:
    """The full decimal expansion of x if it terminates (denominator 2^a 5^b), else None.

    >>> exact_decimal(Fraction(1, 1024))
    '0.0009765625'
    """
    sign = "-" if x < 0 else ""
    num, den = abs(x.numerator), x.denominator
    twos = (den & -den).bit_length() - 1
    rest = den >> twos
    fives = 0
    while rest % 5 == 0:
        rest //= 5
        fives += 1
    if rest != 1:
        return None
    digits = max(twos, fives)
    scaled = num * 10**digits // den
    if digits == 0:
        return f"{sign}{int_digits(scaled)}"
    text = int_digits(scaled).rjust(digits + 1, "0")
    return f"{sign}{text[:-digits]}.{text[-digits:]}"


def exact_text(x: Fraction) -> str:
    """Exact text of a rational that ``Fraction()`` reads back: a decimal, else p/q."""
    return exact_decimal(x) or f"{x.numerator}/{x.denominator}"


def approx_decimal(x: Fraction, digits: int = 20) -> str:
    """x in scientific notation with ``digits`` significant digits, correctly rounded."""
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    a = abs(x)
    exp = len(int_digits(a.numerator)) - len(int_digits(a.denominator))
    if a >= Fraction(10) ** exp:
        exp += 1
    # now 10**(exp-1) <= a < 10**exp
    while a < Fraction(10) ** (exp - 1):
        exp -= 1
    scaled = a * Fraction(10) ** (digits - exp)
    n = round(scaled)  # round half to even, exactly
    if n >= 10**digits:
        n //= 10
        exp += 1
    text = int_digits(n)
    return f"{sign}{text[0]}.{text[1:]}e{exp - 1:+d}"


_BITS = re.compile(r"0([bx])([0-9a-f_]+)")


def parse_bits(text: str, width: int, fmt_name: str = "") -> int:
    """Read a bit pattern (``0b0_1111_110``, ``0x7e``) for a ``width``-bit format.

    Binary must not have more digits than the format has bits; hex must fit its value.
    """
    s = text.strip().lower()
    if len(s) > 256:
        raise ParseError(f"bit pattern too long ({len(s)} characters)")
    m = _BITS.fullmatch(s)
    where = f" of {fmt_name}" if fmt_name else ""
    if not m or m.group(2).strip("_") == "":
        raise ParseError(f"cannot read {text.strip()!r} as bits: write 0b0_1111_110 or 0x7e")
    digits = m.group(2).replace("_", "")
    try:
        code = int(digits, 2 if m.group(1) == "b" else 16)
    except ValueError:
        raise ParseError(f"{text.strip()!r} has a digit that is not binary") from None
    if m.group(1) == "b" and len(digits) > width:
        raise ParseError(
            f"{text.strip()!r} has {len(digits)} bits; the {width} bits{where} do not hold it"
        )
    if code >> width:
        raise ParseError(f"{text.strip()!r} is too wide for the {width} bits{where}")
    return code
