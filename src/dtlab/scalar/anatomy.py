"""The anatomy of a value in a format: its code, bit fields, formula, exact value, neighbours."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from dtlab.formats.descriptor import FloatFormat, Format, IntFormat
from dtlab.modes import Overflow, Rounding
from dtlab.scalar.codec import Outcome, decode, encode, resolve_modes
from dtlab.values import ExactValue, Kind, parse_value


@dataclass(frozen=True)
class Field:
    role: str  # "sign", "exponent", "mantissa", or "bits" for an integer
    bits: str


@dataclass(frozen=True)
class CodeAnatomy:
    """What one bit pattern of a format means."""

    format: Format
    code: int
    fields: tuple[Field, ...]
    value: ExactValue
    category: str  # zero, subnormal, normal, inf, nan, integer
    formula: str
    previous: ExactValue | None  # next value toward -inf, None at the bottom (or for NaN)
    next: ExactValue | None  # next value toward +inf, None at the top (or for NaN)
    ulp: Fraction | None  # spacing of the grid at this value (1 for integers)

    json_extra = ("bits", "hex")  # derived properties that the JSON form includes

    @property
    def bits(self) -> str:
        return self.bit_string

    @property
    def bit_string(self) -> str:
        return "".join(f.bits for f in self.fields)

    @property
    def hex(self) -> str:
        return f"0x{self.code:0{(self.format.bits + 3) // 4}x}"


@dataclass(frozen=True)
class Anatomy:
    """A value rounded into a format: what is stored, and what was lost."""

    input: ExactValue
    text: str
    rounding: Rounding
    overflow: Overflow
    outcome: Outcome
    stored: CodeAnatomy
    abs_error: Fraction | None  # |stored - input|, when both are finite
    rel_error: Fraction | None  # abs_error / |input|, when the input is finite and non-zero


def explain(
    x: str | ExactValue | Fraction | int,
    fmt: Format,
    *,
    rounding: Rounding | str = Rounding.NEAREST_EVEN,
    overflow: Overflow | str | None = None,
) -> Anatomy:
    """Round an exact value into fmt and lay out the result.

    >>> from dtlab.formats import get_format
    >>> str(explain("1/3", get_format("bf16")).stored.value)
    '0.333984375'
    """
    text = x if isinstance(x, str) else str(x)
    value = parse_value(x) if isinstance(x, str) else _exact(x)
    mode, policy = resolve_modes(fmt, rounding, overflow)
    enc = encode(value, fmt, rounding=mode, overflow=policy)
    stored = explain_code(enc.code, fmt)
    abs_err = rel_err = None
    if value.is_finite and stored.value.is_finite:
        abs_err = abs(stored.value.fraction - value.fraction)
        if value.magnitude:
            rel_err = abs_err / value.magnitude
    return Anatomy(
        input=value,
        text=text.strip(),
        rounding=mode,
        overflow=policy,
        outcome=enc.outcome,
        stored=stored,
        abs_error=abs_err,
        rel_error=rel_err,
    )


def _exact(x: ExactValue | Fraction | int) -> ExactValue:
    return x if isinstance(x, ExactValue) else ExactValue.of(Fraction(x))


def explain_code(code: int, fmt: Format) -> CodeAnatomy:
    """What a bit pattern means in fmt."""
    value = decode(code, fmt)
    bits = format(code, f"0{fmt.bits}b")
    if isinstance(fmt, IntFormat):
        return CodeAnatomy(
            format=fmt,
            code=code,
            fields=(Field("bits", bits),),
            value=value,
            category="integer",
            formula=_int_formula(code, fmt),
            previous=_int_step(value, fmt, -1),
            next=_int_step(value, fmt, +1),
            ulp=Fraction(1),
        )
    fields = _float_fields(bits, fmt)
    prev_v, next_v = _float_neighbours(code, fmt, value)
    return CodeAnatomy(
        format=fmt,
        code=code,
        fields=fields,
        value=value,
        category=_category(code, fmt, value),
        formula=_float_formula(code, fmt, value),
        previous=prev_v,
        next=next_v,
        ulp=_ulp(code, fmt, value),
    )


def ulp(code: int, fmt: Format) -> Fraction | None:
    """The spacing of fmt's grid at a code's value: 2**(max(e, emin) - man_bits)."""
    if isinstance(fmt, IntFormat):
        return Fraction(1)
    return _ulp(code, fmt, decode(code, fmt))


# ---- integers -----------------------------------------------------------------------------


def _int_formula(code: int, fmt: IntFormat) -> str:
    if not fmt.signed or not code >> (fmt.bits - 1):
        return f"{code}"
    top = 1 << (fmt.bits - 1)
    rest = code - top
    return (
        f"−{top} + {rest} = {rest - top}  (two's complement: the top bit weighs −2^{fmt.bits - 1})"
    )


def _int_step(value: ExactValue, fmt: IntFormat, step: int) -> ExactValue | None:
    n = int(value.fraction) + step
    return ExactValue.of(n) if fmt.min <= n <= fmt.max else None


# ---- floats ---------------------------------------------------------------------------------


def _float_fields(bits: str, fmt: FloatFormat) -> tuple[Field, ...]:
    s, e = fmt.sign_bits, fmt.exp_bits
    out = [Field("sign", bits[:s])] if s else []
    out.append(Field("exponent", bits[s : s + e]))
    if fmt.man_bits:
        out.append(Field("mantissa", bits[s + e :]))
    return tuple(out)


def _category(code: int, fmt: FloatFormat, value: ExactValue) -> str:
    if value.kind is not Kind.FINITE:
        return str(value.kind.value)
    if value.magnitude == 0:
        return "zero"
    mag = code & ~fmt.sign_mask
    return "subnormal" if fmt.subnormals and mag >> fmt.man_bits == 0 else "normal"


def _float_formula(code: int, fmt: FloatFormat, value: ExactValue) -> str:
    if value.kind is Kind.NAN:
        return "NaN (not a number)"
    if value.kind is Kind.INF:
        return f"{'−' if value.negative else '+'}infinity"
    mag = code & ~fmt.sign_mask
    e_field, m = mag >> fmt.man_bits, mag & fmt.man_max_field
    sign = f"(−1)^{int(value.negative)} × " if fmt.signed else ""
    subnormal = fmt.subnormals and e_field == 0
    if fmt.man_bits == 0:
        body = f"2^({e_field}−{fmt.bias})" if not subnormal else "0"
    elif subnormal:
        body = f"2^(1−{fmt.bias}) × 0.{format(m, f'0{fmt.man_bits}b')}₂"
    elif e_field == 0 and m == 0:
        body = "0 (code 0 is zero: this format has no subnormals)"
    else:
        body = f"2^({e_field}−{fmt.bias}) × 1.{format(m, f'0{fmt.man_bits}b')}₂"
    return f"{sign}{body} = {value}"


def _ulp(code: int, fmt: FloatFormat, value: ExactValue) -> Fraction | None:
    if value.kind is not Kind.FINITE:
        return None
    mag = code & ~fmt.sign_mask
    e_field = mag >> fmt.man_bits
    e = max(e_field - fmt.bias, fmt.emin)
    return Fraction(2) ** (e - fmt.man_bits)


def _float_neighbours(
    code: int, fmt: FloatFormat, value: ExactValue
) -> tuple[ExactValue | None, ExactValue | None]:
    if value.kind is Kind.NAN:
        return None, None
    return _step(value, fmt, down=True), _step(value, fmt, down=False)


def _step(value: ExactValue, fmt: FloatFormat, *, down: bool) -> ExactValue | None:
    """The next representable value below (down) or above, infinities included."""
    if value.kind is Kind.INF:
        if value.negative != down:  # -inf going up, +inf going down
            return ExactValue(Kind.FINITE, value.negative, fmt.max)
        return None
    x = value.fraction
    nudge = Fraction(2) ** (fmt.emin - fmt.man_bits - 2)  # a quarter of the finest spacing
    target = ExactValue.of(x - nudge if down else x + nudge)
    directed = Rounding.DOWN if down else Rounding.UP
    enc = encode(target, fmt, rounding=directed, overflow=Overflow.INF_NAN)
    if enc.outcome in (Outcome.OVERFLOW_NAN, Outcome.SATURATED):
        return None  # past the end of a format without infinities
    got = decode(enc.code, fmt)
    if got.is_finite and got.fraction == x:
        # a signed format without zero (e1m0fn) steps across it: below +v1 lies -v1
        crosses = fmt.signed and not fmt.has_zero and abs(x) == fmt.smallest_positive
        return ExactValue.of(-x) if crosses and (x > 0) == down else None
    return got
