"""Accumulating in the format (issue 16): every result of a "format" or "pairwise" sum is a
value of the format, for every length (0 and 1 included), and equals an exact emulation of
the documented order of sums built from Fractions and the exact scalar path. And a cosine
is never above 1: exactly 1 for a cast that changes nothing."""

from __future__ import annotations

import math
from fractions import Fraction
from functools import cache

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import dtlab.analysis.ops as ops
from dtlab.analysis.elementwise import format_metrics
from dtlab.analysis.metrics import cosine, measure
from dtlab.analysis.ops import dot, matmul
from dtlab.formats import Format, get_format
from dtlab.kernels import has_c_kernel, quantize
from dtlab.scalar import decode, encode
from dtlab.values import ExactValue

FORMATS = ["float8_e4m3fn", "float8_e5m2", "bfloat16", "float16", "float4_e2m1fn", "int8"]
LENGTHS = range(71)
ACCUMULATIONS = ["format", "pairwise"]
PATHS = [pytest.param(True, id="c"), pytest.param(False, id="torch")]


@cache
def rounded(x: Fraction, name: str) -> Fraction:
    """x rounded into the format once, by the exact scalar path (nearest-even, the default
    overflow policy); only finite results are expected here."""
    f = get_format(name)
    v = decode(encode(ExactValue.of(x), f).code, f)
    assert v.is_finite, (x, name)
    return v.fraction


def is_value(v: float, f: Format) -> bool:
    """decode(encode(v)) == v: v is a value of the format."""
    return float(decode(encode(ExactValue.of(Fraction(v)), f).code, f)) == v


def emulate(products: list[Fraction], name: str, accumulate: str) -> Fraction:
    """The documented order of sums (analysis/ops.py), exactly: "format" from s = 0 adds the
    products in order; "pairwise" adds neighbours, a level of odd length (one term too) or
    of none padded with zeros; every sum rounded into the format once."""
    if accumulate == "format":
        s = Fraction(0)
        for p in products:
            s = rounded(s + p, name)
        return s if products else rounded(s, name)
    level = list(products)
    while True:
        level += [Fraction(0)] * (2 if not level else len(level) % 2)
        level = [rounded(level[i] + level[i + 1], name) for i in range(0, len(level), 2)]
        if len(level) == 1:
            return level[0]


def inputs(n: int, name: str, seed: int, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """Values of the format (float64) whose sums stay within its range: |x| <= 2 for the
    floats (fp4's sums may still saturate at 6), small integers for int8 (which saturates)."""
    g = torch.Generator().manual_seed(seed * 1000 + n)
    x = torch.rand(shape if shape is not None else (n,), generator=g, dtype=torch.float64)
    scale = 8.0 if name == "int8" else 4.0
    return quantize((x - 0.5) * scale, name)


def use_path(use_c: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if use_c and not has_c_kernel():
        pytest.skip("the C kernel is not built")
    if not use_c:
        monkeypatch.setattr(ops, "has_c_kernel", lambda: False)


def test_the_reported_case() -> None:
    a = torch.tensor([1.875])
    assert dot(a, a, "fp8", accumulate="pairwise").value == 3.5  # 1.875^2 = 3.515625
    assert dot(a, a, "fp8", accumulate="format").value == 3.5


@pytest.mark.parametrize("use_c", PATHS)
@pytest.mark.parametrize("accumulate", ACCUMULATIONS)
@pytest.mark.parametrize("name", FORMATS)
def test_dot_in_the_format_is_a_value_of_it_and_the_exact_tree(
    name: str, accumulate: str, use_c: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_path(use_c, monkeypatch)
    f = get_format(name)
    for n in LENGTHS:
        a, b = inputs(n, name, 1), inputs(n, name, 2)
        r = dot(a, b, name, accumulate=accumulate)
        assert r.value is not None and is_value(r.value, f), (n, r.value)
        products = [Fraction(x) * Fraction(y) for x, y in zip(a.tolist(), b.tolist(), strict=True)]
        assert Fraction(r.value) == emulate(products, name, accumulate), n


@pytest.mark.parametrize("accumulate", ACCUMULATIONS)
@pytest.mark.parametrize("name", FORMATS)
def test_matmul_in_the_format_is_the_exact_tree_for_every_inner_dimension(
    name: str, accumulate: str
) -> None:
    f = get_format(name)
    m, n = 2, 3
    for k in LENGTHS:
        a, b = inputs(k, name, 3, (m, k)), inputs(k, name, 4, (k, n))
        got = ops._accumulate_matmul(
            a, b, f, ops.Accumulate.parse(accumulate), ops.Rounding.NEAREST_EVEN, None
        )
        assert got.shape == (m, n) and got.dtype == torch.float64
        al, bl = a.tolist(), b.tolist()
        for i in range(m):
            for j in range(n):
                products = [Fraction(al[i][t]) * Fraction(bl[t][j]) for t in range(k)]
                v = float(got[i, j])
                assert is_value(v, f), (k, i, j, v)
                assert Fraction(v) == emulate(products, name, accumulate), (k, i, j)
        r = matmul(a, b, name, accumulate=accumulate)
        assert r.shape == (m, k, n)
        assert r.rel_error_rounding == ops._rel(got, a @ b)


@pytest.mark.parametrize("name", ["bfloat16", "float16", "float32"])
@pytest.mark.parametrize("backend", ["c", "torch"])
def test_the_cosine_of_an_exact_cast_is_exactly_one(name: str, backend: str) -> None:
    if backend == "c" and not has_c_kernel():
        pytest.skip("the C kernel is not built")
    dtype = getattr(torch, name)
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        x = (torch.randn(1000 + seed, generator=g) * 10.0 ** (seed % 7 - 3)).to(dtype)
        m = format_metrics(x, name, backend=backend)
        assert m.cosine == 1.0 and m.rmse == 0.0, seed


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-(2.0**100), 2.0**100, width=32), min_size=1, max_size=40),
    st.sampled_from(["float8_e4m3fn", "float8_e5m2", "bfloat16", "float16", "int8", "float32"]),
)
def test_a_cosine_is_never_above_one(values: list[float], name: str) -> None:
    x = torch.tensor(values, dtype=torch.float32)
    for backend in ["c", "torch"] if has_c_kernel() else ["torch"]:
        c = format_metrics(x, name, overflow="saturate", backend=backend).cosine
        assert math.isnan(c) or -1.0 <= c <= 1.0, (backend, c)
    if bool((x != 0).any()):
        assert measure(x, x).cosine == 1.0
        assert format_metrics(x, "float32").cosine == 1.0


@given(st.floats(1e-150, 1e150), st.floats(1e-3, 1e3))
def test_cosine_of_equal_sums_is_one_and_of_any_sums_at_most_one(xx: float, t: float) -> None:
    assert cosine(xx, xx, xx) == 1.0
    assert cosine(-xx, xx, xx) == -1.0
    qq = xx * t
    assert -1.0 <= cosine(math.sqrt(xx) * math.sqrt(qq), xx, qq) <= 1.0
