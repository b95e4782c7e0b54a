"""The C kernel, the pure-torch kernel and the exact scalar path give the same bits."""

import math

import pytest
import torch

from dtlab.formats import get_format
from dtlab.kernels import has_c_kernel, quantize
from dtlab.modes import Overflow, Rounding
from references import scalar_value

FORMATS = [
    "bf16", "fp16", "tf32", "fp32", "fp8", "e4m3fnuz", "e4m3b11fnuz", "float8_e4m3", "e5m2",
    "e5m2fnuz", "e3m4", "e8m0", "fp6", "fp6_e3m2", "fp4", "int1", "int4", "int8", "uint3",
    "int16", "uint16", "int32", "e3m3", "fp8:subnormals=no", "e5m2:inf=no:nan=all-ones", "e4m3u",
]  # fmt: skip
MODES = [
    Rounding.NEAREST_EVEN,
    Rounding.NEAREST_AWAY,
    Rounding.TOWARD_ZERO,
    Rounding.UP,
    Rounding.DOWN,
]


def _inputs() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    raw = torch.randint(-(2**31), 2**31, (3000,), generator=g, dtype=torch.int64).to(torch.int32)
    specials = [0.0, -0.0, math.inf, -math.inf, math.nan, 1.0, 0.5, 1.5, 2.5, 3.0, 448.0, 464.0,
                465.0, 2.0**-9, 2.0**-10, 3 * 2.0**-11, 6.0, 5.0, 7.0, 2.0**-127, 2.0**-128,
                2.0**-149, 65520.0, 61440.0, 127.5, -128.5, 255.5]  # fmt: skip
    specials += [-v for v in specials]
    return torch.cat([
        raw.view(torch.float32), torch.tensor(specials), torch.randn(1500, generator=g) * 10,
        torch.randn(500, generator=g) * 1e-3,
    ])  # fmt: skip


X = _inputs()


def _bits_equal(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.view(torch.int32) == b.view(torch.int32)) | (a.isnan() & b.isnan())


@pytest.fixture(params=["avx2", "portable"])
def simd(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Run the C kernel with its AVX2 kernels allowed, then with the portable ones only."""
    if not has_c_kernel():
        yield request.param
        return
    from dtlab.kernels import _quantize

    old = _quantize.set_avx2(request.param == "avx2")
    yield request.param
    _quantize.set_avx2(old)


@pytest.mark.parametrize("name", FORMATS)
def test_c_torch_and_scalar_agree(name: str, simd: str) -> None:
    fmt = get_format(name)
    policies: list[Overflow | None] = [None, Overflow.SATURATE]
    if fmt.kind == "int":
        policies.append(Overflow.WRAP)
    for mode in MODES:
        for policy in policies:
            t = quantize(X, fmt, rounding=mode, overflow=policy, backend="torch")
            if has_c_kernel():
                c = quantize(X, fmt, rounding=mode, overflow=policy, backend="c")
                same = _bits_equal(c, t)
                i = int((~same).nonzero()[0]) if not same.all() else 0
                assert same.all(), (name, mode, policy, X[i].item(), c[i].item(), t[i].item())
            if simd == "portable":
                continue  # the scalar comparison does not depend on the C variant
            for i in range(0, X.numel(), 41):
                want = torch.tensor(
                    scalar_value(X[i].item(), fmt, mode, policy), dtype=torch.float64
                )
                got = t[i : i + 1]
                assert bool(_bits_equal(got, want.float().reshape(1))), (
                    name,
                    mode,
                    policy,
                    X[i].item(),
                )
