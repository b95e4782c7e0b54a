"""The C kernel and the Python side agree on every number and record they pass each other:
the rounding-mode codes, the order of the parameter fields, and the fields of the metrics."""

import dataclasses
import types

import pytest
import torch

from dtlab.kernels import native
from dtlab.kernels.native import DotAccumulation, MetricLimits, MetricSums, expected_layout
from dtlab.kernels.params import FLOAT_FIELDS, INT_FIELDS, KernelParams, RoundingCode, prepare
from dtlab.modes import Rounding

needs_c = pytest.mark.skipif(native.native_layout() is None, reason="the C kernel is not built")


@needs_c
def test_the_c_kernel_declares_the_layout_python_builds() -> None:
    built, expected = native.native_layout(), expected_layout()
    assert built is not None
    for field in dataclasses.fields(built):
        assert getattr(built, field.name) == getattr(expected, field.name), field.name
    assert native.has_c_kernel()


def test_every_kernel_parameter_has_one_place_in_the_c_record() -> None:
    names = [f.name for f in dataclasses.fields(KernelParams)]
    assert sorted(INT_FIELDS + FLOAT_FIELDS + ("fits_float32",)) == sorted(names)
    ints, floats = prepare("fp8", "nearest-even", None, "keep").params.c_args()
    assert len(ints) == len(INT_FIELDS) and len(floats) == len(FLOAT_FIELDS)
    assert all(type(v) is int for v in ints) and all(type(v) is float for v in floats)


def test_the_parameter_tuples_are_built_by_name() -> None:
    p = prepare("fp4", "up", "saturate", "flush").params
    ints, floats = p.c_args()
    assert dict(zip(INT_FIELDS, ints, strict=True)) == {n: int(getattr(p, n)) for n in INT_FIELDS}
    assert dict(zip(FLOAT_FIELDS, floats, strict=True)) == {n: getattr(p, n) for n in FLOAT_FIELDS}
    assert ints[INT_FIELDS.index("rounding")] == RoundingCode.UP


def test_every_rounding_mode_has_a_code() -> None:
    assert [m.name for m in Rounding] == [c.name for c in RoundingCode]
    assert [int(c) for c in RoundingCode] == list(range(len(Rounding)))
    assert [int(c) for c in DotAccumulation] == list(range(len(DotAccumulation)))


@pytest.mark.parametrize(
    "attr", ["ROUNDING_MODES", "PARAM_INT_FIELDS", "PARAM_FLOAT_FIELDS", "METRIC_FIELDS"]
)
def test_a_module_with_another_layout_is_not_used(attr: str) -> None:
    built = native.native_layout()
    layout = built if built is not None else expected_layout()
    fake = types.SimpleNamespace(
        ROUNDING_MODES=layout.rounding_modes,
        LOW_REGIONS=layout.low_regions,
        DOT_ACCUMULATIONS=layout.dot_accumulations,
        PARAM_INT_FIELDS=layout.param_int_fields,
        PARAM_FLOAT_FIELDS=layout.param_float_fields,
        METRIC_FIELDS=layout.metric_fields,
        LIMIT_FIELDS=layout.limit_fields,
    )
    assert native.usable(fake) is fake  # type: ignore[arg-type]
    names = getattr(fake, attr)
    setattr(fake, attr, (names[1], names[0], *names[2:]))  # two fields swapped
    assert native.usable(fake) is None  # type: ignore[arg-type]


@needs_c
def test_the_metrics_come_back_by_name() -> None:
    x = torch.tensor([1.0, 2.0, 0.1, 1000.0, float("nan"), -float("inf"), 0.0, 1e-9])
    prep = prepare("fp8", "nearest-even", None, "keep")
    limits = MetricLimits(
        pos=464.0, pos_inclusive=True, neg=464.0, neg_inclusive=True, tiny=2.0**-6
    )
    m = native.fused_metrics(x, prep, 0, limits)
    assert isinstance(m, MetricSums)
    assert (m.nan, m.inf, m.pairs, m.rel_count, m.nonfinite) == (1, 1, 5, 4, 1)
    assert (m.underflow, m.subnormal, m.overflow) == (1, 0, 1)
    assert m.xmax == 1000.0 and m.abs_max == pytest.approx(0.1015625 - 0.1, rel=1e-6)
    values = list(m)
    assert all(type(v) is float for v in values[:9]) and all(type(v) is int for v in values[9:])


@needs_c
def test_the_c_parser_refuses_tuples_of_another_length() -> None:
    from dtlab.kernels import _quantize

    ints, floats = prepare("fp8", "nearest-even", None, "keep").params.c_args()
    x = torch.zeros(4)
    with pytest.raises(TypeError, match="parameter tuples"):
        _quantize.quantize(32, x.data_ptr(), x.data_ptr(), 4, ints[:-1], floats, 0)
    with pytest.raises(ValueError, match="accumulation"):
        _quantize.dot_seq(x.data_ptr(), x.data_ptr(), 0, ints, floats, 0, len(DotAccumulation))
