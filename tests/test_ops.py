"""Low-precision dot products and matmuls against exact emulations built from Fractions."""

import math
from fractions import Fraction

import pytest
import torch

import dtlab.analysis.ops as ops
from dtlab.analysis.ops import Accumulate, add_round_to_odd, dot, matmul
from dtlab.formats import get_format
from dtlab.kernels import quantize
from dtlab.scalar import decode, encode
from dtlab.values import ExactValue


def q_exact(x: Fraction, fmt: str) -> Fraction:
    f = get_format(fmt)
    v = decode(encode(ExactValue.of(x), f).code, f)
    assert v.is_finite
    return v.fraction


def seq_reference(a: torch.Tensor, b: torch.Tensor, fmt: str, acc: str | None = None) -> Fraction:
    """The inputs rounded to fmt, their products summed in order, each partial sum rounded once
    to acc (fmt when not given)."""
    qa = [Fraction(v) for v in quantize(a.double(), fmt).tolist()]
    qb = [Fraction(v) for v in quantize(b.double(), fmt).tolist()]
    s = Fraction(0)
    for x, y in zip(qa, qb, strict=True):
        s = q_exact(s + x * y, fmt if acc is None else acc)
    return s


def pairwise_reference(a: torch.Tensor, b: torch.Tensor, fmt: str) -> Fraction:
    qa, qb = quantize(a.double(), fmt).tolist(), quantize(b.double(), fmt).tolist()
    level = [Fraction(x) * Fraction(y) for x, y in zip(qa, qb, strict=True)]
    while len(level) > 1:
        if len(level) % 2:
            level.append(Fraction(0))
        level = [q_exact(level[i] + level[i + 1], fmt) for i in range(0, len(level), 2)]
    return level[0]


@pytest.mark.parametrize("fmt", ["bf16", "fp16", "fp8", "e5m2", "fp4", "fp32", "int8"])
@pytest.mark.parametrize("use_c", [True, False])
def test_accumulating_in_the_format_rounds_each_exact_partial_sum_once(
    fmt: str, use_c: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not use_c:
        monkeypatch.setattr(ops, "has_c_kernel", lambda: False)
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(61, generator=g) * 3, torch.rand(61, generator=g)
    r = dot(a, b, fmt, accumulate="format")
    assert Fraction(r.value) == seq_reference(a, b, fmt)
    p = dot(a, b, fmt, accumulate="pairwise")
    assert Fraction(p.value) == pairwise_reference(a, b, fmt)


def test_float32_accumulation_is_sequential_fma() -> None:
    g = torch.Generator().manual_seed(4)
    a, b = torch.randn(300, generator=g), torch.randn(300, generator=g)
    r = dot(a, b, "bf16", accumulate="float32")
    assert Fraction(r.value) == seq_reference(a, b, "bf16", acc="fp32")


def test_the_lesson_bf16_dot_product() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1000, generator=g)
    exact = dot(x, x, "fp32", accumulate="float64")
    assert exact.rel_error == 0 and exact.correct_digits == math.inf
    bf = dot(x, x, "bf16", accumulate="float32")
    assert bf.rounded_inputs == float(torch.dot(x.bfloat16().double(), x.bfloat16().double()))
    assert 1e-6 < bf.rel_error < 1e-3 and bf.operand_bytes == 4000
    stuck = dot(x, x, "bf16", accumulate="format")
    assert stuck.rel_error > 0.1  # a bf16 running sum stops growing near 256: 256 + 0.5 == 256
    assert dot(x, x, "fp8", accumulate="float32").operand_bytes == 2000


def test_round_to_odd_addition() -> None:
    a = torch.tensor([1.0, 1.0, -1.0, 2.0**60, 3.0], dtype=torch.float64)
    b = torch.tensor([2.0**-60, -(2.0**-60), -(2.0**-60), 1.0, 4.0], dtype=torch.float64)
    s = add_round_to_odd(a, b)
    one_up = torch.nextafter(
        torch.tensor(1.0, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64)
    )
    assert s[0] == one_up  # 1 + tiny: truncated to 1, then odd
    assert s[1] == torch.nextafter(
        torch.tensor(1.0, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64)
    )
    assert s[3] == torch.nextafter(
        torch.tensor(2.0**60, dtype=torch.float64), torch.tensor(math.inf, dtype=torch.float64)
    )
    assert s[4] == 7.0  # exact sums stay


def test_matmul_in_the_format_matches_dot_products() -> None:
    g = torch.Generator().manual_seed(7)
    a, b = torch.randn(5, 33, generator=g), torch.randn(33, 4, generator=g)
    for acc in (Accumulate.FORMAT, Accumulate.PAIRWISE):
        m = matmul(a, b, "bf16", accumulate=acc)
        assert m.shape == (5, 33, 4) and m.rel_error > 0
    # one output element, computed both ways
    row, col = a[2], b[:, 1]
    d = dot(row, col, "fp8", accumulate="format")
    qa, qb = quantize(a.double(), "fp8"), quantize(b.double(), "fp8")
    got = torch.zeros(5, 4, dtype=torch.float64)
    for k in range(33):
        got = quantize(add_round_to_odd(got, qa[:, k, None] * qb[None, k, :]), "fp8")
    assert float(got[2, 1]) == d.value


def test_bad_shapes() -> None:
    from dtlab.errors import OptionError

    with pytest.raises(OptionError, match="two vectors"):
        dot(torch.zeros(3), torch.zeros(4), "bf16")
    with pytest.raises(OptionError, match="unknown accumulation"):
        dot(torch.zeros(3), torch.zeros(3), "bf16", accumulate="kahan")
    with pytest.raises(OptionError, match="matrices"):
        matmul(torch.zeros(3, 2), torch.zeros(3, 2), "bf16")


def test_dot_command() -> None:
    import json

    from typer.testing import CliRunner

    from dtlab.cli.app import app
    from dtlab.inputs import load_tensor

    runner = CliRunner()
    r = runner.invoke(app, ["dot"])
    assert r.exit_code == 0 and "bfloat16" in r.stdout and "float64 reference" in r.stdout
    r = runner.invoke(
        app, ["dot", "uniform:500", "--as", "bf16", "-a", "format,pairwise", "--json"]
    )
    doc = json.loads(r.stdout)
    assert doc["schema"] == "dtlab.dot/1" and len(doc["result"]["results"]) == 2
    x = load_tensor("uniform:500").tensor
    assert doc["result"]["results"][0]["value"] == dot(x, x, "bf16", accumulate="format").value
    r = runner.invoke(app, ["dot", "uniform:5", "--with", "uniform:6"])
    assert r.exit_code == 2 and "differ in length" in r.stderr
