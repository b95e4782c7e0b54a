"""The catalogue: names, aliases, the spec grammar, and derived values against spec tables."""

import math
from fractions import Fraction as Fr

import pytest

from dtlab.errors import FormatSpecError, UnknownFormatError
from dtlab.formats import CATALOG, FloatFormat, IntFormat, NanEncoding, formats, get_format

P = Fr(2)

# ../shared/FORMATS.md §1 (checked against ml_dtypes.finfo and decoding every code).
# name: (bits, bias, max, smallest normal, smallest subnormal, eps, max code, NaN code)
SPEC_TABLE = {
    "float16": (16, 15, Fr(65504), P**-14, P**-24, P**-10, 0x7BFF, 0x7E00),
    "bfloat16": (16, 127, (2 - P**-7) * P**127, P**-126, P**-133, P**-7, 0x7F7F, 0x7FC0),
    "float32": (32, 127, (2 - P**-23) * P**127, P**-126, P**-149, P**-23, 0x7F7FFFFF, 0x7FC00000),
    "tfloat32": (19, 127, (2 - P**-10) * P**127, P**-126, P**-136, P**-10, 0x3FBFF, 0x3FE00),
    "float8_e4m3fn": (8, 7, Fr(448), P**-6, P**-9, P**-3, 0x7E, 0x7F),
    "float8_e4m3fnuz": (8, 8, Fr(240), P**-7, P**-10, P**-3, 0x7F, 0x80),
    "float8_e4m3b11fnuz": (8, 11, Fr(30), P**-10, P**-13, P**-3, 0x7F, 0x80),
    "float8_e4m3": (8, 7, Fr(240), P**-6, P**-9, P**-3, 0x77, 0x7C),
    "float8_e5m2": (8, 15, Fr(57344), P**-14, P**-16, P**-2, 0x7B, 0x7E),
    "float8_e5m2fnuz": (8, 16, Fr(57344), P**-15, P**-17, P**-2, 0x7F, 0x80),
    "float8_e3m4": (8, 3, Fr(31, 2), P**-2, P**-6, P**-4, 0x6F, 0x78),
    "float8_e8m0fnu": (8, 127, P**127, P**-127, P**-127, Fr(1), 0xFE, 0xFF),
    "float6_e2m3fn": (6, 1, Fr(15, 2), Fr(1), P**-3, P**-3, 0x1F, None),
    "float6_e3m2fn": (6, 3, Fr(28), P**-2, P**-4, P**-2, 0x1F, None),
    "float4_e2m1fn": (4, 1, Fr(6), Fr(1), Fr(1, 2), Fr(1, 2), 0x7, None),
}


@pytest.mark.parametrize("name", SPEC_TABLE)
def test_derived_values_match_the_spec_table(name: str) -> None:
    f = get_format(name)
    assert isinstance(f, FloatFormat)
    bits, bias, mx, tiny, sub, eps, max_code, nan_code = SPEC_TABLE[name]
    got = (f.bits, f.bias, f.max, f.smallest_normal, f.smallest_subnormal, f.eps)
    assert got == (bits, bias, mx, tiny, sub, eps)
    assert (f.max_code, f.nan_code) == (max_code, nan_code)


def test_every_float_name_in_the_issue_is_catalogued() -> None:
    wanted = """float64 float32 tfloat32 float16 bfloat16 float8_e4m3fn float8_e4m3fnuz
    float8_e4m3b11fnuz float8_e5m2 float8_e5m2fnuz float8_e3m4 float8_e8m0fnu float6_e2m3fn
    float6_e3m2fn float4_e2m1fn""".split()
    assert set(wanted) <= {f.name for f in formats("float")}
    assert len(formats("int")) == 128
    assert get_format("int64").max == 2**63 - 1 and get_format("uint64").max == 2**64 - 1
    assert (get_format("int1").min, get_format("int1").max) == (-1, 0)


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("fp8", "float8_e4m3fn"), ("e4m3", "float8_e4m3fn"), ("E5M2", "float8_e5m2"),
        ("fp16", "float16"), ("half", "float16"), ("bf16", "bfloat16"), ("fp32", "float32"),
        ("float", "float32"), ("fp64", "float64"), ("double", "float64"), ("fp4", "float4_e2m1fn"),
        ("fp6_e3m2", "float6_e3m2fn"), ("fp6", "float6_e2m3fn"), ("tf32", "tfloat32"),
        ("e8m0", "float8_e8m0fnu"), ("F8_E4M3", "float8_e4m3fn"), ("BF16", "bfloat16"),
        ("I8", "int8"), ("U8", "uint8"), ("F4", "float4_e2m1fn"), ("F6_E2M3", "float6_e2m3fn"),
        ("torch.float16", "float16"), ("np.float32", "float32"), ("long", "int64"),
        ("float4_e2m1fn_x2", "float4_e2m1fn"), ("  BFloat16 ", "bfloat16"),
    ],
)  # fmt: skip
def test_aliases_resolve_to_one_instance(alias: str, name: str) -> None:
    assert get_format(alias) is CATALOG[name]


def test_dtypes_of_torch_numpy_and_ml_dtypes_resolve() -> None:
    import ml_dtypes
    import numpy as np
    import torch

    assert get_format(torch.bfloat16) is CATALOG["bfloat16"]
    assert get_format(torch.float8_e5m2fnuz) is CATALOG["float8_e5m2fnuz"]
    assert get_format(torch.int8) is CATALOG["int8"]
    assert get_format(np.dtype("float16")) is CATALOG["float16"]
    assert get_format(np.float64) is CATALOG["float64"]
    assert get_format(ml_dtypes.float8_e3m4) is CATALOG["float8_e3m4"]
    assert get_format(np.dtype(ml_dtypes.int4)) is CATALOG["int4"]
    assert get_format(CATALOG["float16"]) is CATALOG["float16"]


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("e3m4", "float8_e3m4"),
        ("e4m3fnuz", "float8_e4m3fnuz"),
        ("e4m3b11fnuz", "float8_e4m3b11fnuz"),
        ("float8_e5m2", "float8_e5m2"),
        ("e8m0fnu", "float8_e8m0fnu"),
        ("e2m1fn", "float4_e2m1fn"),
        ("int7", "int7"),
        ("uint3", "uint3"),
        ("u4", "uint4"),
        ("e4m3:nan=ieee", "float8_e4m3"),
        ("e4m3:bias=11:nan=neg-zero", "float8_e4m3b11fnuz"),
        ("fp16:inf=yes", "float16"),
    ],
)
def test_specs_equal_to_a_catalogue_format_give_that_instance(spec: str, name: str) -> None:
    assert get_format(spec) is CATALOG[name]


def test_user_formats_from_specs() -> None:
    f = get_format("e3m3")
    assert isinstance(f, FloatFormat) and f.name == "float7_e3m3"
    assert (f.bias, f.has_inf, f.nan, f.max) == (3, True, NanEncoding.IEEE, Fr(15))
    g = get_format("e5m2:inf=no:nan=all-ones")
    assert g.name == "float8_e5m2fn" and g.max == Fr(98304)  # 1.5 * 2**16, code 0x7E
    h = get_format("fp8:subnormals=no")
    assert isinstance(h, FloatFormat) and h.has_zero and h.smallest_positive == Fr(9, 8) * P**-7
    assert get_format(h.name) == h
    i = get_format("e2m1:nan=all-ones")
    assert i.name == "float4_e2m1fn:nan=all-ones" and i.max == 4
    assert get_format("int7") == IntFormat(7)
    assert get_format("e4m3b-2") .bias == -2  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("float6_e4m3", "takes 8 bits, not 6"),
        ("int65", "1..64"),
        ("int0", "1..64"),
        ("e3m4:inf=no", "say where NaN goes"),
        ("e4m3fn:inf=yes:nan=none", "infinities"),
        ("e4m3:wat=1", "not one of"),
        ("e4m3:bias=x", "integer"),
        ("e4m3:bias=1:bias=2", "twice"),
        ("e4m3fnuz:signed=no", "no -0 code"),
        ("int8:bias=3", "integer formats"),
        ("e0m3", "exponent bits"),
        ("e4m3:subnormals=maybe", "yes or no"),
        ("e3m0", "try e3m0fn .* or e3m0fnu"),  # no mantissa: no room for IEEE NaNs
        ("e1m2", "try e1m2fn"),  # one exponent bit: no room for IEEE infinities
    ],
)
def test_inconsistent_specs_are_refused(spec: str, message: str) -> None:
    with pytest.raises(FormatSpecError, match=message):
        get_format(spec)
    if "try" in message:  # and the suggestion works
        get_format(spec + "fn")


def test_unknown_names_suggest_close_ones() -> None:
    with pytest.raises(UnknownFormatError, match=r"did you mean.*bf16"):
        get_format("bf61")
    with pytest.raises(UnknownFormatError, match="float8_e4m3fn"):
        get_format("float8_e4m3fm")
    with pytest.raises(UnknownFormatError, match="cannot read a format"):
        get_format(object())
    with pytest.raises(UnknownFormatError, match="empty"):
        get_format(" ")


def test_counts_and_specials() -> None:
    fp8 = get_format("fp8")
    assert isinstance(fp8, FloatFormat)
    assert (fp8.finite_codes, fp8.finite_values, fp8.nan_codes, fp8.inf_codes) == (254, 253, 2, 0)
    e5m2 = get_format("e5m2")
    assert (e5m2.nan_codes, e5m2.inf_codes, e5m2.finite_codes) == (6, 2, 248)
    e8m0 = get_format("e8m0")
    assert isinstance(e8m0, FloatFormat)
    assert not e8m0.has_zero and not e8m0.has_negative_zero and e8m0.min == P**-127
    fnuz = get_format("e4m3fnuz")
    assert isinstance(fnuz, FloatFormat) and not fnuz.has_negative_zero
    assert get_format("fp16").dynamic_range_binades == 24 + math.log2(65504)
