"""dtlab rounds the exact rational once; rounding its float64 (or float32) first can differ.

Each case is a value a hair off a midpoint between two neighbours, written exactly as p/q, so
that float64(x) *is* the midpoint: ties-to-even then picks the other neighbour.
"""

from __future__ import annotations

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
import torch

from dtlab.formats import FloatFormat, get_format
from dtlab.modes import Rounding
from dtlab.scalar import Outcome, decode, encode, explain
from dtlab.values import ExactValue, parse_value

FP16 = get_format("float16")
BF16 = get_format("bfloat16")
assert isinstance(FP16, FloatFormat) and isinstance(BF16, FloatFormat)
TINY = Fraction(1, 2**60)  # far below float64's half ulp (2**-53 relative)


# (text as p/q, construction, the two fp16 neighbours (lo, hi), direct code, via-float64 code)
FP16_CASES = [
    pytest.param(
        "2362336162939429455873/2361183241434822606848",
        (1 + Fraction(1, 2**11)) * (1 + TINY),  # just above the midpoint of 1 and 1 + 2**-10
        0x3C00,
        0x3C01,
        0x3C01,
        0x3C00,  # the tie goes down to the even 0x3C00
        id="above-midpoint-1",
    ),
    pytest.param(
        "2364642005948643145725/2361183241434822606848",
        (1 + Fraction(3, 2**11)) * (1 - TINY),  # just below the midpoint of 0x3C01 and 0x3C02
        0x3C01,
        0x3C02,
        0x3C01,
        0x3C02,  # the tie goes up to the even 0x3C02
        id="below-midpoint-odd",
    ),
    pytest.param(
        "3458764513820540925/38685626227668133590597632",
        Fraction(3, 2**25) * (1 - TINY),  # subnormals 2**-24 (0x0001) and 2**-23 (0x0002)
        0x0001,
        0x0002,
        0x0001,
        0x0002,
        id="below-midpoint-subnormal",
    ),
]


@pytest.mark.parametrize(("text", "x", "lo", "hi", "direct", "via_float64"), FP16_CASES)
def test_fp16_rounds_the_exact_value_once(
    text: str, x: Fraction, lo: int, hi: int, direct: int, via_float64: int
) -> None:
    assert Fraction(text) == x
    # the premise: x is not a midpoint, but float64(x) is exactly the midpoint of lo and hi
    midpoint = Fraction(float(x))
    lo_value, hi_value = decode(lo, FP16).fraction, decode(hi, FP16).fraction
    assert midpoint == (lo_value + hi_value) / 2 != x
    assert lo_value < x < hi_value

    anatomy = explain(text, FP16)
    assert anatomy.input.fraction == x
    assert anatomy.stored.code == direct
    assert anatomy.outcome is Outcome.ROUNDED
    assert anatomy.abs_error == abs(decode(direct, FP16).fraction - x) < (hi_value - lo_value) / 2
    # the exact decimal of x gives the same answer
    assert explain(str(ExactValue.of(x)), FP16).stored.code == direct

    # rounding float64(x) instead: the tie goes to the even code
    assert encode(ExactValue.of(midpoint), FP16).code == via_float64 != direct
    assert int(np.array(float(x)).astype(np.float16).view(np.uint16)) == via_float64
    t = torch.tensor(float(x), dtype=torch.float64).half().view(torch.int16).item() & 0xFFFF
    assert t == via_float64
    assert torch.tensor(float(x)).half().view(torch.int16).item() & 0xFFFF == via_float64


def test_one_third_in_bf16() -> None:
    anatomy = explain("1/3", BF16)
    assert anatomy.stored.code == 0x3EAB
    assert anatomy.stored.value.fraction == Fraction(171, 512)
    assert str(anatomy.stored.value) == "0.333984375"
    assert anatomy.abs_error == Fraction(171, 512) - Fraction(1, 3) == Fraction(1, 1536)
    assert anatomy.rel_error == Fraction(1, 512)
    assert parse_value("0.333984375").fraction == Fraction(171, 512)
    # float64(1/3) lies nowhere near a bf16 midpoint: every path agrees here
    assert torch.tensor(1 / 3, dtype=torch.float64).bfloat16().view(torch.int16).item() == 0x3EAB
    assert int(np.array(1 / 3).astype(ml_dtypes.bfloat16).view(np.uint16)) == 0x3EAB


# torch builds bfloat16 and float16 from a float (c10::BFloat16, c10::Half), so a float64 goes
# through float32 first; ml_dtypes does the same for bfloat16, numpy's float16 cast does not.
# x = 1 + 2**-8 + 2**-40 is above the bf16 midpoint of 1 and 1 + 2**-7, and float32(x) is that
# midpoint; likewise 1 + 2**-11 + 2**-40 for fp16. (checked: torch 2.13, ml_dtypes 0.6.0)
VIA_FLOAT32 = [
    pytest.param("1103806595073/1099511627776", BF16, 0x3F81, 0x3F80, id="bfloat16"),
    pytest.param("1100048498689/1099511627776", FP16, 0x3C01, 0x3C00, id="float16"),
]


@pytest.mark.parametrize(("text", "fmt", "direct", "via_float32"), VIA_FLOAT32)
def test_float64_casts_that_go_through_float32(
    text: str, fmt: FloatFormat, direct: int, via_float32: int
) -> None:
    x = Fraction(text)
    assert float(x) == x  # exact in float64: only float32 rounds it
    x32 = Fraction(float(np.float32(float(x))))
    assert x32 != x
    assert explain(text, fmt).stored.code == direct
    assert encode(ExactValue.of(x32), fmt).code == via_float32
    dtype = torch.bfloat16 if fmt is BF16 else torch.float16
    t = torch.tensor(float(x), dtype=torch.float64).to(dtype).view(torch.int16).item() & 0xFFFF
    assert t == via_float32  # torch rounds twice
    if fmt is BF16:
        got = int(np.array(float(x)).astype(ml_dtypes.bfloat16).view(np.uint16))
        assert got == via_float32  # ml_dtypes rounds twice too
    else:
        got = int(np.array(float(x)).astype(np.float16).view(np.uint16))
        assert got == direct  # numpy's float64 -> float16 cast rounds once


def test_directed_rounding_sees_the_tiny_excess() -> None:
    """Toward zero and down keep lo, up takes hi: x really is above the midpoint."""
    x = (1 + Fraction(1, 2**11)) * (1 + TINY)
    codes = {
        mode: encode(ExactValue.of(x), FP16, rounding=mode).code
        for mode in Rounding
        if mode is not Rounding.STOCHASTIC
    }
    assert codes == {
        Rounding.NEAREST_EVEN: 0x3C01,
        Rounding.NEAREST_AWAY: 0x3C01,
        Rounding.TOWARD_ZERO: 0x3C00,
        Rounding.UP: 0x3C01,
        Rounding.DOWN: 0x3C00,
    }
