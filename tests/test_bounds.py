"""Bad sizes and values get one line and exit status 2 before any allocation; numbers longer
than Python's 4,300-digit int/str limit print in full (issue 14)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dtlab.cli.app import app
from dtlab.inputs import load_tensor
from dtlab.values import exact_decimal, int_digits, parse_value

runner = CliRunner()


def one_line_error(args: list[str], fragment: str) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code == 2, (args, r.stdout[-300:], r.stderr)
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert fragment in r.stderr, r.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["quantize", "normal:12", "--shape", "99999999999999999999x1"], "do not make shape"),
        (["quantize", "normal:12", "--shape", "x".join(["1"] * 70)], "at most 64"),
        (["quantize", "normal:12", "--shape", "-1x-1"], "one -1 at most"),
        (["quantize", "normal:12", "--shape", "3x-2"], "cannot read shape"),
        (["quantize", "normal:12", "--shape", "0x-1"], "do not make shape"),
        (
            ["quantize", "normal:12", "--as", "int4:g4", "--shape", "2x2x3", "--group-axis", "5"],
            "out of range",
        ),
        (["cast", "normal:10:std=1e39", "--as", "fp8"], "within ±1e+30"),
        (["cast", "normal:10:std=1e400", "--as", "fp8"], "within ±1e+30"),
        (["cast", "normal:10:std=0", "--as", "fp8"], "positive"),
        (["cast", "laplace:10:scale=-2", "--as", "fp8"], "positive"),
        (["cast", "uniform:10:low=1:high=1", "--as", "fp8"], "low must be below high"),
        (["cast", "normal:10", "--as", ""], "--as names nothing"),
        (["dot", "--as", "fp8", "-a", ""], "--accumulate names nothing"),
        (["quantize", "normal:10", "--as", " , "], "--as names nothing"),
        (["model", "memory", "--to", ""], "--to names nothing"),
        (["model", "scan", "--to", ""], "--to names nothing"),
        (["model", "memory", ""], "empty PATH"),
        (["model", "scan", " "], "empty PATH"),
        (["cast", "normal:10", "--as", "e15m2fn"], "beyond float64"),
        (["dot", "uniform:2^31"], "more than"),
    ],
)
def test_bad_sizes_and_values_are_one_line_errors(args: list[str], fragment: str) -> None:
    one_line_error(args, fragment)


def test_a_reshape_that_fits_still_works() -> None:
    r = runner.invoke(app, ["quantize", "normal:12", "--shape", "3x-1", "--as", "int8", "--json"])
    assert r.exit_code == 0, r.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["show", "1e5000", "--as", "fp16"], "1" + "0" * 100),
        (["show", "2^-20000", "--as", "fp64"], "0." + "0" * 6000),
        (["info", "e15m2"], "binades"),
        (["decode", "0x1", "--as", "e14m1"], "2^-8191"),
    ],
)
def test_huge_exact_numbers_print(args: list[str], fragment: str) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.stderr
    assert fragment in r.stdout.replace("\n", "").replace(" ", "")


def test_huge_integers_in_int_ops_are_one_line_errors() -> None:
    one_line_error(["int", "add", "9" * 5000, "1", "--as", "int64"], "(5000 digits) is outside")


def test_digits_beyond_the_str_limit_are_exact() -> None:
    n = 7**6000  # 5,071 digits
    assert int(int_digits(n)[:50]) == int(str(n // 10 ** (len(int_digits(n)) - 50)))
    assert parse_value("9" * 5000).fraction == 10**5000 - 1
    text = exact_decimal(parse_value("2^-15000").fraction)
    assert text is not None and text.startswith("0.") and len(text) > 15000


# ---- files: valid ones read, hostile ones refused by their declared sizes -------------------


def test_big_endian_npy_is_read_as_its_values(tmp_path: Path) -> None:
    np.save(tmp_path / "be.npy", np.array([1.5, -2.0, 3.25], dtype=">f4"))
    assert load_tensor(str(tmp_path / "be.npy")).tensor.tolist() == [1.5, -2.0, 3.25]


def test_long_double_npy_is_refused_clearly(tmp_path: Path) -> None:
    np.save(tmp_path / "ld.npy", np.arange(3, dtype=np.longdouble))
    if np.dtype(np.longdouble).itemsize <= 8:
        pytest.skip("long double is float64 on this platform")
    one_line_error(["cast", str(tmp_path / "ld.npy"), "--as", "fp8"], "long double")


def test_dot_refuses_a_huge_vector_before_making_it() -> None:
    """2^30 values would be 4 GB, and several float64 copies: refused as declared."""
    one_line_error(["dot", "uniform:2^30"], "this command takes")


def test_a_compressed_pickle_bomb_is_refused_before_loading(tmp_path: Path) -> None:
    good = tmp_path / "ok.pt"
    torch.save({"w": torch.zeros(8)}, good)
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info.filename)
            out.writestr(info.filename, bytes(8 << 20) if "/data/" in info.filename else data)
    assert bomb.stat().st_size < 100_000  # inflates to 8 MB
    one_line_error(["cast", str(bomb), "--as", "fp8", "--allow-pickle"], "compressed entries")
    r = runner.invoke(app, ["cast", str(good), "--as", "fp8", "--allow-pickle"])
    assert r.exit_code == 0, r.stderr


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
def test_an_output_folder_that_refuses_files_fails_before_the_work() -> None:
    one_line_error(["cast", "normal:10", "--plot", "/proc/x.png"], "folder not writable")
