"""The CLI as a person uses it: what they read, what JSON scripts get, and errors."""

import json
import subprocess
import sys
from fractions import Fraction

import pytest
from typer.testing import CliRunner

from dtlab.cli.app import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def run_json(*args: str) -> object:
    code, out, err = run(*args, "--json")
    assert code == 0, err
    doc = json.loads(out)
    return doc["result"]


def test_formats_table_lists_the_catalogue() -> None:
    code, out, _ = run("formats")
    assert code == 0
    for name in ("float8_e4m3fn", "float4_e2m1fn", "bfloat16", "int8", "uint4"):
        assert name in out
    assert "int13" not in out
    code, out, _ = run("formats", "--kind", "int", "--all")
    assert "int13" in out and "float16" not in out


def test_formats_json_is_exact() -> None:
    rows = run_json("formats", "--kind", "float")
    assert isinstance(rows, list)
    fp32 = next(r for r in rows if r["name"] == "float32")
    assert Fraction(fp32["max"]) == (2 - Fraction(1, 2**23)) * 2**127
    assert fp32["torch_dtype"] == "torch.float32" and fp32["finite_values"] == 2**32 - 2**24 - 1


def test_info_side_by_side() -> None:
    code, out, _ = run("info", "fp16", "bf16,e5m2fnuz")
    assert code == 0
    assert "float16" in out and "bfloat16" in out and "float8_e5m2fnuz" in out
    assert "65504" in out and "57344" in out
    doc = run_json("info", "e8m0")
    assert isinstance(doc, list)
    assert Fraction(doc[0]["min"]) == Fraction(1, 2**127) and doc[0]["has_zero"] is False


def test_show_prints_every_digit_of_the_stored_value() -> None:
    code, out, _ = run("show", "1/3", "--as", "fp64,bf16")
    assert code == 0
    assert "0.333333333333333314829616256247390992939472198486328125" in out
    assert "0.333984375" in out and "0 01111101 0101011" in out


def test_show_negative_numbers_need_no_double_dash() -> None:
    code, out, _ = run("show", "-5", "--as", "int8")
    assert code == 0 and "11111011" in out and "two's complement" in out


def test_show_policies() -> None:
    doc = run_json("show", "1000", "--as", "fp8,e5m2", "--overflow", "saturate")
    assert isinstance(doc, list)
    assert [d["stored"]["value"] for d in doc] == ["448", "1024"]
    doc = run_json("show", "1000", "--as", "fp8")
    assert isinstance(doc, list) and doc[0]["stored"]["value"] == "nan"
    assert doc[0]["outcome"] == "overflow-nan"
    doc = run_json("show", "300", "--as", "int8", "--overflow", "wrap", "-r", "toward-zero")
    assert isinstance(doc, list) and doc[0]["stored"]["value"] == "44"
    doc = run_json("show", "2.5", "--as", "int8", "--rounding", "nearest-away")
    assert isinstance(doc, list) and doc[0]["stored"]["value"] == "3"


def test_show_json_schema() -> None:
    doc = run_json("show", "0.1", "--as", "bf16")
    assert isinstance(doc, list)
    a = doc[0]
    assert a["input"] == "0.1" and a["rounding"] == "nearest-even" and a["overflow"] == "inf-nan"
    s = a["stored"]
    assert s["format"] == "bfloat16" and s["hex"] == "0x3dcd" and s["bits"] == "0011110111001101"
    assert [f["role"] for f in s["fields"]] == ["sign", "exponent", "mantissa"]
    assert Fraction(s["value"]) == Fraction(0b11001101, 2**11)  # 1.1001101b × 2^-4
    assert Fraction(a["abs_error"]) == abs(Fraction(s["value"]) - Fraction(1, 10))


def test_decode() -> None:
    code, out, _ = run("decode", "0b0_1111_110", "--as", "fp8")
    assert code == 0 and "448" in out and "normal" in out
    doc = run_json("decode", "0xff", "--as", "e4m3fn,e5m2,e8m0,uint8,int8")
    assert isinstance(doc, list)
    assert [d["value"] for d in doc] == ["nan", "nan", "nan", "255", "-1"]


def test_int_arithmetic() -> None:
    code, out, _ = run("int", "add", "127", "1", "--as", "int8")
    assert code == 0 and "10000000" in out and "-128" in out and "127" in out
    doc = run_json("int", "add", "2", "-2", "--as", "int8")
    assert isinstance(doc, dict) and doc["wrapped"]["value"] == "0" and doc["overflowed"] is False
    doc = run_json("int", "mul", "7", "3", "--as", "int4")
    assert isinstance(doc, dict) and doc["exact"] == 21
    assert doc["wrapped"]["value"] == "5" and doc["saturated"]["value"] == "7"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "1", "--as", "fp9"), "unknown format 'fp9'; did you mean"),
        (("show", "abc", "--as", "fp8"), "cannot read 'abc' as a number"),
        (("show", "1", "--as", "fp8", "--rounding", "sideways"), "unknown rounding"),
        (("show", "1", "--as", "fp8", "--overflow", "wrap"), "wrap-around is for integers"),
        (("show", "1", "--as", "int8", "--overflow", "inf-nan"), "has no inf or NaN"),
        (("decode", "0x1ff", "--as", "fp8"), "too wide for the 8 bits"),
        (("decode", "0b1_0101_0101", "--as", "fp8"), "9 bits"),
        (("int", "add", "200", "1", "--as", "int8"), "outside int8"),
        (("int", "add", "1.5", "1"), "not an integer"),
        (("int", "add", "1", "1", "--as", "fp8"), "needs an integer format"),
        (("info", "e4m3:bias=zz"), "bias must be an integer"),
        (("tour", "--chapter", "nope"), "unknown chapter"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    code, out, err = run(*args)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err and out == ""


def test_debug_shows_the_exception() -> None:
    result = runner.invoke(app, ["--debug", "show", "1", "--as", "fp9"])
    assert result.exit_code != 0 and type(result.exception).__name__ == "UnknownFormatError"


def test_every_command_has_help_with_examples() -> None:
    for cmd in (["formats"], ["info"], ["show"], ["decode"], ["int", "add"], ["tour"]):
        code, out, _ = run(*cmd, "--help")
        assert code == 0 and "Examples" in out and "--json" in out, cmd


def test_startup_does_not_import_torch_or_numpy() -> None:
    probe = (
        "import sys\n"
        "sys.argv = ['dtlab', 'formats']\n"
        "from dtlab.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None)\n"
        "heavy = sorted(m for m in ('torch', 'numpy', 'ml_dtypes') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout
