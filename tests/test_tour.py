"""The tour: every chapter computes, and its figures agree with the library and with torch."""

import json
from fractions import Fraction

import torch
from typer.testing import CliRunner

from dtlab.cli.app import app
from dtlab.tour import CHAPTERS, TableBlock, run_tour

runner = CliRunner()


def _table(key: str) -> TableBlock:
    (chapter,) = run_tour([key])
    return next(b for b in chapter.blocks if isinstance(b, TableBlock))


def test_lesson_chapters_are_in_order() -> None:
    assert list(CHAPTERS)[:5] == [
        "integers",
        "twos-complement",
        "float-fields",
        "one-third",
        "sizes",
    ]


def test_integer_ranges_agree_with_torch_iinfo() -> None:
    rows = {r[0]: r for r in _table("integers").rows}
    for name in ("uint8", "int8", "int16", "int32", "int64"):
        info = torch.iinfo(getattr(torch, name))
        assert rows[name][3:5] == (f"{info.min:,}", f"{info.max:,}")


def test_two_plus_minus_two_is_zero_like_torch() -> None:
    row = _table("twos-complement").rows[0]
    assert row[:3] == ("2 + -2", "00000010", "11111110")
    t = torch.tensor([2], dtype=torch.int8) + torch.tensor([-2], dtype=torch.int8)
    assert row[4] == f"00000000 = {int(t.item())}"
    wrapped = torch.tensor([127], dtype=torch.int8) + torch.tensor([1], dtype=torch.int8)
    assert _table("twos-complement").rows[1][4].endswith(f"= {int(wrapped.item())}")


def test_one_third_matches_torch_for_every_lesson_dtype() -> None:
    rows = {r[0]: r for r in _table("one-third").rows}
    for name in ("float64", "float32", "float16", "bfloat16"):
        stored = torch.tensor(1 / 3, dtype=torch.float64).to(getattr(torch, name)).double().item()
        assert Fraction(rows[name][2]) == Fraction(stored)
    # the exact decimal is every digit of the stored value: .60f pads fp64's 54 digits with zeros
    assert format(float(rows["float64"][2]), ".60f").rstrip("0") == rows["float64"][2]


def test_sizes_are_bits_over_eight() -> None:
    rows = {r[0]: r for r in _table("sizes").rows}
    assert rows["float16"][4] == "14 GB" and rows["float4_e2m1fn"][4] == "3.5 GB"
    assert rows["float6_e2m3fn"][3] == "0.75" and rows["tfloat32"][2] == "4"


def test_tour_command_prints_and_has_json() -> None:
    result = runner.invoke(app, ["tour"])
    assert result.exit_code == 0
    assert "Two's complement" in result.stdout and "0.333984375" in result.stdout
    result = runner.invoke(app, ["tour", "--json", "-c", "sizes"])
    doc = json.loads(result.stdout)
    assert doc["schema"] == "dtlab.tour/1" and doc["result"][0]["key"] == "sizes"


def test_downcasting_chapter_agrees_with_torch() -> None:
    (chapter,) = run_tour(["downcasting"])
    tables = [b for b in chapter.blocks if isinstance(b, TableBlock)]
    first, errors, dots = tables
    x = torch.rand(1000, generator=torch.Generator().manual_seed(0))
    for i, row in enumerate(first.rows):
        assert Fraction(row[1]) == Fraction(x[i].item())
        assert Fraction(row[2]) == Fraction(x[i].bfloat16().item())
        assert Fraction(row[3]) == Fraction(x[i].to(torch.float8_e4m3fn).float().item())
    assert [r[0] for r in errors.rows] == ["float16", "bfloat16", "float8_e4m3fn", "float8_e5m2"]
    rows = {(r[0], r[1]): r for r in dots.rows}
    assert rows[("float32", "float64")][2] == repr(float(torch.dot(x.double(), x.double())))
    assert rows[("bfloat16", "format")][2] == "256.0"  # the bf16 running sum stalls


def test_quantization_chapter_agrees_with_the_quantizers() -> None:
    from dtlab.analysis.comparison import quantize_analysis

    (chapter,) = run_tour(["quantization"])
    (table,) = [b for b in chapter.blocks if isinstance(b, TableBlock)]
    x = torch.rand(1000, generator=torch.Generator().manual_seed(0))
    want = {r.spec: r for r in quantize_analysis(x, ["int8", "int4:g128", "mxfp4"]).rows}
    rows = {r[0]: r for r in table.rows}
    for spec, r in want.items():
        assert Fraction(rows[spec][1]) == r.effective_bits
        assert rows[spec][2] == f"≈{r.metrics.sqnr_db:.4g}"
    sqnr = {k: float(v[2].lstrip("≈")) for k, v in rows.items()}
    assert sqnr["int8:asym"] > sqnr["int8"]  # rand is positive: zero points help


def test_minilm_chapter_agrees_with_the_scan_and_the_memory_table() -> None:
    from dtlab.checkpoint import embedded_model, memory_table, open_checkpoint

    (chapter,) = run_tour(["minilm"])
    mem, scan = [b for b in chapter.blocks if isinstance(b, TableBlock)]
    table = memory_table(open_checkpoint(embedded_model()), ["fp32", "bf16"])
    rows = {r[0]: r for r in mem.rows}
    assert rows["fp32"][1] == f"{table.totals[0].nbytes:,}" == "90,856,960"
    assert rows["bf16"][1] == f"{table.totals[1].nbytes:,}"
    assert [r[0] for r in scan.rows] == ["float16", "bfloat16", "float8_e4m3fn", "float8_e5m2"]
    assert scan.rows[0][1] == "103/103" and scan.rows[0][2] == "0"
