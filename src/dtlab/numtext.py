"""Numbers as text for people: exact where short, otherwise marked as approximate (≈)."""

from __future__ import annotations

import math
from fractions import Fraction

from dtlab.values import ExactValue, approx_decimal, exact_decimal

APPROX = "≈"


def power_of_two(x: Fraction) -> int | None:
    """The exponent e if |x| == 2**e, else None."""
    a = abs(x)
    n, d = a.numerator, a.denominator
    if n == 1 and d & (d - 1) == 0:
        return -(d.bit_length() - 1)
    if d == 1 and n & (n - 1) == 0 and n:
        return n.bit_length() - 1
    return None


def short(x: Fraction | int | None, width: int = 12, digits: int = 7) -> str:
    """A compact form: exact if it fits, 2^e for powers of two, else ≈ with some digits."""
    if x is None:
        return "—"
    x = Fraction(x)
    text = exact_decimal(x)
    if text is not None and len(text) <= width:
        return text
    e = power_of_two(x)
    if e is not None:
        return f"{'-' if x < 0 else ''}2^{e}"
    return APPROX + _sci(x, digits)


def short_value(v: ExactValue | None, width: int = 12, digits: int = 7) -> str:
    if v is None:
        return "—"
    if not v.is_finite or v.is_zero:
        return str(v)
    return ("-" if v.negative else "") + short(v.magnitude, width, digits)


def exact_or_approx(x: Fraction) -> str:
    """The exact text when it terminates (all digits), else an approximation marked ≈."""
    text = exact_decimal(x)
    return text if text is not None else f"{APPROX}{_sci(x, 20)}  (exactly {x})"


def _sci(x: Fraction, digits: int) -> str:
    text = approx_decimal(x, digits)
    mant, _, exp = text.partition("e")
    if "." in mant:
        mant = mant.rstrip("0").rstrip(".")
    return f"{mant}e{exp}"


def approx_float(x: float, digits: int = 3, infinite: str = "∞") -> str:
    """A float figure (a metric: float64 already), marked ≈ unless it is 0, inf or NaN."""
    if math.isnan(x):
        return "—"
    if math.isinf(x):
        return infinite if x > 0 else "-" + infinite
    if x == 0:
        return "0"
    return f"{APPROX}{x:.{digits}g}"


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` with the noun in the right number, digits grouped.

    >>> counted(1, "tensor"), counted(66, "tensor"), counted(2, "group", "groups")
    ('1 tensor', '66 tensors', '2 groups')
    """
    word = noun if n == 1 else (plural or noun + "s")
    return f"{n:,} {word}"
