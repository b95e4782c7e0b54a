"""One parser for modes across the API: strings the CLI takes work everywhere, and nonsense is
refused (issue 14: explain(..., overflow="saturate") gave NaN, rounding="bogus" was taken)."""

from __future__ import annotations

import pytest

from dtlab.errors import OptionError
from dtlab.formats import get_format
from dtlab.modes import Overflow, Rounding
from dtlab.scalar import explain
from dtlab.scalar.codec import encode
from dtlab.values import parse_value

FP8 = get_format("fp8")


@pytest.mark.parametrize(
    ("text", "member"),
    [("saturate", Overflow.SATURATE), ("sat", Overflow.SATURATE), ("inf-nan", Overflow.INF_NAN)],
)
def test_overflow_strings_mean_their_member(text: str, member: Overflow) -> None:
    a, b = explain("1000", FP8, overflow=text), explain("1000", FP8, overflow=member)
    assert a.stored.code == b.stored.code and a.overflow is member
    assert str(explain("1000", FP8, overflow="saturate").stored.value) == "448"


@pytest.mark.parametrize("mode", list(Rounding)[:-1])  # stochastic needs the tensor kernels
def test_rounding_strings_mean_their_member(mode: Rounding) -> None:
    for value in ("0.1", "-0.1", "1/3", "-1000"):
        by_text = explain(value, FP8, rounding=mode.value, overflow="saturate")
        by_member = explain(value, FP8, rounding=mode, overflow=Overflow.SATURATE)
        assert by_text.stored.code == by_member.stored.code and by_text.rounding is mode
        x = parse_value(value)
        assert encode(x, FP8, rounding=mode.value).code == encode(x, FP8, rounding=mode).code
    assert explain("-0.1", FP8, rounding="up").stored.code != explain("-0.1", FP8).stored.code


@pytest.mark.parametrize(("kw", "word"), [({"rounding": "bogus"}, "rounding"),
                                          ({"overflow": "explode"}, "overflow")])  # fmt: skip
def test_nonsense_modes_are_refused(kw: dict[str, str], word: str) -> None:
    with pytest.raises(OptionError, match=word):
        explain("1", FP8, **kw)  # type: ignore[arg-type]
    with pytest.raises(OptionError, match=word):
        encode(parse_value("1"), FP8, **kw)  # type: ignore[arg-type]
