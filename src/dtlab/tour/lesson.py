"""Tour chapters that follow the seed lesson: integers, two's complement, float fields,
1/3 in each float, and sizes. Every number is computed; none is typed in."""

from __future__ import annotations

from fractions import Fraction

from dtlab.formats import get_format
from dtlab.formats.descriptor import FloatFormat, IntFormat
from dtlab.formats.report import describe
from dtlab.numtext import short
from dtlab.scalar import IntOp, explain, int_op
from dtlab.tour.model import Chapter, ChapterFn, Paragraph, TableBlock
from dtlab.values import exact_decimal


def integers() -> Chapter:
    rows = []
    for name in ("uint8", "int8", "int16", "int32", "int64", "int4", "uint4"):
        f = get_format(name)
        assert isinstance(f, IntFormat)
        kind = "signed" if f.signed else "unsigned"
        rows.append((f.name, str(f.bits), kind, f"{f.min:,}", f"{f.max:,}", f"{f.finite_values:,}"))
    return Chapter(
        "integers",
        "Integers: n bits, 2^n values",
        (
            Paragraph(
                "An n-bit unsigned integer holds 0 .. 2^n − 1. A signed one uses two's "
                "complement: the top bit weighs −2^(n−1), so the range is −2^(n−1) .. 2^(n−1) − 1. "
                "This is what torch.iinfo reports, and dtlab gives it for any width 1..64 "
                "(int4 and uint4 are beyond torch.iinfo)."
            ),
            TableBlock(
                "integer ranges", ("dtype", "bits", "kind", "min", "max", "values"), tuple(rows)
            ),
            Paragraph("Try: dtlab info int8 uint8 int4    dtlab show -- -5 --as int8"),
        ),
    )


def twos_complement() -> Chapter:
    int8 = get_format("int8")
    rows = []
    for op, a, b in ((IntOp.ADD, 2, -2), (IntOp.ADD, 127, 1), (IntOp.SUB, -128, 1)):
        r = int_op(op, a, b, int8)
        rows.append(
            (
                f"{a} {op.symbol} {b}",
                r.a.bit_string,
                r.b.bit_string,
                str(r.exact),
                f"{r.wrapped.bit_string} = {r.wrapped.value}",
                f"{r.saturated.value}",
            )
        )
    return Chapter(
        "twos-complement",
        "Two's complement: 2 + (−2) in int8, and what overflow does",
        (
            Paragraph(
                "−2 in int8 is 11111110: −128 + 126. Adding 00000010 gives 1 00000000; the "
                "ninth bit falls off and the result is 0, as the lesson's torch tensors show. "
                "When the true result leaves the range, torch keeps the low 8 bits (wrap-around); "
                "a saturating unit clamps instead."
            ),
            TableBlock(
                "int8 arithmetic",
                ("a op b", "a bits", "b bits", "exact", "wrapped (torch)", "saturated"),
                tuple(rows),
            ),
            Paragraph("Try: dtlab int add 127 1 --as int8"),
        ),
    )


_FLOATS = ("float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2")


def float_fields() -> Chapter:
    rows = []
    for name in _FLOATS:
        f = get_format(name)
        assert isinstance(f, FloatFormat)
        rows.append(
            (
                f.name,
                f"{f.sign_bits}/{f.exp_bits}/{f.man_bits}",
                str(f.bias),
                short(f.max),
                short(f.smallest_normal),
                short(f.smallest_subnormal),
                short(f.eps),
                str(f.precision),
            )
        )
    return Chapter(
        "float-fields",
        "Floating point: sign, exponent, mantissa",
        (
            Paragraph(
                "A float stores a sign s, an exponent field e and a mantissa (fraction) field f. "
                "Its value is (−1)^s × 2^(e − bias) × 1.f, or (−1)^s × 2^(1 − bias) × 0.f when "
                "e = 0 (subnormals). Exponent bits buy range; mantissa bits buy precision: bf16 "
                "keeps fp32's 8 exponent bits (same range) with 7 mantissa bits, fp16 trades "
                "range for 10 mantissa bits."
            ),
            TableBlock(
                "float formats",
                (
                    "dtype",
                    "s/e/m bits",
                    "bias",
                    "max",
                    "smallest normal",
                    "smallest subnormal",
                    "eps",
                    "digits",
                ),
                tuple(rows),
            ),
            Paragraph("Try: dtlab info fp32 fp16 bf16    dtlab formats --kind float"),
        ),
    )


def one_third() -> Chapter:
    rows = []
    for name in ("float64", "float32", "float16", "bfloat16", "float8_e4m3fn"):
        a = explain("1/3", get_format(name))
        stored = a.stored.value.fraction
        digits = _correct_digits(stored, Fraction(1, 3))
        rows.append(
            (
                name,
                a.stored.hex,
                exact_decimal(stored) or str(stored),
                short(a.abs_error, 0, 4),
                short(a.rel_error, 12, 4),
                str(digits),
            )
        )
    fp64 = exact_decimal(explain("1/3", get_format("float64")).stored.value.fraction) or ""
    fp64_digits = len(fp64.partition(".")[2])
    return Chapter(
        "one-third",
        "1/3 stored in fp64, fp32, fp16 and bf16: every digit",
        (
            Paragraph(
                "The lesson prints format(x, '.60f'). dtlab rounds the exact rational 1/3 once, "
                "straight into each format, and prints the stored value's full decimal expansion: "
                f"a binary fraction always ends, fp64's 1/3 after exactly {fp64_digits} digits."
            ),
            TableBlock(
                "1/3",
                (
                    "dtype",
                    "code",
                    "stored value (exact)",
                    "abs error",
                    "rel error",
                    "correct digits",
                ),
                tuple(rows),
            ),
            Paragraph("Try: dtlab show 1/3 --as fp64,fp32,fp16,bf16"),
        ),
    )


def _correct_digits(stored: Fraction, exact: Fraction) -> int:
    """How many leading decimal digits after the point agree."""
    n = 0
    while n < 40 and int(stored * 10 ** (n + 1)) == int(exact * 10 ** (n + 1)):
        n += 1
    return n


def sizes() -> Chapter:
    params = 7 * 10**9
    rows = []
    for name in (
        "float64",
        "float32",
        "tfloat32",
        "float16",
        "bfloat16",
        "float8_e4m3fn",
        "float6_e2m3fn",
        "float4_e2m1fn",
        "int8",
        "int4",
    ):
        r = describe(get_format(name))
        packed = r.packed_bytes_per_value
        rows.append(
            (
                name,
                str(r.bits),
                f"{r.container_bits // 8}",
                exact_decimal(packed) or str(packed),
                f"{exact_decimal(packed * params / 10**9)} GB",
            )
        )
    return Chapter(
        "sizes",
        "Sizes: bytes per value, and what a 7B-parameter model weighs",
        (
            Paragraph(
                "Memory is parameters × bits / 8. Formats narrower than a byte only save memory "
                "when packed (two fp4 or int4 values per byte, four fp6 values in three bytes); "
                "tf32 is a compute format that still occupies 32 bits in memory. Block formats "
                "(MX, NF4) add a scale per block: later chapters count it."
            ),
            TableBlock(
                "sizes",
                ("dtype", "bits", "bytes unpacked", "bytes packed", "7B parameters, packed"),
                tuple(rows),
            ),
        ),
    )


LESSON_CHAPTERS: dict[str, ChapterFn] = {
    "integers": integers,
    "twos-complement": twos_complement,
    "float-fields": float_fields,
    "one-third": one_third,
    "sizes": sizes,
}
