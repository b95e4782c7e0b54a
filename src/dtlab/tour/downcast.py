"""Tour chapter: the lesson's downcasting experiment, for every format and with its errors.

torch is imported inside the chapter, so that listing the chapters stays fast."""

from __future__ import annotations

from fractions import Fraction

from dtlab.numtext import approx_float
from dtlab.tour.model import Chapter, ChapterFn, Paragraph, TableBlock
from dtlab.values import exact_decimal

SEED = 0
N = 1000


def _g(x: float, digits: int = 3) -> str:
    return approx_float(x, digits, infinite="all")  # an exact result: "all" digits correct


def downcasting() -> Chapter:
    import torch

    from dtlab.analysis.format_fit import analyze
    from dtlab.analysis.ops import dot
    from dtlab.formats import get_format
    from dtlab.kernels import quantize

    x = torch.rand(
        N, generator=torch.Generator().manual_seed(SEED)
    )  # the lesson's torch.rand(1000)
    names = ("bfloat16", "float16", "float8_e4m3fn", "float8_e5m2")
    first = []
    for i in range(3):
        cells = [
            exact_decimal(Fraction(float(quantize(x[i : i + 1], n)[0]))) or ""
            for n in ("float32", "bfloat16", "float8_e4m3fn")
        ]
        first.append((f"x[{i}]", *cells))
    a = analyze(x, [get_format(n) for n in names])
    rows = tuple(
        (
            r.format.name,
            _g(r.metrics.sqnr_db, 4),
            _g(r.metrics.max_rel_error),
            _g(r.metrics.mean_rel_error),
            f"{r.metrics.underflow:,}",
        )
        for r in a.ranked()
    )
    dots = []
    cases = [
        ("float32", "float64"),
        ("float32", "float32"),
        ("bfloat16", "float32"),
        ("bfloat16", "format"),
        ("bfloat16", "pairwise"),
        ("float8_e4m3fn", "float32"),
    ]
    for fmt, acc in cases:
        r = dot(x, x, fmt, accumulate=acc)
        dots.append((fmt, acc, repr(r.value), _g(r.rel_error), _g(r.correct_digits)))
    return Chapter(
        "downcasting",
        "Downcasting a random fp32 tensor, and the dot product that changes",
        (
            Paragraph(
                f"The lesson draws torch.rand({N}) in fp32 and converts it to bf16. Here is what "
                "the first values become, every digit shown: bf16 keeps 8 significant bits, fp8 "
                "(e4m3) 4."
            ),
            TableBlock(
                "first values", ("value", "float32", "bfloat16", "float8_e4m3fn"), tuple(first)
            ),
            Paragraph(
                "Over the whole tensor: the signal-to-quantization-noise ratio (each 6 dB is about "
                "one bit) and the relative errors, best format first."
            ),
            TableBlock(
                "errors", ("format", "SQNR dB", "max rel err", "mean rel err", "became 0"), rows
            ),
            Paragraph(
                "The lesson's dot product x·x: rounding the inputs costs a little; accumulating in "
                "the low-precision format costs far more. A bf16 running sum stops growing near "
                "256, where adding 0.5 no longer changes it; a pairwise tree of sums (as GPUs "
                "reduce) fares much better."
            ),
            TableBlock(
                "x·x",
                ("inputs", "accumulate", "result", "rel error", "correct digits"),
                tuple(dots),
            ),
            Paragraph(
                "Try: dtlab cast uniform:1000 --as bf16,fp16,fp8 --plot cast.png    "
                "dtlab dot --as bf16 -a float32,format,pairwise"
            ),
        ),
    )


def quantization() -> Chapter:
    import torch

    from dtlab.analysis.comparison import quantize_analysis
    from dtlab.values import exact_decimal as exact

    x = torch.rand(N, generator=torch.Generator().manual_seed(SEED))  # the same tensor
    specs = ["int8", "int8:asym", "int4:g128", "int4:g128:asym", "mxfp4", "nf4"]
    a = quantize_analysis(x, specs)
    rows = tuple(
        (
            r.spec,
            exact(r.effective_bits) or str(r.effective_bits),
            _g(r.metrics.sqnr_db, 4),
            _g(r.metrics.mean_rel_error),
            f"{r.metrics.overflow:,}",
            r.detail,
        )
        for r in a.ranked()
    )
    return Chapter(
        "quantization",
        "Quantizing the same tensor: int8, int4 with groups of 128, and MXFP4",
        (
            Paragraph(
                "Integer quantization stores x / scale rounded to an integer and keeps the scale: "
                "one per tensor, per channel, or per group of values. Symmetric scales map the "
                "largest |x| to the largest code; torch.rand's values are all positive, so a "
                "symmetric int8 wastes its negative half, and asymmetric (zero-point) scales win. "
                "MXFP4 stores fp4 values with one power-of-two scale per 32; NF4 uses a table of "
                "16 values shaped like a normal distribution. Bits per value count the scales."
            ),
            TableBlock(
                "x = torch.rand(1000)",
                ("quantizer", "bits/value", "SQNR dB", "mean rel err", "clipped", "how"),
                rows,
            ),
            Paragraph("Try: dtlab quantize normal:1e6 --shape 1000x1000 --plot quantize.png"),
        ),
    )


ANALYSIS_CHAPTERS: dict[str, ChapterFn] = {"downcasting": downcasting, "quantization": quantization}
