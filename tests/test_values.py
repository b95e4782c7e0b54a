"""Reading numbers and bit patterns exactly, and writing exact decimals."""

from fractions import Fraction

import pytest

from dtlab.errors import ParseError
from dtlab.values import Kind, approx_decimal, exact_decimal, parse_bits, parse_value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.1", Fraction(1, 10)),
        ("-1e-3", Fraction(-1, 1000)),
        ("1/3", Fraction(1, 3)),
        ("-2/6", Fraction(-1, 3)),
        ("0x1.8p2", Fraction(6)),
        ("0x1p-149", Fraction(1, 2**149)),
        ("-0x.8", Fraction(-1, 2)),
        ("2^-24", Fraction(1, 2**24)),
        ("2**10", Fraction(1024)),
        ("1_000", Fraction(1000)),
        (".5", Fraction(1, 2)),
        ("5.", Fraction(5)),
        ("+7", Fraction(7)),
        ("1e400", Fraction(10**400)),
        (" 3 ", Fraction(3)),
    ],
)
def test_numbers_are_read_exactly(text: str, expected: Fraction) -> None:
    assert parse_value(text).fraction == expected


def test_specials_and_negative_zero() -> None:
    assert parse_value("inf").kind is Kind.INF and not parse_value("inf").negative
    assert parse_value("-Infinity").kind is Kind.INF and parse_value("-inf").negative
    assert parse_value("nan").kind is Kind.NAN
    z = parse_value("-0")
    assert z.is_zero and z.negative and str(z) == "-0"
    assert not parse_value("0").negative


@pytest.mark.parametrize(
    "text", ["", "abc", "1/0", "0x", "1e", "1.2.3", "--1", "1e99999999", "0xp3"]
)
def test_malformed_numbers_are_refused(text: str) -> None:
    with pytest.raises(ParseError):
        parse_value(text)


def test_huge_exponent_is_refused_quickly() -> None:
    with pytest.raises(ParseError, match="exponent"):
        parse_value("1e-999999999")


def test_exact_decimal_expands_every_digit() -> None:
    assert exact_decimal(Fraction(1, 3)) is None
    assert exact_decimal(Fraction(1, 1024)) == "0.0009765625"
    assert exact_decimal(Fraction(-5, 2)) == "-2.5"
    tiny = exact_decimal(Fraction(1, 2**1074))
    assert tiny is not None and len(tiny.partition(".")[2]) == 1074
    assert Fraction(tiny) == Fraction(1, 2**1074)


def test_approx_decimal_is_correctly_rounded() -> None:
    assert approx_decimal(Fraction(1, 3), 5) == "3.3333e-1"
    assert approx_decimal(Fraction(2, 3), 5) == "6.6667e-1"
    assert approx_decimal(Fraction(99999, 1), 3) == "1.00e+5"
    assert approx_decimal(Fraction(-1, 8), 2) == "-1.2e-1"  # 0.125: a tie, to even


@pytest.mark.parametrize(
    ("text", "width", "code"),
    [("0b0_1111_110", 8, 0x7E), ("0x7e", 8, 0x7E), ("0XFF", 8, 255), ("0x7", 4, 7), ("0b1", 1, 1)],
)
def test_bits(text: str, width: int, code: int) -> None:
    assert parse_bits(text, width) == code


@pytest.mark.parametrize(
    ("text", "width", "message"),
    [
        ("0x1ff", 8, "too wide"),
        ("0b1_0000_0000", 8, "9 bits"),
        ("0b102", 8, "not binary"),
        ("126", 8, "write 0b"),
        ("0x", 8, "write 0b"),
        ("0xg1", 8, "write 0b"),
    ],
)
def test_bad_bits(text: str, width: int, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_bits(text, width)
