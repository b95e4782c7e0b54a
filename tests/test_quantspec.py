"""One quantizer grammar for dtlab quantize --as and dtlab model memory --to: one descriptor."""

import pytest
import torch

from dtlab.analysis.comparison import quantize_analysis
from dtlab.errors import DtlabError, OptionError
from dtlab.formats.blocks import ScaleRule
from dtlab.formats.quantizer import Granularity, ScaleMethod
from dtlab.formats.quantizer_spec import parse_quantizer


@pytest.mark.parametrize(
    ("spec", "layout", "group", "symmetric", "method"),
    [
        ("int8", Granularity.TENSOR, None, True, ScaleMethod.ABSMAX),
        ("INT8:Channel", Granularity.CHANNEL, None, True, ScaleMethod.ABSMAX),
        ("int4:g128:mse", Granularity.GROUP, 128, True, ScaleMethod.MSE),
        ("int4:group64:asym", Granularity.GROUP, 64, False, ScaleMethod.ABSMAX),
        ("uint8", Granularity.TENSOR, None, False, ScaleMethod.ABSMAX),
        ("int8:p99.5", Granularity.TENSOR, None, True, ScaleMethod.PERCENTILE),
        ("int8:g32:tensor", Granularity.TENSOR, None, True, ScaleMethod.ABSMAX),  # the last wins
        ("fp8", Granularity.NONE, None, True, ScaleMethod.ABSMAX),
        ("fp8:channel", Granularity.CHANNEL, None, True, ScaleMethod.ABSMAX),
    ],
)
def test_scaled_specs(
    spec: str, layout: Granularity, group: int | None, symmetric: bool, method: ScaleMethod
) -> None:
    p = parse_quantizer(spec)
    assert p.block is None
    assert (p.granularity, p.group_size, p.symmetric, p.clipping) == (
        layout,
        group,
        symmetric,
        method,
    )
    t = parse_quantizer(spec)  # memory reads the same spec the same way
    assert (t.granularity, t.group_size or None) == (layout, group)
    assert (t.zero_point_bits > 0) == (not symmetric and layout is not Granularity.NONE)


def test_block_specs_and_aliases() -> None:
    p = parse_quantizer("mxfp8")
    assert p.block is not None and p.block.name == "mxfp8_e4m3"
    assert p.scale_rule is ScaleRule.FLOOR
    rceil = parse_quantizer("mxfp4:rceil")
    assert rceil.block is not None and rceil.scale_rule is ScaleRule.RCEIL
    assert parse_quantizer("mxfp6").format.name == "mxfp6_e2m3"
    assert parse_quantizer("mxfp4:rceil").nbytes((2, 64)) == parse_quantizer("mxfp4").nbytes(
        (2, 64)
    )


def test_quantize_and_memory_agree_on_plain_int8() -> None:
    x = torch.randn(8, 64, generator=torch.Generator().manual_seed(0))
    row = quantize_analysis(x, ["int8"]).rows[0]
    assert row.detail.startswith("per tensor")
    # one fp32 scale for the whole tensor, in both
    assert row.effective_bits * x.numel() == 8 * x.numel() + 32
    assert parse_quantizer("int8").nbytes((8, 64)) * 8 == 8 * x.numel() + 32


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("int8:wat", "unknown option 'wat'"),
        ("fp8:asym", "integer formats"),
        ("fp8:mse", "integer formats"),
        ("uint4:sym", "zero point"),
        ("int8:g0", "group size"),
        ("int8:p0", "percentile"),
        ("nf4:floor", "takes no options"),
        ("mxfp4:sideways", "scale rule"),
        ("", "empty"),
        ("int99x", "unknown format"),
    ],
)
def test_bad_specs_name_the_problem(spec: str, message: str) -> None:
    with pytest.raises(DtlabError, match=message):
        parse_quantizer(spec)


def test_quantize_refuses_plain_casts() -> None:
    with pytest.raises(OptionError, match="dtlab cast"):
        quantize_analysis(torch.randn(4, 4), ["fp8"])
