"""Wrong numbers found by comparing with exact emulation (issue 14): the top of int64/uint64
in the tensor kernels, and eps/epsneg of formats in which 1.0 is not a normal number."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from dtlab.formats import FloatFormat, get_format
from dtlab.kernels import decode, encode, to_dtype
from dtlab.scalar.codec import decode as decode_exact
from dtlab.scalar.codec import encode as encode_exact
from dtlab.values import ExactValue, parse_value

TOP = [1e19, 2.0**63, 2.0**63 - 1024, 2.0**64, 1e30, -1e19, -(2.0**63), 3.0, -3.0, 0.0]


@pytest.mark.parametrize("name", ["int64", "uint64"])
@pytest.mark.parametrize("overflow", ["saturate", "wrap"])
def test_the_top_of_64_bit_integers_matches_the_exact_path(name: str, overflow: str) -> None:
    fmt = get_format(name)
    x = torch.tensor(TOP, dtype=torch.float64)
    got = encode(x, fmt, overflow=overflow).tolist()
    for v, code in zip(TOP, got, strict=True):
        if name == "uint64" and overflow == "wrap" and v < 0:
            continue  # -3 wraps to 2^64 - 3, which the float64 lanes cannot hold (documented)
        want = encode_exact(ExactValue.of(Fraction(v)), fmt, overflow=overflow).code
        assert code & (2**64 - 1) == want, (name, overflow, v)


def test_to_dtype_saturates_at_the_top_of_int64() -> None:
    x = torch.tensor([1e19, 2.0**63, -1e19], dtype=torch.float64)
    assert to_dtype(x, "int64").tolist() == [2**63 - 1, 2**63 - 1, -(2**63)]
    assert (
        to_dtype(torch.tensor([2.0**64, 1e30], dtype=torch.float64), "uint64").tolist()
        == [2**64 - 1] * 2
    )


@pytest.mark.parametrize(
    "spec", ["e1m6fn", "e2m3:bias=0", "e3m2:bias=1", "e4m3:bias=2", "e5m2", "e4m3fn", "e2m1fn"]
)
def test_eps_and_epsneg_are_the_spacing_around_one(spec: str) -> None:
    """Decode every code: eps is the gap from 1 (or from the largest value below 1 where 1 is
    not representable... it always is for these) to the next value up, epsneg the gap down."""
    fmt = get_format(spec)
    assert isinstance(fmt, FloatFormat)
    values = sorted({decode_exact(c, fmt).fraction for c in range(1 << fmt.bits)
                     if decode_exact(c, fmt).is_finite})  # fmt: skip
    assert Fraction(1) in values
    i = values.index(Fraction(1))
    assert fmt.eps == values[i + 1] - 1, spec
    assert fmt.epsneg == 1 - values[i - 1], spec


def test_the_reported_example() -> None:
    f = get_format("e1m6fn")
    assert (f.eps, f.epsneg) == (Fraction(1, 32), Fraction(1, 32))  # was 1/64: half the spacing
    assert parse_value("1").fraction == 1 and decode(torch.tensor([32]), f).item() == 1.0
