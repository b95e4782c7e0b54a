"""Integer quantization: hand-built answers, exact per-element bounds, and a direct reference.

Exact where the arithmetic is: codes, scales (float64 quotient rounded to float32, as the
module documents), and |x - (code - zero_point) * scale| <= scale / 2 checked in float64,
where products of a float32 scale and a small integer, and their differences with a float32
x, are exact. Sums of squared errors are compared with a relative tolerance of 1e-12
(float64 sums taken in another order).
"""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dtlab.analysis.intquant import IntQuantized, int_metrics, int_quantize
from dtlab.errors import DtlabError, OptionError, UnknownFormatError
from dtlab.formats import IntFormat, get_format
from dtlab.formats.quantizer import Granularity, Quantizer, ScaleMethod, Symmetry
from dtlab.formats.quantizer_spec import int_quantizer, parse_quantizer
from dtlab.modes import Rounding

SETTINGS = settings(
    deadline=None, max_examples=30, database=None, suppress_health_check=[HealthCheck.too_slow]
)
REL = 1e-12


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def iq(
    x: object,
    fmt: object,
    *,
    rounding: object = Rounding.NEAREST_EVEN,
    generator: torch.Generator | None = None,
    **options: object,
) -> IntQuantized:
    """int_quantize with the quantizer built from keywords by int_quantizer."""
    q = int_quantizer(fmt, **options)  # type: ignore[arg-type]
    return int_quantize(x, q, rounding=rounding, generator=generator)  # type: ignore[arg-type]


def expand(values: torch.Tensor, g: Quantizer, shape: tuple[int, ...]) -> torch.Tensor:
    """Per-slice values broadcast back to every element, written independently of the module."""
    v = values.double()
    if g.axis is None:
        return v.expand(shape)
    if g.group_size is None:
        view = [1] * len(shape)
        view[g.axis] = shape[g.axis]
        return v.reshape(view).expand(shape)
    return v.repeat_interleave(g.group_size, dim=g.axis).narrow(g.axis, 0, shape[g.axis])


def per_element(q: IntQuantized) -> tuple[torch.Tensor, torch.Tensor]:
    shape = tuple(q.codes.shape)
    s = expand(q.scales, q.spec, shape)
    zp = q.zero_points
    z = torch.zeros(shape, dtype=torch.float64) if zp is None else expand(zp, q.spec, shape)
    return s, z


def sse(x: torch.Tensor, q: IntQuantized) -> float:
    return float(((q.dequantize().double() - x.double()) ** 2).sum())


def f32(v: float) -> float:
    return float(torch.tensor(v, dtype=torch.float64).float())


def f32_up(width: float, levels: int) -> float:
    """width / levels rounded up to float32, the asymmetric convention."""
    s = f32(width / levels)
    if Fraction(s) * levels < Fraction(width):
        s = float(np.nextafter(np.float32(s), np.float32(np.inf)))
    assert Fraction(s) * levels >= Fraction(width)
    return s


# ---- hand-built answers --------------------------------------------------------------------


def test_symmetric_int8_known_answer() -> None:
    q = iq(torch.tensor([-1.0, 0.0, 0.5, 1.0]), "int8")
    assert q.scales.dtype == torch.float32 and q.scales.shape == ()
    assert q.scales.item() == f32(1 / 127)
    # float32(1/127) is just below 1/127, so 0.5 / scale = 63.500001: no tie, and it gives 64
    assert 0.5 / q.scales.double().item() > 63.5
    assert q.codes.tolist() == [-127, 0, 64, 127]
    assert q.codes.dtype == torch.int8 and q.zero_points is None
    s = q.scales.item()
    assert q.dequantize().tolist() == [f32(-127 * s), 0.0, f32(64 * s), f32(127 * s)]
    assert q.spec.symmetry is Symmetry.SYMMETRIC and q.spec.granularity is Granularity.TENSOR


@pytest.mark.parametrize(
    ("rounding", "codes"),
    [
        (Rounding.NEAREST_EVEN, [2, 2, 0, -2, 127]),
        (Rounding.NEAREST_AWAY, [3, 2, -1, -3, 127]),
        (Rounding.TOWARD_ZERO, [2, 1, 0, -2, 127]),
        (Rounding.UP, [3, 2, 0, -2, 127]),
        (Rounding.DOWN, [2, 1, -1, -3, 127]),
    ],
)
def test_real_ties_follow_the_rounding_mode(rounding: Rounding, codes: list[int]) -> None:
    q = iq(torch.tensor([2.5, 1.5, -0.5, -2.5, 127.0]), "int8", rounding=rounding)
    assert q.scales.item() == 1.0  # amax 127 over qmax 127: the quotients are the inputs
    assert q.codes.tolist() == codes


def test_asymmetric_uint8_known_answers() -> None:
    q = iq(torch.tensor([0.0, 1.0, 2.0, 3.0]), "uint8", symmetric=False)
    assert q.codes.dtype == torch.uint8
    assert q.codes.tolist() == [0, 85, 170, 255] and q.zero_points is not None
    assert q.zero_points.item() == 0
    assert q.scales.item() == f32_up(3, 255)
    q = iq(torch.tensor([1.0, 2.0, 3.0]), "uint8", symmetric=False)  # widened to 0
    assert q.codes.tolist() == [85, 170, 255]
    q = iq(torch.tensor([-1.0, 0.0, 2.0]), "uint8", symmetric=Symmetry.ASYMMETRIC)
    assert q.zero_points is not None and q.zero_points.item() == 85
    assert q.codes.tolist() == [0, 85, 255] and q.dequantize()[1].item() == 0.0


def test_asymmetric_scales_round_up_so_the_range_fits_after_the_zero_point_rounds() -> None:
    # found by search: with the nearest float32 scale, 45/64 would land at 15.5000003 steps,
    # beyond the codes' half-step band; the scale rounded up keeps every value within s/2
    x = torch.tensor([-5 / 64, 0.0, 45 / 64])
    q = iq(x, "uint4", symmetric=False)
    s = q.scales.item()
    assert s == f32_up(50 / 64, 15) and s != f32(50 / 64 / 15)
    assert q.zero_points is not None and q.zero_points.item() == 1
    assert q.codes.tolist() == [0, 1, 14] and q.clipped == 0  # 45/64: 14.4999994 steps
    for v, c in zip(x.tolist(), q.codes.tolist(), strict=True):
        assert abs(Fraction(v) - (c - 1) * Fraction(s)) <= Fraction(s) / 2


def test_asymmetric_uint8_uses_the_whole_range_and_keeps_zero_exact() -> None:
    x = torch.linspace(-1.0, 3.0, 1001)
    x[250] = 0.0
    q = iq(x, "uint8", symmetric=False)
    assert q.zero_points is not None and q.zero_points.item() == 64  # round(255 / 4 = 63.75)
    assert int(q.codes.min()) == 0 and int(q.codes.max()) == 255
    assert q.codes[250].item() == 64 and q.dequantize()[250].item() == 0.0
    assert torch.unique(q.codes).numel() == 256


def test_signed_asymmetric_and_symmetric_code_ranges() -> None:
    x = torch.randn(4000, generator=gen(0)) * 3
    sym = iq(x, "int8", method=ScaleMethod.PERCENTILE, percentile=90)
    assert sym.clipped > 0  # clipping pushes values to the ends, which stay -127..127
    assert int(sym.codes.min()) == -127 and int(sym.codes.max()) == 127
    asym = iq(x, "int8", symmetric=False, method="percentile", percentile=90)
    assert int(asym.codes.min()) == -128 and int(asym.codes.max()) == 127


def test_percentile_clips_exactly_the_expected_count() -> None:
    mags = torch.arange(101.0)  # percentile 90 of 0..100 is 90 exactly
    x = torch.where(torch.arange(101) % 2 == 0, mags, -mags)
    q = iq(x, "int8", method=ScaleMethod.PERCENTILE, percentile=90)
    assert q.scales.item() == f32(90 / 127)
    assert q.clipped == 10
    report = int_metrics(x, q)
    assert report.metrics.overflow == 10 and report.clipped == 10
    clipped = (x.double() - q.dequantize().double()).abs() > q.scales.double() / 2
    assert clipped.sum().item() == 10 and bool((mags[clipped] > 90).all())
    # asymmetric: percentiles 10 and 90 of 0..100 are 10 and 90; widened to [0, 90]
    q = iq(mags, "uint8", symmetric=False, method="percentile", percentile=90)
    assert q.clipped == 10 and q.zero_points is not None and q.zero_points.item() == 0


@pytest.mark.parametrize("symmetric", [True, False])
def test_percentile_matches_numpy_per_row(symmetric: bool) -> None:
    x = torch.randn(6, 333, generator=gen(1)).exp() - 1.2
    p = 97.5
    q = iq(x, "int8", symmetric=symmetric, axis=0, method="percentile", percentile=p)
    rows = x.double().numpy()
    if symmetric:
        want = np.percentile(np.abs(rows), p, axis=1) / 127
    else:
        hi = np.maximum(np.percentile(rows, p, axis=1), 0)
        lo = np.minimum(np.percentile(rows, 100 - p, axis=1), 0)
        want = (hi - lo) / 255
    np.testing.assert_allclose(q.scales.double().numpy(), want, rtol=2.0**-23, atol=0)


# ---- round trips and exact bounds -----------------------------------------------------------

SIGNED = ["int2", "int3", "int4", "int8", "int16"]
UNSIGNED = ["uint4", "uint8"]


@st.composite
def cases(draw: st.DrawFn) -> dict[str, object]:
    shape = tuple(draw(st.lists(st.integers(1, 9), min_size=1, max_size=3)))
    kind = draw(st.sampled_from(["tensor", "channel", "group"]))
    opts: dict[str, object] = {}
    if kind != "tensor":
        opts["axis"] = draw(st.integers(-len(shape), len(shape) - 1))
    if kind == "group":
        opts["group_size"] = draw(st.integers(1, 6))
    fmt = draw(st.sampled_from(SIGNED + UNSIGNED))
    opts["symmetric"] = fmt in SIGNED and draw(st.booleans())
    opts["fmt"] = fmt
    seed, exp = draw(st.integers(0, 2**31)), draw(st.integers(-30, 30))
    x = torch.randn(shape, generator=gen(seed)) * 2.0**exp
    if draw(st.booleans()):  # heavy tails and exact zeros
        x = x**3 * (torch.rand(shape, generator=gen(seed + 1)) > 0.2)
    return {"x": x, "opts": opts}


@SETTINGS
@given(cases())
def test_absmax_round_trip_is_within_half_a_step(case: dict[str, object]) -> None:
    x, opts = case["x"], dict(case["opts"])  # type: ignore[call-overload]
    assert isinstance(x, torch.Tensor)
    fmt = get_format(opts.pop("fmt"))
    assert isinstance(fmt, IntFormat)
    q = iq(x, fmt, **opts)
    assert q.codes.shape == x.shape and q.clipped == 0
    s, z = per_element(q)
    c = q.codes.double()
    qmin = -fmt.max if q.zero_points is None else fmt.min
    assert bool(((c >= qmin) & (c <= fmt.max)).all())
    assert bool(((x.double() - (c - z) * s).abs() <= s / 2).all())
    assert torch.equal(q.dequantize(), ((c - z) * s).float())
    # the codes are those of a direct float64 re-computation
    want = (torch.round(x.double() / s) + z).clamp(qmin, fmt.max)
    assert torch.equal(c, want)
    assert int_metrics(x, q).metrics.overflow == 0


@SETTINGS
@given(cases())
def test_mse_search_is_never_worse_than_absmax(case: dict[str, object]) -> None:
    x, opts = case["x"], dict(case["opts"])  # type: ignore[call-overload]
    assert isinstance(x, torch.Tensor)
    fmt = opts.pop("fmt")
    absmax = iq(x, fmt, **opts)
    mse = iq(x, fmt, method=ScaleMethod.MSE, **opts)
    a, m = sse(x, absmax), sse(x, mse)
    assert m <= a * (1 + REL)
    assert bool((mse.scales <= absmax.scales).all())  # alpha <= 1 only shrinks the range


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize(("fmt", "symmetric"), [("int3", True), ("int4", True), ("uint4", False)])
def test_mse_search_measures_values_rounded_to_the_input_dtype(
    dtype: torch.dtype, fmt: str, symmetric: bool
) -> None:
    """Per row, never worse than absmax after the dequantized values are rounded to bf16/fp16
    (a search in float64 alone fails this for hundreds of rows)."""
    x = torch.randn(256, 4, generator=gen(13)).to(dtype)
    absmax = iq(x, fmt, symmetric=symmetric, axis=0)
    mse = iq(x, fmt, symmetric=symmetric, axis=0, method="mse")

    def row_sse(q: IntQuantized) -> torch.Tensor:
        return ((q.dequantize().double() - x.double()) ** 2).sum(dim=1)

    assert bool((row_sse(mse) <= row_sse(absmax) * (1 + REL)).all())
    assert bool((row_sse(mse) < row_sse(absmax)).any())


def student_t(shape: tuple[int, ...], df: int, seed: int) -> torch.Tensor:
    g = gen(seed)
    z = torch.randn(shape, generator=g)
    chi2 = (torch.randn((df, *shape), generator=g) ** 2).sum(0)
    return z / (chi2 / df).sqrt()


@pytest.mark.parametrize("symmetric", [True, False])
def test_mse_search_is_strictly_better_on_heavy_tails(symmetric: bool) -> None:
    x = student_t((16, 512), df=3, seed=2)
    absmax = iq(x, "int4", symmetric=symmetric, axis=0)
    mse = iq(x, "int4", symmetric=symmetric, axis=0, method="mse")
    assert sse(x, mse) < 0.9 * sse(x, absmax)
    assert mse.clipped > 0 and bool((mse.scales < absmax.scales).any())


def test_per_channel_beats_per_tensor_when_rows_differ_in_scale() -> None:
    x = torch.randn(8, 256, generator=gen(3)) * 10.0 ** torch.arange(-3, 5.0)[:, None]
    tensor = iq(x, "int8")
    channel = iq(x, "int8", axis=0)
    assert channel.scales.shape == (8,)
    assert sse(x, channel) < sse(x, tensor)
    rel_t = int_metrics(x, tensor).metrics.mean_rel_error
    rel_c = int_metrics(x, channel).metrics.mean_rel_error
    assert rel_c < rel_t / 10


def test_groups_beat_channels_when_rows_hold_outliers() -> None:
    x = torch.randn(8, 512, generator=gen(4))
    x[torch.arange(8), torch.arange(8) * 37] = 200.0  # one outlier per row, in one group
    channel = iq(x, "int4", axis=0)
    group = iq(x, "int4", axis=1, group_size=128)
    assert group.scales.shape == (8, 4)
    assert sse(x, group) < sse(x, channel) / 2


# ---- granularity: scales against a loop over slices ----------------------------------------


def slice_scales(x: torch.Tensor, axis: int | None, group: int | None, qmax: int) -> torch.Tensor:
    """amax / qmax of every slice, walking the slices one by one."""
    xd = x.double()
    if axis is None:
        return torch.tensor(float(xd.abs().max()) / qmax).float()
    if group is None:
        return torch.tensor([float(xd.select(axis, i).abs().max()) / qmax
                             for i in range(x.shape[axis])]).float()  # fmt: skip
    n = x.shape[axis]
    cols = []
    for start in range(0, n, group):
        part = xd.narrow(axis, start, min(group, n - start))
        cols.append(part.abs().amax(dim=axis, keepdim=True) / qmax)
    return torch.cat(cols, dim=axis).float()


@pytest.mark.parametrize(
    ("shape", "axis", "group"),
    [
        ((10, 7), 1, 3),  # ragged: 3 + 3 + 1
        ((10, 7), 0, 3),  # ragged along axis 0: 3 + 3 + 3 + 1
        ((10, 7), 0, 5),
        ((10, 7), -1, 7),
        ((10, 7), 1, 100),  # one group larger than the axis
        ((13,), 0, 4),
        ((3, 5, 6), 1, 2),
        ((3, 5, 6), 1, None),
        ((3, 5, 6), -1, None),
        ((3, 5, 6), 2, 4),
        ((3, 5, 6), None, None),
    ],
)
def test_scales_match_a_loop_over_slices(
    shape: tuple[int, ...], axis: int | None, group: int | None
) -> None:
    x = torch.randn(shape, generator=gen(5)) * torch.rand(shape, generator=gen(6)).exp()
    q = iq(x, "int8", axis=axis, group_size=group)
    norm = None if axis is None else axis % len(shape)
    assert (q.spec.axis, q.spec.group_size) == (norm, group)
    want = slice_scales(x, norm, group, 127)
    assert q.scales.shape == want.shape and torch.equal(q.scales, want)
    s, _ = per_element(q)
    assert torch.equal(q.codes.double(), torch.round(x.double() / s).clamp(-127, 127))


def test_channels_of_a_1d_tensor_share_one_scale_as_in_model_memory() -> None:
    """One rule for quantize and memory: below rank 2 there are no channels (a bias, a norm),
    so 'per channel' is one scale per tensor, not one per value (40 bits per value)."""
    x = torch.randn(13, generator=gen(5))
    q = iq(x, "int8", axis=-1)
    assert q.spec.granularity is Granularity.TENSOR and q.scales.shape == ()
    assert q.effective_bits == 8 + Fraction(32, 13)
    assert parse_quantizer("int8:channel").scale_count((13,)) == 1


def test_group_size_defaults_to_the_last_axis_and_scalars_work() -> None:
    x = torch.randn(4, 10, generator=gen(7))
    assert torch.equal(iq(x, "int4", group_size=4).scales,
                       iq(x, "int4", axis=1, group_size=4).scales)  # fmt: skip
    q = iq(torch.tensor(-3.0), "int4")
    assert q.codes.item() == -7 and q.dequantize().item() == -3.0


@pytest.mark.parametrize(
    ("fmt", "dtype"),
    [("int2", torch.int8), ("uint3", torch.uint8), ("uint8", torch.uint8), ("int9", torch.int16),
     ("uint15", torch.int16), ("uint16", torch.int32), ("int32", torch.int32),
     ("uint32", torch.int64)],
)  # fmt: skip
def test_codes_use_the_smallest_dtype_that_holds_them(fmt: str, dtype: torch.dtype) -> None:
    f = get_format(fmt)
    assert isinstance(f, IntFormat)
    x = torch.tensor([-1.0, -0.25, 0.0, 0.5, 3.0])  # asymmetric: the zero point is a quarter up
    symmetric = f.signed and f.bits > 8
    q = iq(x, f, symmetric=symmetric)
    assert q.codes.dtype == dtype
    assert q.zero_points is None or q.zero_points.dtype == dtype
    c, qmin = q.codes.long(), -f.max if symmetric else f.min
    assert int(c.min()) >= qmin and 0 <= f.max - int(c.max()) <= f.max >> 22
    if f.bits <= 16:  # wider codes are finer than a float32 scale can place the range
        assert int(c.max()) == f.max
        assert int(c.min()) == (qmin if not symmetric else round(-f.max / 3))


# ---- storage cost ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "fmt", "opts", "bits"),
    [
        ((4, 256), "int4", {"group_size": 128}, Fraction(17, 4)),  # 4 + 32/128
        ((4, 256), "int4", {"group_size": 128, "symmetric": False}, 4 + Fraction(36, 128)),
        ((4, 256), "uint4", {"group_size": 128, "symmetric": False}, 4 + Fraction(36, 128)),
        ((2, 200), "int4", {"group_size": 128}, 4 + Fraction(4 * 32, 400)),  # ragged
        ((1000,), "int8", {}, 8 + Fraction(32, 1000)),
        ((16, 64), "int8", {"axis": 0}, 8 + Fraction(32, 64)),
        ((16, 64), "uint8", {"axis": 1, "symmetric": False}, 8 + Fraction(40, 16)),
    ],
)
def test_effective_bits(shape: tuple[int, ...], fmt: str, opts: dict[str, object],
                        bits: Fraction) -> None:  # fmt: skip
    x = torch.randn(shape, generator=gen(8))
    q = iq(x, fmt, **opts)  # type: ignore[arg-type]
    assert q.effective_bits == bits and isinstance(q.effective_bits, Fraction)
    assert int_metrics(x, q).effective_bits == bits


# ---- special values, dtypes, zero slices -----------------------------------------------------


def test_nan_and_inf_are_reported_not_refused() -> None:
    x = torch.tensor([[1.0, math.nan, -2.0, math.inf], [0.5, 0.25, -math.inf, math.nan]])
    for symmetric in (True, False):
        q = iq(x, "int8", symmetric=symmetric, axis=0)
        d = q.dequantize()
        assert q.nan_mask is not None and torch.equal(d.isnan(), x.isnan())
        assert torch.equal(d[x.isfinite()].isfinite(), torch.ones(4, dtype=torch.bool))
        assert q.clipped == 0
        if symmetric:
            assert q.scales.tolist() == [f32(2 / 127), f32(0.5 / 127)]  # finite values only
            assert d[0, 3].item() == f32(127 * q.scales[0].item())  # inf saturates
            assert d[1, 2].item() == f32(-127 * q.scales[1].item())
        r = int_metrics(x, q)
        assert r.metrics.input_nan == 2 and r.metrics.input_inf == 2 and r.metrics.overflow == 0
    all_nan = iq(torch.full((3,), math.nan), "int4", method="mse")
    assert all_nan.scales.item() == 1.0 and bool(all_nan.dequantize().isnan().all())
    assert iq(torch.ones(3), "int4").nan_mask is None


def test_zero_slices_get_scale_one() -> None:
    x = torch.zeros(3, 4)
    x[1] = torch.tensor([0.0, 1.0, -1.0, 0.5])
    for symmetric, fmt in ((True, "int8"), (False, "uint8"), (False, "int8")):
        for method in ScaleMethod:
            q = iq(x, fmt, symmetric=symmetric, axis=0, method=method)
            assert q.scales[0].item() == 1.0 and q.scales[2].item() == 1.0
            assert torch.equal(q.dequantize()[0], torch.zeros(4))
    q = iq(x, "uint8", symmetric=False, axis=0)
    # row 1: [-1, 1] over 255 steps, scale rounded up: zero point round(127.49999) = 127
    assert q.zero_points is not None and q.zero_points.tolist() == [0, 127, 0]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_dequantize_keeps_the_input_dtype(dtype: torch.dtype) -> None:
    x = (torch.randn(6, 40, generator=gen(9)) * 3).to(dtype)
    q = iq(x, "int4", group_size=16, method="mse")
    d = q.dequantize()
    assert d.dtype == dtype
    s, z = per_element(q)
    assert torch.equal(d, ((q.codes.double() - z) * s).to(dtype))
    assert int_metrics(x, q).metrics.n == x.numel()


def test_stochastic_rounding_is_seeded_and_brackets_the_quotient() -> None:
    x = torch.randn(2000, generator=gen(10))
    a = iq(x, "int4", rounding="stochastic", generator=gen(11))
    b = iq(x, "int4", rounding=Rounding.STOCHASTIC, generator=gen(11))
    assert torch.equal(a.codes, b.codes)
    t = x.double() / a.scales.double()
    c = a.codes.double()
    assert bool(((c >= t.floor()) & (c <= t.ceil())).all())
    assert not torch.equal(a.codes, iq(x, "int4").codes)


# ---- bad arguments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((torch.ones(3), "uint8"), {}, "symmetrically"),
        ((torch.ones(3), "int1"), {}, "symmetrically"),
        ((torch.ones(3), "fp8"), {}, "integer format"),
        ((torch.ones(3), "int64"), {}, "up to 32 bits"),
        ((torch.ones(3, dtype=torch.int32), "int8"), {}, "floating-point tensor"),
        (([1.0, 2.0], "int8"), {}, "floating-point tensor"),
        ((torch.ones(0), "int8"), {}, "non-empty"),
        ((torch.ones(3, 4), "int8"), {"axis": 2}, "out of range"),
        ((torch.ones(3, 4), "int8"), {"axis": -3}, "out of range"),
        ((torch.ones(3, 4), "int8"), {"axis": 1.0}, "out of range"),
        ((torch.tensor(1.0), "int8"), {"axis": 0}, "out of range"),
        ((torch.ones(3, 4), "int8"), {"group_size": 0}, "group size must be an integer"),
        ((torch.ones(3, 4), "int8"), {"group_size": True}, "group size must be an integer"),
        ((torch.ones(3, 4), "int8"), {"percentile": 0}, "percentile"),
        ((torch.ones(3, 4), "int8"), {"percentile": 100.5}, "percentile"),
        ((torch.ones(3, 4), "int8"), {"method": "median"}, "scale method"),
        ((torch.ones(3, 4), "int8"), {"symmetric": "yes"}, "symmetric"),
        ((torch.ones(3, 4), "int8"), {"rounding": "sideways"}, "rounding"),
    ],
)
def test_bad_arguments_raise_one_line_option_errors(
    args: tuple[object, ...], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(OptionError, match=message) as info:
        iq(*args, **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_other_bad_inputs() -> None:
    with pytest.raises(UnknownFormatError):
        iq(torch.ones(3), "int8x")
    with pytest.raises(DtlabError, match="a group size needs"):
        Quantizer(IntFormat(8), Granularity.TENSOR, group_size=4)
    q = iq(torch.ones(3), "int8")
    with pytest.raises(OptionError, match="shape"):
        int_metrics(torch.ones(4), q)
    assert iq(torch.ones(3), IntFormat(8)).codes.tolist() == [127] * 3
    assert iq(torch.ones(3), torch.int8).codes.tolist() == [127] * 3


def test_the_pure_torch_kernel_path_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """CUDA tensors take the pure-torch path of kernels.quantize; run it here on the CPU."""
    import dtlab.kernels.native as native

    x = student_t((6, 50), df=3, seed=12)
    opts: list[dict[str, object]] = [
        {"axis": 1, "group_size": 16, "method": "mse"},
        {"axis": 0, "symmetric": False, "method": "percentile", "percentile": 95.0},
        {"rounding": "nearest-away"},
    ]
    with_c = [iq(x, "int4", **o) for o in opts]  # type: ignore[arg-type]
    monkeypatch.setattr(native, "_c", None)
    for o, a in zip(opts, with_c, strict=True):
        b = iq(x, "int4", **o)  # type: ignore[arg-type]
        assert torch.equal(a.codes, b.codes) and torch.equal(a.scales, b.scales)


def test_a_group_larger_than_its_axis_pads_nothing() -> None:
    """Issue 14: int4:g1000000 padded every row to a million values (8 GB for a small tensor);
    one group covering the axis is the same quantizer."""
    from dtlab.analysis.intquant import _Slices

    x = torch.randn(50, 100, generator=gen(3))
    huge, exact = int_quantize(x, "int4:g1000000"), int_quantize(x, "int4:g100")
    assert torch.equal(huge.codes, exact.codes) and torch.equal(huge.scales, exact.scales)
    assert huge.effective_bits == exact.effective_bits
    assert _Slices((50, 100), huge.spec).width == 100
