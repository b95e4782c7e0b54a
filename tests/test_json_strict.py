"""Every command's --json parses with a strict parser (no bare NaN or Infinity, which
JSON.parse rejects) and matches docs/json.md where it names a type (issue 15)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from dtlab.cli.app import app

runner = CliRunner()


def strict(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"bare {constant} in --json output")

    return json.loads(text, parse_constant=refuse)


def specials(tmp: Path) -> Path:
    """Integer tensors (absmax of nothing), NaN, inf and overflow: every special value."""
    path = tmp / "m.safetensors"
    w = torch.randn(8, 8)
    w[0, 0], w[1, 1], w[2, 2] = float("nan"), float("inf"), 1e6
    save_file({"w": w, "ids": torch.arange(6), "zero": torch.zeros(4)}, str(path))
    return path


COMMANDS = [
    ["formats"],
    ["info", "fp8", "int4", "e8m0"],
    ["show", "1/3", "--as", "fp16,fp8,int8"],
    ["show", "inf", "--as", "fp8,fp4"],
    ["decode", "0x7f", "--as", "fp8"],
    ["int", "add", "127", "1", "--as", "int8"],
    ["cast", "normal:1000:std=1e4", "--as", "fp8,e5m2,fp16,int8,fp4"],
    ["dot", "uniform:100", "--as", "fp8,fp4", "-a", "float32,format,pairwise"],
    ["quantize", "normal:4096", "--shape", "64x64", "--as", "int8,int4:g16,mxfp4,nf4"],
    ["model", "memory", "--to", "bf16,int4:g128,nvfp4"],
    ["tour", "-c", "integers"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_json_output_is_strict(args: list[str]) -> None:
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.stderr
    doc = strict(r.stdout)
    assert doc["schema"].startswith("dtlab.")


def test_scan_json_with_every_special_value_is_strict(tmp_path: Path) -> None:
    r = runner.invoke(app, ["model", "scan", str(specials(tmp_path)), "--to", "fp16,fp8", "--json"])
    assert r.exit_code == 0, r.stderr
    doc = strict(r.stdout)
    ids = next(t for t in doc["result"]["tensors"] if t["name"] == "ids")
    assert ids["absmax"] == "nan" and ids["verdicts"] == []  # a string, as docs/json.md says


def test_documented_types() -> None:
    cast = strict(runner.invoke(app, ["cast", "normal:10", "--as", "int8", "--json"]).stdout)
    rng = cast["result"]["analysis"]["results"][0]["range"]
    assert (rng["max"], rng["min"]) == (127.0, -128.0)  # was 128: int8's max is 127
    dot = strict(runner.invoke(app, ["dot", "uniform:3", "--as", "fp4", "--json"]).stdout)
    assert dot["result"]["results"][0]["operand_bytes"] == 4  # an integer: 2 x ceil(3 x 4 / 8)
