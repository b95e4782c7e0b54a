"""Properties of the scalar encoder, on exact rationals drawn by hypothesis.

The oracle for "the representable values around x" is independent of the encoder: for formats
with subnormals the textbook spacing 2**(max(floor(log2 |x|), emin) - mantissa bits), checked
against the decoded values of the narrow ones; for the others (no subnormals: no zero, or a
zero next to a gap) the sorted list of every decoded value.
"""

from __future__ import annotations

from bisect import bisect_right
from fractions import Fraction
from functools import cache
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dtlab.formats import FloatFormat, formats, get_format
from dtlab.modes import Overflow, Rounding
from dtlab.scalar import Outcome, decode, encode, ulp
from dtlab.values import ExactValue, Kind
from references import float_format

# user specs next to the catalogue: the first four as the test plan names them, then other
# shapes (all-ones NaN without inf, unsigned with and without zero, a 2-bit exponent)
SPECS = [
    "e3m4",
    "e4m3:subnormals=no",
    "e5m2fnuz",
    "e6m1",
    "e5m2:inf=no:nan=all-ones",
    "e3m3fnu",
    "e4m0fnu",
    "e2m5",
]
FORMATS = list(
    dict.fromkeys([f.name for f in formats("float")] + [get_format(s).name for s in SPECS])
)
MODES = [
    Rounding.NEAREST_EVEN,
    Rounding.NEAREST_AWAY,
    Rounding.TOWARD_ZERO,
    Rounding.UP,
    Rounding.DOWN,
]
POLICIES = [Overflow.INF_NAN, Overflow.SATURATE]

SETTINGS = settings(
    deadline=None, max_examples=20, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# ---- the oracle --------------------------------------------------------------------------


@cache
def _magnitudes(name: str) -> tuple[Fraction, ...]:
    """Every finite magnitude of a narrow format, sorted."""
    fmt = float_format(name)
    assert fmt.bits <= 16
    mags = {v.magnitude for c in range(fmt.code_count) if (v := decode(c, fmt)).is_finite}
    return tuple(sorted(mags))


def _floor_log2(a: Fraction) -> int:
    e = a.numerator.bit_length() - a.denominator.bit_length()
    return e if Fraction(2) ** e <= a else e - 1


def _bracket(name: str, a: Fraction) -> tuple[Fraction, Fraction]:
    """The representable magnitudes lo <= a <= hi next to a (lo == hi when a is one)."""
    fmt = float_format(name)
    if not fmt.subnormals:
        mags = _magnitudes(name)
        i = bisect_right(mags, a) - 1
        return (mags[i], mags[i] if mags[i] == a else mags[i + 1])
    if a == 0:
        return (a, a)
    spacing = Fraction(2) ** (max(_floor_log2(a), fmt.emin) - fmt.man_bits)
    lo = spacing * (a // spacing)
    return (lo, lo if lo == a else lo + spacing)


def _lowest(fmt: FloatFormat) -> Fraction:
    """The bottom of the range where every value has neighbours on both sides."""
    return fmt.min if fmt.signed else fmt.smallest_positive if not fmt.has_zero else Fraction(0)


@pytest.mark.parametrize(
    "name", [n for n in FORMATS if float_format(n).subnormals and float_format(n).bits <= 8]
)
def test_spacing_oracle_matches_the_decoded_values(name: str) -> None:
    """The formula oracle brackets every midpoint and value by its decoded neighbours."""
    mags = _magnitudes(name)
    for lo, hi in pairwise(mags):
        assert _bracket(name, (lo + hi) / 2) == (lo, hi)
        assert _bracket(name, hi) == (hi, hi)


# ---- strategies --------------------------------------------------------------------------


def _exact(x: Fraction) -> ExactValue:
    return ExactValue.of(x)


@st.composite
def in_range(draw: st.DrawFn, name: str) -> Fraction:
    """An exact rational in [lowest, max]: near a representable value (ties included), any
    bounded fraction, or a float64."""
    fmt = float_format(name)
    lo = _lowest(fmt)
    how = draw(st.sampled_from(["near", "near", "fraction", "float"]))
    if how == "near":
        code = draw(st.integers(0, fmt.code_count - 1))
        if not decode(code, fmt).is_finite:
            code = fmt.max_code
        step = ulp(code, fmt)
        assert step is not None
        j = draw(st.integers(1, 40))  # t = ±1/2 gives the ties
        t = Fraction(draw(st.integers(-(1 << j), 1 << j)), 1 << j)
        x = decode(code, fmt).fraction + t * step
    elif how == "fraction":
        top = min(fmt.max, Fraction(10**6))
        low = -top if fmt.signed else Fraction(0)  # clamped to lo below
        x = draw(st.fractions(min_value=low, max_value=top, max_denominator=10**6))
    else:
        x = Fraction(draw(st.floats(min_value=float(lo), max_value=float(fmt.max))))
    return min(max(x, lo), fmt.max)


@st.composite
def anything(draw: st.DrawFn, name: str) -> ExactValue:
    """Any value, in range or far beyond it, or ±inf, ±0."""
    fmt = float_format(name)
    how = draw(st.sampled_from(["range", "range", "big", "tiny", "special"]))
    sign = draw(st.sampled_from([1, -1]))
    if how == "range":
        return _exact(sign * abs(draw(in_range(name))))
    if how == "big":
        return _exact(sign * fmt.max * Fraction(draw(st.integers(1, 10**9)), 10**6))
    if how == "tiny":
        return _exact(sign * fmt.smallest_positive * Fraction(draw(st.integers(0, 10**6)), 10**6))
    kind = draw(st.sampled_from([Kind.INF, Kind.FINITE]))
    return ExactValue(kind, sign < 0)


def _value(x: ExactValue, name: str, rounding: Rounding, overflow: Overflow) -> ExactValue:
    fmt = float_format(name)
    return decode(encode(x, fmt, rounding=rounding, overflow=overflow).code, fmt)


def _key(v: ExactValue) -> tuple[int, Fraction]:
    assert not v.is_nan
    if v.kind is Kind.INF:
        return (-1 if v.negative else 1, Fraction(0))
    return (0, v.fraction)


def _signed_range(name: str) -> st.SearchStrategy[Fraction]:
    """In range, with a random sign where the format is signed."""
    if not float_format(name).signed:
        return in_range(name)
    mags = in_range(name).map(abs)
    return st.tuples(mags, st.booleans()).map(lambda t: -t[0] if t[1] else t[0])


# ---- properties --------------------------------------------------------------------------


@pytest.mark.parametrize("name", FORMATS)
@SETTINGS
@given(data=st.data())
def test_nearest_within_half_an_ulp(name: str, data: st.DataObject) -> None:
    """Nearest modes pick a bracketing value no farther than the other one (so within half
    the spacing); ties go to the even code (up with no mantissa bits), or away from zero."""
    fmt = float_format(name)
    x = data.draw(_signed_range(name))
    lo, hi = _bracket(name, abs(x))
    for mode in (Rounding.NEAREST_EVEN, Rounding.NEAREST_AWAY):
        enc = encode(_exact(x), fmt, rounding=mode)
        q = decode(enc.code, fmt)
        assert q.is_finite and q.magnitude in (lo, hi)
        assert (q.negative == (x < 0)) or q.magnitude == 0
        err = abs(q.magnitude - abs(x))
        assert 2 * err <= hi - lo
        assert err == min(abs(x) - lo, hi - abs(x))
        assert (enc.outcome is Outcome.EXACT) == (err == 0)
        if lo != hi and abs(x) - lo == hi - abs(x):  # a tie
            if mode is Rounding.NEAREST_AWAY or fmt.man_bits == 0:
                assert q.magnitude == hi
            else:
                assert (enc.code & ~fmt.sign_mask) % 2 == 0


@pytest.mark.parametrize("name", FORMATS)
@SETTINGS
@given(data=st.data())
def test_directed_modes_bracket_x(name: str, data: st.DataObject) -> None:
    """DOWN <= x <= UP, each the nearest value on its side; toward-zero is the smaller."""
    x = data.draw(_signed_range(name))
    lo, hi = _bracket(name, abs(x))
    below, above = (lo, hi) if x >= 0 else (-hi, -lo)
    for policy in POLICIES:
        up = _value(_exact(x), name, Rounding.UP, policy).fraction
        down = _value(_exact(x), name, Rounding.DOWN, policy).fraction
        toward = _value(_exact(x), name, Rounding.TOWARD_ZERO, policy).fraction
        assert down <= x <= up
        assert (down, up) == (below, above)
        assert toward == (down if x >= 0 else up)


@pytest.mark.parametrize("name", FORMATS)
@SETTINGS
@given(data=st.data())
def test_monotonic(name: str, data: st.DataObject) -> None:
    """x <= y gives q(x) <= q(y) in every mode; under inf-nan, wherever neither is NaN."""
    x, y = sorted([data.draw(anything(name)), data.draw(anything(name))], key=_key)
    for mode in MODES:
        for policy in POLICIES:
            qx, qy = _value(x, name, mode, policy), _value(y, name, mode, policy)
            if policy is Overflow.SATURATE:
                assert not qx.is_nan and not qy.is_nan
            if not qx.is_nan and not qy.is_nan:
                assert _key(qx) <= _key(qy), (mode, policy, str(x), str(y), str(qx), str(qy))


@pytest.mark.parametrize("name", FORMATS)
@SETTINGS
@given(data=st.data())
def test_idempotent(name: str, data: st.DataObject) -> None:
    """A decoded code encodes back to itself in every mode; q(q(x)) == q(x)."""
    fmt = float_format(name)
    code = data.draw(st.integers(0, fmt.code_count - 1))
    v = decode(code, fmt)
    x = data.draw(anything(name))
    for mode in MODES:
        for policy in POLICIES:
            enc = encode(v, fmt, rounding=mode, overflow=policy)
            if v.is_nan:
                assert fmt.is_nan_code(enc.code)
            elif not (v.kind is Kind.INF and policy is Overflow.SATURATE):
                assert (enc.code, enc.outcome) == (code, Outcome.EXACT)
            once = encode(x, fmt, rounding=mode, overflow=policy).code
            twice = encode(decode(once, fmt), fmt, rounding=mode, overflow=policy).code
            assert twice == once or (fmt.is_nan_code(once) and fmt.is_nan_code(twice))


def _negated(v: ExactValue, fmt: FloatFormat) -> ExactValue:
    """-v as the format stores it: a zero keeps +0 where the format has no -0."""
    if v.is_nan or (v.is_zero and not fmt.has_negative_zero):
        return v
    return ExactValue(v.kind, not v.negative, v.magnitude)


@pytest.mark.parametrize("name", [n for n in FORMATS if float_format(n).signed])
@SETTINGS
@given(data=st.data())
def test_symmetric(name: str, data: st.DataObject) -> None:
    """q(-x) == -q(x) for the nearest modes and toward zero; UP(-x) == -DOWN(x)."""
    fmt = float_format(name)
    x = data.draw(anything(name))
    minus_x = ExactValue(x.kind, not x.negative, x.magnitude)
    mirrors = {m: m for m in MODES[:3]} | {Rounding.UP: Rounding.DOWN, Rounding.DOWN: Rounding.UP}
    for mode, mirror in mirrors.items():
        for policy in POLICIES:
            want = _negated(_value(x, name, mirror, policy), fmt)
            assert _value(minus_x, name, mode, policy) == want, (mode, policy, str(x))


@pytest.mark.parametrize("name", FORMATS)
@SETTINGS
@given(data=st.data())
def test_saturation_never_exceeds_max(name: str, data: st.DataObject) -> None:
    """Under saturate every non-NaN input lands on a finite value within [min, max]."""
    fmt = float_format(name)
    x = data.draw(anything(name))
    for mode in MODES:
        enc = encode(x, fmt, rounding=mode, overflow=Overflow.SATURATE)
        q = decode(enc.code, fmt)
        assert q.is_finite
        assert fmt.min <= q.fraction <= fmt.max
        beyond = x.kind is Kind.INF or x.magnitude > fmt.max
        if beyond and (fmt.signed or not x.negative):  # the extreme of the same sign, any mode
            assert (q.magnitude, q.negative) == (fmt.max, x.negative)
        if x.kind is Kind.INF or (x.negative and not fmt.signed and not x.is_zero):
            assert enc.outcome is Outcome.SATURATED
