"""The C metrics pass takes shortcuts (vectors with no event skip the counts; thresholds made
strict in float32): on data built to sit on every edge, its counts equal the float64 torch
path's exactly, with AVX2 and without, and its sums agree to the documented 1e-6."""

import dataclasses
import math
from collections.abc import Iterator

import pytest
import torch

from dtlab.analysis.elementwise import format_partial, overflow_limits
from dtlab.analysis.metrics import Partial
from dtlab.formats import FloatFormat, get_format
from dtlab.kernels import has_c_kernel
from dtlab.modes import Rounding

pytestmark = pytest.mark.skipif(not has_c_kernel(), reason="no C kernel")

FORMATS = [
    "fp8", "e5m2", "float8_e4m3fnuz", "bf16", "fp16", "fp6", "float6_e3m2fn", "fp4", "int8",
    "int4", "uint8", "uint4", "e8m0", "e4m3:subnormals=no", "e3m0fn", "e5m2:inf=no:nan=all-ones",
    "float8_e3m4", "float8_e4m3b11fnuz", "float8_e5m2fnuz", "tf32", "int3", "uint5", "int16",
    "int24", "uint24",  # thresholds such as 8388608.5 lie between two float32 values
]  # fmt: skip
MODES = ["nearest-even", "nearest-away", "toward-zero", "up", "down"]
COUNTS = ("n", "nan", "inf", "count", "rel_count", "nonfinite")
SUMS = ("abs_sum", "abs_max", "sq_err", "rel_sum", "rel_max", "xx", "qq", "xq", "xmax")


def edges(name: str, mode: Rounding) -> list[float]:
    """Values at, and one float32 step either side of, every threshold the pass tests."""
    f = get_format(name)
    lim = overflow_limits(f, mode)
    points = [lim.pos, lim.neg, 0.5, 1.0, 2.0**-149, 2.0**-126, 3.4028234663852886e38]
    if isinstance(f, FloatFormat):
        points += [float(f.smallest_normal), float(f.smallest_subnormal), float(f.max)]
        points += [float(f.smallest_subnormal) / 2, float(f.smallest_subnormal) * 0.75]
    out = [0.0, -0.0, math.nan, math.inf, -math.inf]
    for p in points:
        if not math.isfinite(p):
            continue
        t = torch.tensor(p, dtype=torch.float32)
        up, down = torch.nextafter(t, torch.tensor(math.inf)), torch.nextafter(t, torch.tensor(0.0))
        out += [s * float(v) for v in (t, up, down) for s in (1, -1)]
    return out


def data(name: str, mode: Rounding) -> torch.Tensor:
    """Runs of each kind the C pass tells apart, then a tail that is not a multiple of 8:
    plain values (no event), values over many binades (overflows, underflows, subnormals,
    but no zero), the same with zeros, and the edges scattered among plain values (all of
    them, then those the float32 sums take)."""
    g = torch.Generator().manual_seed(3)
    scale = 2.0 if name in ("fp4", "fp6", "int4", "uint4", "e3m0fn", "int3", "uint5") else 20.0
    plain = torch.randn(3000, generator=g) * scale
    wide = torch.randn(2048, generator=g) * scale * torch.logspace(-12, 4, 2048, base=2.0)
    wide = wide[torch.randperm(wide.numel(), generator=g)]
    zeros = wide.clone()
    zeros[::7] = 0.0
    e = torch.tensor(edges(name, mode), dtype=torch.float32)
    mixed = torch.cat([torch.randn(2000, generator=g) * scale, e.repeat(4)])
    mixed = mixed[torch.randperm(mixed.numel(), generator=g)]
    # the edges the float32 sums take (zero or magnitudes in [2^-40, 2^60)), without the
    # NaN, inf and extreme values that send a run to the float64 path
    a = e.abs()
    fit = e[(a == 0) | ((a >= 2.0**-40) & (a < 2.0**60))]
    near = torch.cat([torch.randn(1000, generator=g) * scale, fit.repeat(4)])
    near = near[torch.randperm(near.numel(), generator=g)]
    x = torch.cat([plain, wide, zeros, mixed, near, e])
    return x[: x.numel() - 3]


def assert_same(want: Partial, got: Partial) -> None:
    """Counts equal, sums within the C pass's documented 1e-6."""
    assert (got.overflow, got.underflow, got.subnormal) == (
        want.overflow,
        want.underflow,
        want.subnormal,
    )
    ws, gs = dataclasses.asdict(want.sums), dataclasses.asdict(got.sums)
    assert {k: gs[k] for k in COUNTS} == {k: ws[k] for k in COUNTS}
    for k in SUMS:
        assert gs[k] == pytest.approx(ws[k], rel=1e-6), k


@pytest.fixture(params=["avx2", "portable"])
def c_variant(request: pytest.FixtureRequest) -> Iterator[str]:
    from dtlab.kernels import _quantize  # type: ignore[attr-defined]

    old = _quantize.set_avx2(request.param == "avx2")
    yield request.param
    _quantize.set_avx2(old)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", FORMATS)
def test_c_counts_equal_the_torch_path_on_every_edge(name: str, mode: str, c_variant: str) -> None:
    x = data(name, Rounding.parse(mode))
    want = format_partial(x, name, rounding=mode, backend="torch")
    got = format_partial(x, name, rounding=mode, backend="c")
    assert_same(want, got)
    reachable = overflow_limits(get_format(name), Rounding.parse(mode)).pos < 3.4e38
    assert want.overflow > 0 or not reachable  # the data reach the edges they are built for


@pytest.mark.parametrize("scale", [1e-30, 1e-13, 1e18, 1e30])
def test_tiny_and_huge_tensors_keep_their_sums(scale: float, c_variant: str) -> None:
    # float32 squares of such values would under- or overflow: the pass must not use them
    g = torch.Generator().manual_seed(4)
    x = torch.randn(4096, generator=g) * scale
    want = format_partial(x, "bf16", backend="torch").finish()
    got = format_partial(x, "bf16", backend="c").finish()
    for key in ("sqnr_db", "rmse", "cosine", "mean_rel_error", "max_abs_error"):
        assert getattr(got, key) == pytest.approx(getattr(want, key), rel=1e-6), key
    assert math.isfinite(got.sqnr_db)


@pytest.mark.parametrize(
    ("name", "overflow"), [("fp4", "saturate"), ("int4", "saturate"), ("e3m0fn", "saturate")]
)
def test_sums_of_q_stay_accurate_when_q_is_far_from_x(
    name: str, overflow: str, c_variant: str
) -> None:
    # q = x + e: sum q^2 = sum x^2 + 2 sum x e + sum e^2 cancels where q is much smaller than
    # x (saturated); it went below zero on one saturated 1e6 and the cosine raised an error
    g = torch.Generator().manual_seed(8)
    x = torch.randn(4096, generator=g) * 1e4
    x[::512] = 1e6
    want = format_partial(x, name, overflow=overflow, backend="torch")
    got = format_partial(x, name, overflow=overflow, backend="c")
    assert_same(want, got)
    assert got.finish().cosine == pytest.approx(want.finish().cosine, rel=1e-6)


def test_figures_do_not_depend_on_the_number_of_threads() -> None:
    # blocks go to whichever thread is free, and their sums merge in block order
    g = torch.Generator().manual_seed(6)
    x = torch.randn(3_000_000, generator=g) * torch.rand(3_000_000, generator=g) * 100
    x[::1000] = 0.0
    old = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(format_partial(x, "fp8", backend="c").finish())
    finally:
        torch.set_num_threads(old)
    assert results[0] == results[1] == results[2]


@pytest.mark.parametrize(
    ("name", "overflow", "subnormals"),
    [("fp8", "saturate", "keep"), ("e5m2", "saturate", "flush"), ("bf16", "inf-nan", "flush"),
     ("int8", "wrap", "keep"), ("fp16", "inf-nan", "keep"), ("fp6", "saturate", "flush")],
)  # fmt: skip
def test_c_counts_equal_the_torch_path_under_each_policy(
    name: str, overflow: str, subnormals: str, c_variant: str
) -> None:
    x = data(name, Rounding.NEAREST_EVEN)
    kw = {"overflow": overflow, "subnormals": subnormals}
    want = format_partial(x, name, backend="torch", **kw)
    got = format_partial(x, name, backend="c", **kw)
    assert_same(want, got)
