"""Every code of every catalogue format of 16 bits or fewer: round trip, order, counts, references.

Each format is decoded once (``_decoded``, cached for the module); the 16-bit formats hold 65536
codes, so the slower sweeps (every rounding mode) run on the formats of 8 bits or fewer.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import cache
from itertools import pairwise

import numpy as np
import pytest
import torch

from dtlab.formats import NUMPY_NAMES, TORCH_NAMES, FloatFormat, IntFormat, formats, get_format
from dtlab.modes import Overflow, Rounding
from dtlab.scalar import Outcome, decode, encode, explain_code, ulp
from dtlab.values import ExactValue, Kind
from references import float_format, numpy_type

SMALL_FLOATS = [f.name for f in formats("float") if f.bits <= 16]
SMALL_INTS = [f.name for f in formats("int") if f.bits <= 16]
NARROW_FLOATS = [n for n in SMALL_FLOATS if get_format(n).bits <= 8]
DIRECTED = [Rounding.NEAREST_AWAY, Rounding.TOWARD_ZERO, Rounding.UP, Rounding.DOWN]


def _is_torch_shell(name: str) -> bool:
    """torch.int1..int7 / uint1..uint7: storage-only dtypes (FORMATS.md section 6)."""
    fmt = get_format(name)
    return isinstance(fmt, IntFormat) and fmt.bits < 8


# torch dtypes that hold one element per storage unit and convert to float64 / int64
TORCH_DECODABLE = [
    n
    for n in SMALL_FLOATS + SMALL_INTS
    if n in TORCH_NAMES and n != "float4_e2m1fn" and not _is_torch_shell(n)
]
TORCH_SHELLS = [n for n in SMALL_INTS if n in TORCH_NAMES and _is_torch_shell(n)]
NUMPY_DECODABLE = [n for n in SMALL_FLOATS + SMALL_INTS if n in NUMPY_NAMES]


@cache
def _decoded(name: str) -> tuple[ExactValue, ...]:
    fmt = get_format(name)
    return tuple(decode(c, fmt) for c in range(fmt.code_count))


def _codes(fmt: FloatFormat | IntFormat) -> np.ndarray:
    return np.arange(fmt.code_count, dtype=np.uint8 if fmt.bits <= 8 else np.uint16)


def _as_float64(values: tuple[ExactValue, ...]) -> np.ndarray:
    """dtlab's values as float64, signs of zero kept; every finite value must convert exactly."""
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        f = float(v)
        if v.is_finite:
            assert Fraction(f) == v.fraction, (i, v)
            f = math.copysign(f, -1.0 if v.negative else 1.0)
        out[i] = f
    return out


def _assert_same_floats(got: np.ndarray, want: np.ndarray) -> None:
    """Exactly equal, NaN where NaN, and the same sign bit on every non-NaN (zeros included).

    NaN signs are not compared: for the fnuz NaN 0x80, ml_dtypes gives -nan and torch +nan.
    """
    nan = np.isnan(got) & np.isnan(want)
    bad = ~((got == want) | nan) | ((np.signbit(got) != np.signbit(want)) & ~nan)
    codes = np.flatnonzero(bad)
    assert codes.size == 0, [(hex(c), got[c], want[c]) for c in codes[:10]]


def _sign_magnitude_order(fmt: FloatFormat) -> list[int]:
    """Codes from the most negative to the most positive, by the bit pattern alone."""
    if not fmt.signed:
        return list(range(fmt.code_count))
    half = fmt.code_count // 2
    return [fmt.sign_mask | m for m in reversed(range(half))] + list(range(half))


def _key(v: ExactValue) -> tuple[int, Fraction]:
    if v.kind is Kind.INF:
        return (-1 if v.negative else 1, Fraction(0))
    return (0, v.fraction)


# ---- floats: round trip ------------------------------------------------------------------


@pytest.mark.parametrize("name", SMALL_FLOATS)
def test_round_trip_nearest_even(name: str) -> None:
    fmt = float_format(name)
    values = _decoded(name)
    for code, v in enumerate(values):
        enc = encode(v, fmt)
        if v.is_nan:
            assert fmt.is_nan_code(enc.code), hex(code)
            assert enc.outcome is Outcome.EXACT
        else:
            assert (enc.code, enc.outcome) == (code, Outcome.EXACT), (hex(code), v, enc)


@pytest.mark.parametrize("name", NARROW_FLOATS)
@pytest.mark.parametrize("rounding", DIRECTED, ids=lambda r: r.value)
def test_round_trip_every_mode(name: str, rounding: Rounding) -> None:
    fmt = float_format(name)
    for code, v in enumerate(_decoded(name)):
        for overflow in (Overflow.INF_NAN, Overflow.SATURATE):
            enc = encode(v, fmt, rounding=rounding, overflow=overflow)
            if v.is_nan:
                assert fmt.is_nan_code(enc.code), (hex(code), overflow)
            elif v.kind is Kind.INF and overflow is Overflow.SATURATE:
                assert enc.code == (code & fmt.sign_mask) | fmt.max_code, hex(code)
                assert enc.outcome is Outcome.SATURATED
            else:
                assert (enc.code, enc.outcome) == (code, Outcome.EXACT), (hex(code), overflow)


@pytest.mark.parametrize("name", SMALL_FLOATS)
def test_negative_zero_round_trips_to_its_own_code(name: str) -> None:
    fmt = float_format(name)
    neg_zero = ExactValue(Kind.FINITE, True, Fraction(0))
    got = encode(neg_zero, fmt).code
    if fmt.has_negative_zero:
        assert got == fmt.sign_mask
        assert decode(got, fmt) == neg_zero
    elif fmt.has_zero:  # fnuz: the -0 code is NaN, so -0 is stored as +0
        assert got == 0
    else:  # e8m0: no zero at all; the smallest value stands in
        assert (got, decode(got, fmt).fraction) == (0, fmt.smallest_positive)


# ---- floats: ordering and counts ---------------------------------------------------------


@pytest.mark.parametrize("name", SMALL_FLOATS)
def test_sign_magnitude_order_is_value_order(name: str) -> None:
    fmt = float_format(name)
    values = _decoded(name)
    ordered = [values[c] for c in _sign_magnitude_order(fmt) if not values[c].is_nan]
    keys = [_key(v) for v in ordered]
    assert keys == sorted(keys)
    ties = [(a, b) for a, b in pairwise(ordered) if _key(a) == _key(b)]
    if fmt.has_negative_zero:  # the only equal pair: -0 then +0
        assert [(str(a), str(b)) for a, b in ties] == [("-0", "0")]
    else:
        assert ties == []
    if fmt.has_inf:
        assert str(ordered[0]) == "-inf" and str(ordered[-1]) == "inf"


@pytest.mark.parametrize("name", SMALL_FLOATS)
def test_counts_and_extremes_match_derived_properties(name: str) -> None:
    fmt = float_format(name)
    values = _decoded(name)
    finite = [v for v in values if v.is_finite]
    assert len(finite) == fmt.finite_codes
    assert sum(v.is_nan for v in values) == fmt.nan_codes
    assert sum(v.kind is Kind.INF for v in values) == fmt.inf_codes
    assert len({v.fraction for v in finite}) == fmt.finite_values
    assert (fmt.nan_codes > 0, fmt.inf_codes > 0) == (fmt.has_nan, fmt.has_inf)
    assert any(v.is_zero for v in finite) == fmt.has_zero
    assert any(v.is_zero and v.negative for v in finite) == fmt.has_negative_zero

    fractions = sorted({v.fraction for v in finite})
    positive = [x for x in fractions if x > 0]
    assert (fractions[-1], fractions[0]) == (fmt.max, fmt.min)
    assert decode(fmt.max_code, fmt).fraction == fmt.max
    assert positive[0] == fmt.smallest_subnormal == fmt.smallest_positive
    normal = [
        v.magnitude
        for c, v in enumerate(values)
        if v.is_finite
        and v.magnitude > 0
        and (not fmt.subnormals or (c & ~fmt.sign_mask) >> fmt.man_bits >= 1)
    ]
    assert min(normal) == fmt.smallest_normal == fmt.tiny
    if 1 in fractions:
        i = fractions.index(1)
        assert fractions[i + 1] - 1 == fmt.eps
        assert 1 - fractions[i - 1] == fmt.epsneg


@pytest.mark.parametrize("name", NARROW_FLOATS)
def test_neighbours_and_ulp(name: str) -> None:
    """explain_code's previous/next are the adjacent distinct values (infinities included, the
    two zeros one value); ulp is the distance to the next value up from |v|."""
    fmt = float_format(name)
    values = _decoded(name)
    distinct = sorted({_key(v) for v in values if not v.is_nan})
    for code, v in enumerate(values):
        anatomy = explain_code(code, fmt)
        if v.is_nan:
            assert (anatomy.previous, anatomy.next, anatomy.ulp) == (None, None, None)
            continue
        i = distinct.index(_key(v))
        want_prev = distinct[i - 1] if i > 0 else None
        want_next = distinct[i + 1] if i + 1 < len(distinct) else None
        got_prev = _key(anatomy.previous) if anatomy.previous is not None else None
        got_next = _key(anatomy.next) if anatomy.next is not None else None
        assert (got_prev, got_next) == (want_prev, want_next), hex(code)
        if not v.is_finite:
            assert anatomy.ulp is None and ulp(code, fmt) is None
            continue
        assert anatomy.ulp == ulp(code, fmt) == ulp(code & ~fmt.sign_mask, fmt)
        above = [k for k in distinct if k > (0, v.magnitude)]
        if above and above[0][0] == 0:  # a finite value above |v|
            assert anatomy.ulp == above[0][1] - v.magnitude, hex(code)
        elif fmt.man_bits > 0:  # |v| is max: the spacing of the top binade
            assert anatomy.ulp == fmt.max - [k for k in distinct if k < (0, fmt.max)][-1][1]


# ---- floats: against the references ------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in NUMPY_DECODABLE if n in SMALL_FLOATS])
def test_decode_matches_numpy_and_ml_dtypes(name: str) -> None:
    fmt = float_format(name)
    with np.errstate(invalid="ignore"):  # ml_dtypes flags signalling NaNs (bf16 7F81...)
        got = _codes(fmt).view(numpy_type(name)).astype(np.float64)
    _assert_same_floats(got, _as_float64(_decoded(name)))


@pytest.mark.parametrize("name", [n for n in TORCH_DECODABLE if n in SMALL_FLOATS])
def test_decode_matches_torch(name: str) -> None:
    fmt = float_format(name)
    codes = torch.from_numpy(_codes(fmt))
    got = codes.view(getattr(torch, TORCH_NAMES[name])).to(torch.float64).numpy()
    _assert_same_floats(got, _as_float64(_decoded(name)))


def test_torch_cannot_decode_fp4() -> None:
    """torch holds fp4 only as the packed float4_e2m1fn_x2, which has no cast kernel (torch
    2.13); if this starts to work, compare its decoding here like the other dtypes."""
    packed = torch.arange(256, dtype=torch.int32).to(torch.uint8).view(torch.float4_e2m1fn_x2)
    with pytest.raises(NotImplementedError, match="not implemented for 'Float4_e2m1fn_x2'"):
        packed.to(torch.float64)
    with pytest.raises(NotImplementedError, match="not implemented for 'Float4_e2m1fn_x2'"):
        packed.float()


# ---- integers ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", SMALL_INTS)
def test_int_every_code(name: str) -> None:
    fmt = get_format(name)
    assert isinstance(fmt, IntFormat)
    values = _decoded(name)
    ints = [int(v.fraction) for v in values]
    assert all(v.is_finite and v.fraction.denominator == 1 for v in values)
    # two's complement order: the codes from the sign bit up hold the negatives
    half = fmt.code_count // 2 if fmt.signed else 0
    order = list(range(half, fmt.code_count)) + list(range(half))
    assert [ints[c] for c in order] == list(range(fmt.min, fmt.max + 1))
    for code, v in enumerate(values):
        enc = encode(v, fmt)
        assert (enc.code, enc.outcome) == (code, Outcome.EXACT), code


@pytest.mark.parametrize("name", [n for n in NUMPY_DECODABLE if n in SMALL_INTS])
def test_int_decode_matches_numpy_and_ml_dtypes(name: str) -> None:
    fmt = get_format(name)
    got = _codes(fmt).view(np.uint8 if fmt.bits <= 8 else np.uint16)
    if fmt.bits in (8, 16):
        got = got.view(numpy_type(name))
    else:  # ml_dtypes' sub-byte ints keep one element per byte, in the low bits
        got = got.astype(np.uint8).view(numpy_type(name))
    assert got.astype(np.int64).tolist() == [int(v.fraction) for v in _decoded(name)]


@pytest.mark.parametrize("name", [n for n in TORCH_DECODABLE if n in SMALL_INTS])
def test_int_decode_matches_torch(name: str) -> None:
    fmt = get_format(name)
    codes = torch.from_numpy(_codes(fmt))
    got = codes.view(getattr(torch, TORCH_NAMES[name])).to(torch.int64).tolist()
    assert got == [int(v.fraction) for v in _decoded(name)]


@pytest.mark.parametrize("name", TORCH_SHELLS)
def test_torch_sub_byte_ints_are_shells(name: str) -> None:
    """torch.int1..int7/uint1..uint7 store bytes but cannot be read (FORMATS.md section 6)."""
    shell = torch.zeros(4, dtype=torch.uint8).view(getattr(torch, TORCH_NAMES[name]))
    with pytest.raises(NotImplementedError):
        shell.to(torch.int64)
