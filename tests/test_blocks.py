"""Block formats (OCP MX, NVFP4, NF4): hand-built blocks, gfloat, torchao's and bitsandbytes'
formulas, special cases and properties. Facts cited as FORMATS.md are /work/shared/FORMATS.md."""

from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
import torch
from gfloat import compute_scale_amax, encode_block, quantize_block
from gfloat.formats import (
    format_info_mxfp4_e2m1,
    format_info_mxfp6_e2m3,
    format_info_mxfp6_e3m2,
    format_info_mxfp8_e4m3,
    format_info_mxfp8_e5m2,
    format_info_mxint8,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from dtlab.analysis.blockquant import block_metrics, block_quantize
from dtlab.errors import DtlabError, FormatSpecError, OptionError, UnknownFormatError
from dtlab.formats import get_format
from dtlab.formats.blocks import (
    BLOCK_FORMATS,
    NF4_TABLE,
    BlockFormat,
    ScaleKind,
    ScaleRule,
    effective_bits,
    get_block_format,
)
from dtlab.formats.quantizer_spec import block_quantizer

MX = ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp4", "mxint8"]
MX_FLOAT = MX[:-1]
GFLOAT = {  # gfloat/formats.py BlockFormatInfo for each MX format
    "mxfp8_e4m3": format_info_mxfp8_e4m3,
    "mxfp8_e5m2": format_info_mxfp8_e5m2,
    "mxfp6_e2m3": format_info_mxfp6_e2m3,
    "mxfp6_e3m2": format_info_mxfp6_e3m2,
    "mxfp4": format_info_mxfp4_e2m1,
    "mxint8": format_info_mxint8,
}
NAN, INF = math.nan, math.inf


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal values (NaN equal to NaN, -0 equal to 0), same shape."""
    a64, b64 = a.double(), b.double()
    return a.shape == b.shape and bool(((a64 == b64) | (a64.isnan() & b64.isnan())).all())


def dq(values: list[float] | torch.Tensor, name: str, rule: str = "floor") -> torch.Tensor:
    x = values if isinstance(values, torch.Tensor) else torch.tensor(values, dtype=torch.float32)
    return block_quantize(x, block_quantizer(name, scale_rule=rule)).dequantize()


# ---- catalogue ----------------------------------------------------------------------------

# name, element, block, scale, emax_elem, element max: FORMATS.md §3 table, §4, §5
CATALOGUE = [
    ("mxfp8_e4m3", "float8_e4m3fn", 32, ScaleKind.E8M0, 8, Fraction(448)),
    ("mxfp8_e5m2", "float8_e5m2", 32, ScaleKind.E8M0, 15, Fraction(57344)),
    ("mxfp6_e2m3", "float6_e2m3fn", 32, ScaleKind.E8M0, 2, Fraction(15, 2)),
    ("mxfp6_e3m2", "float6_e3m2fn", 32, ScaleKind.E8M0, 4, Fraction(28)),
    ("mxfp4", "float4_e2m1fn", 32, ScaleKind.E8M0, 2, Fraction(6)),
    ("mxint8", "int8", 32, ScaleKind.E8M0, 0, Fraction(127, 64)),
    ("nvfp4", "float4_e2m1fn", 16, ScaleKind.UE4M3, 2, Fraction(6)),
    ("nf4", "", 64, ScaleKind.ABSMAX_FP32, 0, Fraction(1)),
]


@pytest.mark.parametrize(("name", "element", "block", "scale", "emax", "emaxval"), CATALOGUE)
def test_catalogue(
    name: str, element: str, block: int, scale: ScaleKind, emax: int, emaxval: Fraction
) -> None:
    f = get_block_format(name.upper())
    elem = f.element.name if f.element is not None else ""
    assert (f.name, elem, f.block_size, f.scale) == (name, element, block, scale)
    assert (f.emax, f.element_max, f.tensor_scale) == (emax, emaxval, name == "nvfp4")
    assert get_block_format(f) is f
    assert set(BLOCK_FORMATS) == {row[0] for row in CATALOGUE}


def test_mxint8_elements_are_k_over_64() -> None:
    # FORMATS.md §3: int8 two's complement with an implicit 2^-6; gfloat decodes 0x80 as -2
    f = get_block_format("mxint8")
    assert (f.element_min, f.element_max, f.element_exp) == (Fraction(-2), Fraction(127, 64), -6)


def test_unknown_name_is_one_line_naming_the_known_ones() -> None:
    with pytest.raises(UnknownFormatError) as info:
        get_block_format("mxfp5")
    message = str(info.value)
    assert isinstance(info.value, DtlabError) and "\n" not in message
    assert "'mxfp5'" in message and all(name in message for name in BLOCK_FORMATS)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"block_size": 0, "scale": ScaleKind.E8M0, "element": "fp4"},
        {"block_size": 32, "scale": ScaleKind.E8M0},  # neither element nor table
        {"block_size": 32, "scale": ScaleKind.E8M0, "element": "bf16"},  # 16-bit codes
        {"block_size": 32, "scale": ScaleKind.E8M0, "element": "fp4", "tensor_scale": True},
        {"block_size": 32, "scale": ScaleKind.UE4M3, "element": "fp4"},  # no tensor scale
        {"block_size": 32, "scale": ScaleKind.ABSMAX_FP32, "element": "fp4"},
        {"block_size": 64, "scale": ScaleKind.ABSMAX_FP32, "table": (1.0, 0.0)},  # decreasing
        {"block_size": 64, "scale": ScaleKind.ABSMAX_FP32, "table": (0.0, 0.5, 1.0)},  # 3 values
        {"block_size": 64, "scale": ScaleKind.E8M0, "table": (0.0, 1.0)},
    ],
)
def test_inconsistent_descriptors_are_refused(kwargs: dict[str, object]) -> None:
    if "element" in kwargs:  # an element is a Format, composed, not named
        kwargs = {**kwargs, "element": get_format(kwargs["element"])}
    with pytest.raises(FormatSpecError):
        BlockFormat("bad", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "bits"),
    [  # element bits + scale bits / block (FORMATS.md §3-5); NF4 without double quantization
        ("mxfp8_e4m3", Fraction(33, 4)),
        ("mxfp8_e5m2", Fraction(33, 4)),
        ("mxfp6_e2m3", Fraction(25, 4)),
        ("mxfp6_e3m2", Fraction(25, 4)),
        ("mxfp4", Fraction(17, 4)),  # 4 + 8/32 = 4.25
        ("mxint8", Fraction(33, 4)),
        ("nvfp4", Fraction(9, 2)),  # 4 + 8/16, per-tensor fp32 scalar excluded
        ("nf4", Fraction(9, 2)),  # 4 + 32/64
    ],
)
def test_effective_bits(name: str, bits: Fraction) -> None:
    assert effective_bits(name) == bits
    assert block_metrics(torch.ones(3), name).effective_bits == bits


# ---- hand-built MX blocks -----------------------------------------------------------------

# format, rule, block, E8M0 code of X, dequantized block; FORMATS.md §3 "checked" lines
KNOWN = [
    ("mxfp4", "floor", [3.5, 1.0], 126, [3.0, 1.0]),  # microxcaling: X=0.5, 3.5 clamps to 3.0
    ("mxfp4", "floor", [7.0, -7.0], 127, [6.0, -6.0]),  # amax 7 -> 6
    ("mxfp8_e4m3", "floor", [500.0], 127, [448.0]),  # E4M3 amax 500: FLOOR X=1, 448
    ("mxfp8_e4m3", "ceil", [500.0], 128, [512.0]),  # CEIL X=2: 250 -> 256
    ("mxfp8_e4m3", "rceil", [500.0], 128, [512.0]),  # RCEIL X=2
    ("mxfp8_e4m3", "ceil", [300.0], 128, [288.0]),  # amax 300: CEIL X=2 (150 -> 144)
    ("mxfp8_e4m3", "rceil", [300.0], 127, [288.0]),  # RCEIL X=1 (300 -> 288)
    ("mxfp8_e4m3", "floor", [300.0], 127, [288.0]),
    ("mxfp8_e4m3", "rceil", [448.0], 127, [448.0]),  # amax/elem_max exactly 1: no round-up
    ("mxfp8_e4m3", "ceil", [256.0], 127, [256.0]),  # ceil of an exact power of two
    ("mxfp4", "even", [3.5, 1.0], 127, [4.0, 1.0]),  # 1.75*2 rounds up a binade: X=1, 3.5 -> 4
    ("mxfp4", "even", [3.4, 1.0], 126, [3.0, 1.0]),  # 1.7*2 does not: FLOOR's X
    ("mxfp8_e4m3", "even", [1.90625], 119, [1.75]),  # below 2 - 2^-4: FLOOR's X, 488 -> 448
    ("mxfp8_e4m3", "even", [1.9375], 120, [2.0]),  # 2 - 2^-4 carries: X = 2^-7, 248 -> 256
    ("mxint8", "floor", [1.999, -1.999], 127, [1.984375, -2.0]),  # gfloat: -2 reachable
    ("mxint8", "even", [1.999], 128, [2.0]),  # 1.999 >= 2 - 2^-7: carry, 1.999/2 -> 64/64
    ("mxfp6_e2m3", "floor", [7.75, 0.3], 127, [7.5, 0.25]),
    ("mxfp6_e3m2", "floor", [30.0, -0.2], 127, [28.0, -0.1875]),
    ("mxfp8_e5m2", "floor", [60000.0, 1.0], 127, [57344.0, 1.0]),
]


@pytest.mark.parametrize(("name", "rule", "block", "code", "want"), KNOWN)
def test_known_blocks(
    name: str, rule: str, block: list[float], code: int, want: list[float]
) -> None:
    q = block_quantize(
        torch.tensor(block, dtype=torch.float64), block_quantizer(name, scale_rule=rule)
    )
    assert q.scales.tolist() == [code]
    assert q.dequantize().tolist() == want


def test_scale_rule_is_an_enum_with_floor_by_default() -> None:
    x = torch.tensor([500.0])
    assert block_quantize(x, "mxfp8_e4m3").scale_rule is ScaleRule.FLOOR
    q = block_quantize(x, block_quantizer("mxfp8_e4m3", scale_rule=ScaleRule.RCEIL))
    assert q.scale_rule is ScaleRule.RCEIL and q.scales.tolist() == [128]
    assert block_quantize(x, "nf4").scale_rule is None


def reference_log2_x(amax: float, name: str, rule: ScaleRule) -> int:
    """log2 X for one block, scalar and exact (FORMATS.md §3); EVEN is torchao's fp32 bit trick
    (add half an element ulp to the bits, keep sign and exponent)."""
    f = get_block_format(name)
    if amax == 0:
        return -127
    floor_log2 = math.frexp(amax)[1] - 1
    if rule is ScaleRule.FLOOR:
        k = floor_log2 - f.emax
    elif rule is ScaleRule.CEIL:
        k = floor_log2 + (Fraction(amax) != Fraction(2) ** floor_log2) - f.emax
    elif rule is ScaleRule.RCEIL:  # the smallest k with elem_max * 2^k >= amax
        k = floor_log2 - f.emax - 2
        while f.element_max * Fraction(2) ** k < Fraction(amax):
            k += 1
    else:
        bits = int(np.array(amax, dtype=np.float32).view(np.int32))
        bits = (bits + (1 << (23 - f.man_bits - 1))) & 0x7F800000
        k = (bits >> 23) - 127 - f.emax
    return max(-127, min(127, k))


@pytest.mark.parametrize("name", MX)
def test_scale_rules_against_a_scalar_reference(name: str) -> None:
    g = torch.Generator().manual_seed(9)
    x = torch.randn(200, 32, generator=g) * 2.0 ** torch.randint(-120, 120, (200, 1), generator=g)
    x[:20, 0] = 2.0 ** torch.arange(-10, 10)  # exact powers of two
    x[20:40, 0] = 448.0 * 2.0 ** torch.arange(-10, 10)  # elem_max-like multiples
    x[40:60, 0] = 1.9375 * 2.0 ** torch.arange(-10, 10)  # EVEN carries for E4M3/E2M3
    amax = x.abs().amax(dim=-1).tolist()
    for rule in ScaleRule:
        got = (
            block_quantize(x, block_quantizer(name, scale_rule=rule)).scales.long().flatten() - 127
        )
        want = [reference_log2_x(a, name, rule) for a in amax]
        assert got.tolist() == want, (name, rule)


@pytest.mark.parametrize("name", MX)
@pytest.mark.parametrize("rule", list(ScaleRule))
def test_all_zero_block_takes_the_smallest_scale(name: str, rule: ScaleRule) -> None:
    # torchao: code 0x00 = 2^-127 (gfloat computes the same scale)
    q = block_quantize(torch.zeros(2, 32), block_quantizer(name, scale_rule=rule))
    assert q.scales.tolist() == [[0], [0]]
    assert q.codes.eq(0).all() and q.dequantize().eq(0).all()


@pytest.mark.parametrize("name", [*MX, "nvfp4", "nf4"])
@pytest.mark.parametrize("special", [NAN, INF, -INF])
def test_nan_or_inf_makes_its_block_nan(name: str, special: float) -> None:
    f = get_block_format(name)
    x = torch.linspace(-3, 3, 2 * f.block_size).reshape(2, f.block_size)
    x[0, 5] = special
    q = block_quantize(x, name)
    got = q.dequantize()
    assert got[0].isnan().all() and not got[1].isnan().any()
    assert same(got[1], block_quantize(x[1:], name).dequantize()[0])
    zero_code = 7 if name == "nf4" else 0
    assert q.codes[0].eq(zero_code).all()
    if f.scale is ScaleKind.E8M0:
        assert q.scales[0].item() == 0xFF
    elif f.scale is ScaleKind.UE4M3:
        assert q.scales[0].item() == 0x7F
        # the per-tensor scale ignores the non-finite block
        assert q.tensor_scale is not None and q.tensor_scale.item() == float(
            torch.tensor(3.0) / 2688
        )
    else:
        assert math.isnan(q.scales[0].item())
    report = block_metrics(x, name)
    assert (report.blocks, report.nonfinite_blocks) == (2, 1)


def test_subnormal_amax_blocks() -> None:
    # float32 subnormals: true log2, then the clamp at 2^-127
    x = torch.tensor([2.0**-130, 3 * 2.0**-133, -(2.0**-135)], dtype=torch.float32)
    q = block_quantize(x, "mxfp8_e4m3")
    assert q.scales.tolist() == [0]
    assert q.dequantize().tolist() == x.tolist()  # x / 2^-127 lies on the e4m3 grid
    y = torch.tensor([1.5 * 2.0**-127, 2.0**-128], dtype=torch.float32)
    q = block_quantize(y, "mxint8")  # floor(log2 amax) = -127, emax 0: X = 2^-127
    assert q.scales.tolist() == [0] and q.dequantize().tolist() == y.tolist()
    tiny = torch.tensor([2.0**-1070, -(2.0**-1060)], dtype=torch.float64)  # far below 2^-127
    assert block_quantize(tiny, "mxfp4").dequantize().tolist() == [0.0, -0.0]


def test_scale_exponent_clamps_at_127() -> None:
    x = torch.tensor([1e300, 1.0], dtype=torch.float64)
    q = block_quantize(x, "mxfp4")
    assert q.scales.tolist() == [254]  # 2^127, as gfloat
    assert q.dequantize().tolist() == [6 * 2.0**127, 0.0]
    assert block_metrics(x, "mxfp4").clipped == 1


@pytest.mark.parametrize("name", [*MX_FLOAT, "nvfp4"])
def test_negative_values_mirror_positive_ones(name: str) -> None:
    x = torch.randn(5, 48, generator=torch.Generator().manual_seed(1)) * 3
    assert same(dq(-x, name), -dq(x, name))


def test_ragged_tail_is_zero_padded() -> None:
    x = torch.randn(40, generator=torch.Generator().manual_seed(2))
    q = block_quantize(x, "mxfp4")
    assert q.codes.shape == (64,) and q.scales.shape == (2,) and q.shape == (40,)
    assert q.codes[40:].eq(0).all()
    assert q.scales[1] == block_quantize(x[32:], "mxfp4").scales[0]
    assert same(q.dequantize(), torch.cat([dq(x[:32], "mxfp4"), dq(x[32:], "mxfp4")]))
    nf = block_quantize(x, "nf4")
    assert nf.codes.shape == (64,) and nf.codes[40:].eq(7).all()  # padding is code 7 (0.0)


@pytest.mark.parametrize("name", ["mxfp6_e3m2", "nvfp4", "nf4"])
@pytest.mark.parametrize("axis", [0, 1, -3])
def test_axis_other_than_last(name: str, axis: int) -> None:
    x = torch.randn(3, 70, 5, generator=torch.Generator().manual_seed(3))
    q = block_quantize(x, block_quantizer(name, axis=axis))
    f = get_block_format(name)
    padded = -(-x.shape[axis] // f.block_size) * f.block_size
    shape = list(x.shape)
    shape[axis] = padded
    assert list(q.codes.shape) == shape
    shape[axis] = padded // f.block_size
    assert list(q.scales.shape) == shape
    moved = block_quantize(x.movedim(axis, -1), name).dequantize().movedim(-1, axis)
    assert same(q.dequantize(), moved)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("name", ["mxfp8_e4m3", "mxfp4", "nvfp4", "nf4"])
def test_dtypes_round_trip_through_float32(dtype: torch.dtype, name: str) -> None:
    x = torch.randn(4, 64, generator=torch.Generator().manual_seed(4)).to(dtype)
    got = dq(x, name)
    assert got.dtype == dtype and got.shape == x.shape
    assert same(got, dq(x.float(), name).to(dtype))


def test_bad_input_is_refused() -> None:
    with pytest.raises(OptionError):
        block_quantize(torch.arange(4), "mxfp4")
    with pytest.raises(OptionError):
        block_quantize(torch.tensor(1.0), "mxfp4")
    with pytest.raises(OptionError):
        block_quantize(torch.ones(4, 4), block_quantizer("mxfp4", axis=2))
    with pytest.raises(OptionError):
        block_quantize(torch.ones(4), block_quantizer("nvfp4", scale_rule="ceil"))
    with pytest.raises(OptionError, match="rceil"):
        block_quantize(torch.ones(4), block_quantizer("mxfp4", scale_rule="round"))


def test_empty_tensor() -> None:
    for name in ("mxfp4", "nvfp4", "nf4"):
        q = block_quantize(torch.ones(3, 0), name)
        assert q.codes.shape == (3, 0) and q.dequantize().shape == (3, 0)


# ---- against gfloat -----------------------------------------------------------------------


def distributions(blocks: int, seed: int) -> dict[str, np.ndarray]:
    """float32-representable data, as float64, one row per 32-element block."""
    rng = np.random.default_rng(seed)
    shape = (blocks, 32)
    per_block = 2.0 ** rng.integers(-40, 40, (blocks, 1))
    data = {
        "normal": rng.standard_normal(shape),
        "uniform, block scales": rng.uniform(-1, 1, shape) * per_block,
        "lognormal": rng.choice([-1, 1], shape) * np.exp(rng.standard_normal(shape) * 5),
        "cauchy": rng.standard_cauchy(shape),
        "ties": rng.integers(-96, 97, shape) / 16 * per_block,  # few bits: many RNE ties
        "tiny": rng.standard_normal(shape) * 2.0**-128,  # fp32-subnormal amax, clamped X
    }
    return {k: v.astype(np.float32).astype(np.float64) for k, v in data.items()}


@pytest.mark.parametrize("name", MX)
def test_floor_equals_gfloat_on_random_data(name: str) -> None:
    fi = GFLOAT[name]
    for kind, data in distributions(24, seed=MX.index(name)).items():
        q = block_quantize(torch.from_numpy(data).float(), name)
        ours = q.dequantize().double()
        ref = torch.from_numpy(np.stack([quantize_block(fi, b, compute_scale_amax) for b in data]))
        assert same(ours, ref), (name, kind)
        # the same scale and element codes, too
        for row, block in enumerate(data[:4]):
            scale = compute_scale_amax(fi.etype.emax, block)
            codes = list(encode_block(fi, scale, block / scale))
            assert q.scales[row].item() == codes[0], (name, kind)
            assert q.codes[row].tolist() == codes[1:], (name, kind)


@pytest.mark.parametrize("name", MX)
def test_gfloat_differences(name: str) -> None:
    fi = GFLOAT[name]
    block = np.linspace(-1, 1, 32)
    # all-zero block: no difference (both 2^-127)
    assert quantize_block(fi, np.zeros(32), compute_scale_amax).tolist() == [0.0] * 32
    assert dq(torch.zeros(32), name).tolist() == [0.0] * 32
    # NaN: gfloat gives a NaN block for fp8 and raises where the element has no NaN
    block[3] = NAN
    assert dq(torch.from_numpy(block), name).isnan().all()
    if name.startswith("mxfp8"):
        assert np.isnan(quantize_block(fi, block, compute_scale_amax)).all()
    else:
        with pytest.raises(ValueError, match="No NaN"):
            quantize_block(fi, block, compute_scale_amax)
    # inf: gfloat takes X = 2^127 and saturates inf to elem_max * 2^127; dtlab: a NaN block
    block[3] = INF
    ref = quantize_block(fi, block, compute_scale_amax)
    assert ref[3] == float(get_block_format(name).element_max) * 2.0**127
    assert (ref[np.arange(32) != 3] == 0).all()
    assert dq(torch.from_numpy(block), name).isnan().all()


def test_gfloat_float_log2_differs_just_below_a_power_of_two() -> None:
    # float64 input only: gfloat's floor(np.log2(amax)) gives 3 for 8 - 2^-50 (true: 2)
    x = np.array([np.nextafter(8.0, 0.0)])
    fi = format_info_mxfp8_e4m3
    assert quantize_block(fi, x, compute_scale_amax).tolist() == [8.0]  # X = 2^-5: 256 * X
    assert dq(torch.from_numpy(x), "mxfp8_e4m3").tolist() == [7.0]  # X = 2^-6: 448 * X


# ---- NF4 ----------------------------------------------------------------------------------

# FORMATS.md §5 (bitsandbytes get_4bit_type, checked exact float32), codes 0..15
NF4_FORMATS_MD = [
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]  # fmt: skip
TABLE32 = torch.tensor(NF4_FORMATS_MD, dtype=torch.float32)


def test_nf4_table_is_the_exact_float32_table() -> None:
    assert list(NF4_TABLE) == NF4_FORMATS_MD
    assert all(float(np.float32(v)) == v for v in NF4_FORMATS_MD)


@pytest.mark.parametrize("absmax", [1.0, 8.0, 2.0**-20])
def test_nf4_table_values_round_trip(absmax: float) -> None:
    x = (TABLE32 * absmax).repeat(4)  # one 64-element block holding every value 4 times
    q = block_quantize(x, "nf4")
    assert q.codes.tolist() == list(range(16)) * 4
    assert q.scales.tolist() == [absmax] and same(q.dequantize(), x)


def nf4_brute_force(r: torch.Tensor) -> torch.Tensor:
    """Nearest table value to r in float64; argmin takes the lower code on an exact tie."""
    return (r.double().unsqueeze(-1) - TABLE32.double()).abs().argmin(dim=-1)


# Float32 midpoints (a + b) / 2 that lie an ulp above the exact midpoint: bucketize gives the
# lower code there, the exact nearest value is the upper one (computed in the test below).
ABOVE_EXACT = [0, 1, 3, 4, 12, 14]


def test_nf4_float32_midpoints() -> None:
    mids32 = (TABLE32[1:] + TABLE32[:-1]) / 2
    exact = (TABLE32[1:].double() + TABLE32[:-1].double()) / 2
    assert [i for i in range(15) if mids32[i].double() > exact[i]] == ABOVE_EXACT
    x = torch.cat([torch.tensor([1.0]), mids32, torch.nextafter(mids32, torch.tensor(2.0))])
    codes = block_quantize(x, "nf4").codes[:31]
    lower = torch.arange(15)
    assert codes[0] == 15 and codes[1:16].tolist() == lower.tolist()  # on it: the lower code
    assert codes[16:].tolist() == (lower + 1).tolist()  # one ulp above: the upper code
    brute = nf4_brute_force(mids32)
    assert brute.tolist() == [i + (i in ABOVE_EXACT) for i in range(15)]


def test_nf4_nearest_value_against_brute_force() -> None:
    g = torch.Generator().manual_seed(5)
    x = torch.cat([torch.randn(64, 64, generator=g), torch.rand(64, 64, generator=g) - 0.5])
    q = block_quantize(x, "nf4")
    absmax = x.abs().amax(dim=-1, keepdim=True)
    r = torch.clamp(x * (1 / absmax), -1, 1)  # bitsandbytes' float32 scaling
    mids32 = (TABLE32[1:] + TABLE32[:-1]) / 2
    on_a_high_midpoint = torch.isin(r, mids32[ABOVE_EXACT])
    want = nf4_brute_force(r) - on_a_high_midpoint.long()
    assert torch.equal(q.codes.long(), want)
    assert torch.equal(q.scales, absmax)
    assert torch.equal(q.dequantize(), TABLE32[want] * absmax)


def test_nf4_zero_block() -> None:
    q = block_quantize(torch.zeros(64), "nf4")
    assert q.codes.eq(7).all() and q.scales.tolist() == [0.0] and q.dequantize().eq(0).all()


# ---- NVFP4 against torchao ----------------------------------------------------------------


def torchao_nvfp4(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """FORMATS.md §4, torchao prototype/mx_formats/nvfp4_tensor.py, float32 throughout:
    per_tensor_amax_to_scale, _nvfp4_quantize (two-level), to_dtype."""
    x = x.float()
    per_tensor = x.abs().amax() / (448.0 * 6.0)
    blocks = x.reshape(x.shape[0], -1, 16)
    block_scale = blocks.abs().amax(dim=-1) / 6.0
    s_fp8 = torch.clamp(block_scale / per_tensor, min=2.0**-6, max=448.0).to(torch.float8_e4m3fn)
    s = s_fp8.float()
    scaled = torch.clamp(blocks * ((1.0 / per_tensor) / s).unsqueeze(-1), -6.0, 6.0)
    q = torch.from_numpy(scaled.numpy().astype(ml_dtypes.float4_e2m1fn).astype(np.float32))
    value = (q * (per_tensor * s).unsqueeze(-1)).reshape(x.shape)
    return value, s_fp8.view(torch.uint8), per_tensor


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("kind", ["normal", "row scales", "heavy tails"])
def test_nvfp4_equals_torchao(dtype: torch.dtype, kind: str) -> None:
    g = torch.Generator().manual_seed(6)
    x = torch.randn(64, 128, generator=g)
    if kind == "row scales":
        x = x * 2.0 ** torch.randint(-12, 12, (64, 1), generator=g)
    elif kind == "heavy tails":
        x = torch.sign(x) * torch.exp(torch.randn(64, 128, generator=g) * 3)
    x = x.to(dtype)
    value, scales, per_tensor = torchao_nvfp4(x)
    q = block_quantize(x, "nvfp4")
    assert q.tensor_scale is not None and torch.equal(q.tensor_scale, per_tensor)
    assert torch.equal(q.scales, scales)
    assert torch.equal(q.dequantize(), value.to(dtype))


def test_nvfp4_block_scale_floor_and_zero_tensor() -> None:
    x = torch.zeros(2, 16)
    x[0, 0], x[1, 0] = 6.0 * 448, 1e-3  # block 2 wants 1e-3/6 < 2^-6: clamped (torchao)
    q = block_quantize(x, "nvfp4")
    assert q.scales.tolist() == [[0x7E], [0x08]]  # 448 and 2^-6
    assert q.dequantize()[1, 0].item() == 0.0  # 1e-3 / 2^-6 = 0.064 rounds to 0
    z = block_quantize(torch.zeros(16), "nvfp4")  # pt floored at 2^-126 (torchao: 0/0)
    assert z.tensor_scale is not None and z.tensor_scale.item() == 2.0**-126
    assert z.scales.tolist() == [0x08] and z.dequantize().eq(0).all()


# ---- metrics and properties ---------------------------------------------------------------


def test_sqnr_orders_the_mx_formats() -> None:
    x = torch.randn(256, 256, generator=torch.Generator().manual_seed(7))
    db = {n: block_metrics(x, n).metrics.sqnr_db for n in MX}
    assert db["mxint8"] > db["mxfp8_e4m3"] > db["mxfp6_e3m2"] > db["mxfp4"] > 15
    # on N(0, 1) a 32-block needs little range: SQNR follows the mantissa width, so E2M3 (3 bits,
    # like E4M3, and clipping only above 1.875 * 2^emax, not 1.75) is as good as E4M3 here
    assert abs(db["mxfp6_e2m3"] - db["mxfp8_e4m3"]) < 1
    # 2 mantissa bits each; E3M2's subnormals start higher, so a few tiny elements differ
    assert 0 < db["mxfp8_e5m2"] - db["mxfp6_e3m2"] < 0.01


def test_report_counts_clipped_elements_as_overflow() -> None:
    x = torch.tensor([[3.5, 1.0, 7.0, -3.9], [0.1, 0.2, 0.3, 0.4]])
    r = block_metrics(
        x, block_quantizer("mxfp4", axis=0)
    )  # blocks along columns: (3.5, 0.1), (7, 0.2), ...
    assert (r.format, r.scale_rule, r.blocks, r.nonfinite_blocks) == (
        "mxfp4",
        ScaleRule.FLOOR,
        4,
        0,
    )
    assert r.clipped == r.metrics.overflow == 3  # 3.5 -> 3, 7 -> 6, -3.9 -> -3
    assert block_metrics(x, block_quantizer("mxfp4", axis=0, scale_rule="rceil")).clipped == 0
    assert r.metrics.n == 8 and math.isclose(r.metrics.max_abs_error, 1.0)


FLOATS = st.lists(
    st.floats(-(2.0**100), 2.0**100, allow_nan=False, allow_infinity=False, width=32),
    min_size=1,
    max_size=70,
)


@settings(max_examples=40, deadline=None)
@given(FLOATS, st.sampled_from(MX_FLOAT), st.sampled_from(list(ScaleRule)))
def test_quantizing_twice_changes_nothing(values: list[float], name: str, rule: ScaleRule) -> None:
    once = dq(values, name, rule.value)
    assert same(dq(once, name, rule.value), once)


def test_mxint8_is_not_idempotent_where_minus_two_raises_the_amax() -> None:
    once = dq([-1.999, 1 / 64], "mxint8")  # X = 1: -1.999 -> -2 (two's complement minimum)
    assert once.tolist() == [-2.0, 1 / 64]
    assert dq(once, "mxint8").tolist() == [-2.0, 0.0]  # amax 2: X = 2, 1/128 rounds to 0


@settings(max_examples=40, deadline=None)
@given(FLOATS, st.sampled_from(MX))
def test_ceil_and_rceil_never_clip(values: list[float], name: str) -> None:
    x = torch.tensor(values, dtype=torch.float32)
    for rule in ("ceil", "rceil"):
        assert block_metrics(x, block_quantizer(name, scale_rule=rule)).clipped == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", [*MX, "nvfp4", "nf4"])
def test_cuda_matches_cpu(name: str) -> None:
    x = torch.randn(33, 100, generator=torch.Generator().manual_seed(8)) * 10
    x[3, 7] = NAN
    cpu = block_quantize(x, name)
    gpu = block_quantize(x.cuda(), name)
    assert torch.equal(gpu.codes.cpu(), cpu.codes)
    assert same(gpu.scales.cpu(), cpu.scales) and same(gpu.dequantize().cpu(), cpu.dequantize())
