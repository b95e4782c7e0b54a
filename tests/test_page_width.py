"""Every table at 80 columns (and narrower): no cell cut with "…", no trailing spaces, codes
whole (issue 15: "≈73…" for an SQNR, "103/…" for a count, headings cut, hex split)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from rich.table import Table
from safetensors.torch import save_file
from typer.testing import CliRunner

from dtlab.cli import common
from dtlab.cli.app import app
from dtlab.render.fit import CONTINUED, fit_table

runner = CliRunner()

COMMANDS = [
    ["formats"],
    ["info", "fp64", "fp8", "int4", "e8m0", "tf32"],
    ["show", "1/3", "--as", "fp64,fp32,fp16,bf16,fp8,int8"],
    ["show", "1e-300", "--as", "fp64"],
    ["decode", "0x3fd5555555555555", "--as", "fp64"],
    ["decode", "0x7f", "--as", "fp8,e5m2,int8"],
    ["int", "add", "127", "1", "--as", "int8"],
    ["cast", "normal:1000:std=1e4", "--as", "fp8,e5m2,fp16,bf16,int8,fp4,e8m0"],
    ["dot", "uniform:100", "--as", "fp8,fp4", "-a", "float32,format,pairwise"],
    ["quantize", "normal:4096", "--shape", "64x64", "--as", "int8,int4:g16,mxfp4,nf4,nvfp4"],
    ["model", "memory", "--to", "fp32,bf16,fp16,fp8,int8,int4:g128,nf4,mxfp4,nvfp4"],
    ["model", "scan", "--to", "fp16,bf16,fp8,e5m2,fp4", "--all"],
    ["tour"],
]


@pytest.fixture(params=[80, 52])
def page(request: pytest.FixtureRequest) -> Iterator[int]:
    width = common.console.width
    common.console.width = request.param
    yield request.param
    common.console.width = width


def _run(args: list[str]) -> str:
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_nothing_is_cut_at_the_page_width(args: list[str], page: int) -> None:
    out = _run(args)
    assert "…" not in out
    lines = out.splitlines()
    assert [line for line in lines if line != line.rstrip()] == []
    assert max(len(line) for line in lines) <= page


def test_a_scan_with_special_values_is_whole_at_80_columns(tmp_path: Path, page: int) -> None:
    path = tmp_path / "a-rather-long-file-name-for-a-checkpoint.safetensors"
    w = torch.randn(8, 8)
    w[0, 0], w[1, 1], w[2, 2] = float("nan"), float("inf"), 1e6
    tensors = {"model.layers.0.self_attn.q_proj.weight": w, "ids": torch.arange(6)}
    save_file(tensors, str(path))
    out = _run(["model", "scan", str(path), "--to", "fp16,bf16,fp8,fp4", "--all"])
    assert "…" not in out and "model.layers.0.self_attn.q_proj.weight" in out.replace("\n", "")


def test_codes_are_whole_tokens(page: int) -> None:
    out = _run(["decode", "0x3fd5555555555555", "--as", "fp64"])
    doc = json.loads(_run(["decode", "0x3fd5555555555555", "--as", "fp64", "--json"]))
    (entry,) = doc["result"]
    assert re.search(rf"(^|\s){entry['hex']}(\s|$)", out, re.M)


def test_stacked_tables_keep_every_cell_and_repeat_the_key_column() -> None:
    table = Table(title="t")
    for name in ("name", *(f"column {i}" for i in range(9))):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_row("row", *(f"{10**i:,}" for i in range(12, 21)))
    console = common.Console(width=60, record=True)
    parts = fit_table(table, console)
    assert len(parts) > 1 and [p.title for p in parts[1:]] == [CONTINUED] * (len(parts) - 1)
    assert all(p.columns[0].header == "name" for p in parts)
    headers = [c.header for p in parts for c in p.columns[1:]]
    assert headers == [f"column {i}" for i in range(9)]
    for p in parts:
        console.print(p)
    text = console.export_text()
    assert "…" not in text and all(f"{10**i:,}" in text for i in range(12, 21))


def test_a_table_that_fits_is_left_alone() -> None:
    table = Table()
    table.add_column("a")
    table.add_column("b")
    table.add_row("1", "2")
    assert fit_table(table, common.Console(width=80)) == [table]
