"""model scan --to takes the quantizer grammar of model memory --to (issue 15): int8 (one
scale per tensor), int8:channel, int4:g128, mxfp4, nvfp4, nf4. Streamed in parts cut
between scale slices (a first pass gives per-tensor scales the whole tensor's range), the
scan gives the figures of quantizing each tensor whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from dtlab.analysis.comparison import quantize_analysis
from dtlab.analysis.targets import slice_values
from dtlab.checkpoint.scan import scan_checkpoint
from dtlab.cli.app import app
from dtlab.errors import OptionError
from dtlab.formats.quantizer_spec import Quantizer, parse_target

runner = CliRunner()
TARGETS = [
    "int8", "int8:asym", "int8:channel", "int4:g128", "uint4:g32", "mxfp4", "nvfp4", "nf4", "q4_0",
    "q5_1", "q8_0",
]  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    g = torch.Generator().manual_seed(11)
    w = torch.randn(96, 1024, generator=g) * torch.logspace(-2, 1, 1024)  # 98,304 values
    ragged = torch.randn(48, 200, generator=g)  # 200 is no multiple of 128, 32 or 16
    w[3, 5], ragged[7, 7] = 40.0, float("nan")  # an outlier; a NaN (its block is left out)
    bias = torch.randn(200, generator=g)
    path = tmp_path_factory.mktemp("scanq") / "q.safetensors"
    save_file({"w": w, "ragged": ragged, "bias": bias}, str(path))
    return path


def test_chunked_scan_equals_quantizing_each_tensor_whole(checkpoint: Path) -> None:
    from safetensors.torch import load_file

    targets = [parse_target(t) for t in TARGETS]
    # 1 MiB: parts of 8,192 values, so w (98,304) comes in twelve
    report = scan_checkpoint(checkpoint, targets, memory_budget=1 << 20)
    tensors = load_file(str(checkpoint))
    for t in report.tensors:
        whole = quantize_analysis(tensors[t.name], TARGETS)
        for v, row in zip(t.verdicts, whole.rows, strict=True):
            got, want = v.metrics, row.metrics
            assert (v.format.name, got.overflow, got.n) == (row.spec, want.overflow, want.n)
            assert (got.input_nan, got.nonfinite_output) == (want.input_nan, want.nonfinite_output)
            assert got.sqnr_db == pytest.approx(want.sqnr_db, rel=1e-9), (t.name, row.spec)
            assert got.max_abs_error == want.max_abs_error, (t.name, row.spec)


def test_slices_stay_together() -> None:
    shape = (96, 1024)
    assert slice_values(parse_target("fp8"), shape) == 1
    assert slice_values(parse_target("int8"), shape) == 1  # absmax: a first pass, any cut
    assert slice_values(parse_target("int8:mse"), shape) == 96 * 1024  # the tensor whole
    assert slice_values(parse_target("int8:channel"), shape) == 1024  # a row
    assert slice_values(parse_target("int4:g128"), shape) == 128
    assert slice_values(parse_target("int4:g128"), (4, 200)) == 200  # ragged: whole rows
    assert slice_values(parse_target("nvfp4"), shape) == 16
    assert slice_values(parse_target("int8:channel"), (200,)) == 1  # rank 1: per tensor


def test_targets_parse_like_model_memory() -> None:
    assert parse_target("fp8").name == "float8_e4m3fn"  # a plain cast
    assert parse_target("e4m3:bias=5").name == "float8_e4m3b5fn"  # a spec with options
    q = parse_target("int4:g128")
    assert isinstance(q, Quantizer) and q.group_size == 128
    with pytest.raises(OptionError, match="scaled targets are integer formats"):
        parse_target("fp8:channel")
    with pytest.raises(OptionError, match="counts in model memory --to"):
        parse_target("q4_k")
    with pytest.raises(OptionError, match="int4:g0"):
        parse_target("int4:g0")


def test_scan_command_with_quantizers(checkpoint: Path) -> None:
    r = runner.invoke(app, ["model", "scan", str(checkpoint), "--to", "fp16,int4:g128,mxfp4"])
    assert r.exit_code == 0, r.stderr
    assert "int4:g128" in r.stdout and "mxfp4" in r.stdout
    r = runner.invoke(app, ["model", "scan", str(checkpoint), "--to", "int4:g128", "--json"])
    doc = json.loads(r.stdout)["result"]
    assert doc["formats"] == ["int4:g128"]
    assert {v["format"] for t in doc["tensors"] for v in t["verdicts"]} == {"int4:g128"}


def test_a_slice_larger_than_the_budget_is_refused_in_one_line(checkpoint: Path) -> None:
    args = ["model", "scan", str(checkpoint), "--to", "int8:mse", "--memory-budget", "1"]
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    (line,) = r.stderr.strip().splitlines()
    # before any tensor is scanned: the first one too large is named
    assert "'ragged' [48, 200]: int8:mse scales 9,600 values at once" in line
    assert line.endswith("use --memory-budget 2 (MiB) or more")


def test_plots_need_a_plain_format(checkpoint: Path, tmp_path: Path) -> None:
    args = ["model", "scan", str(checkpoint), "--to", "int4:g128", "--plot-tensor", "w"]
    r = runner.invoke(app, [*args, "--plot", str(tmp_path / "p.png")])
    assert r.exit_code == 2 and "quantizers have no fixed range" in r.stderr


def test_a_gguf_is_scanned_with_quantizers_as_its_tensors_whole(tmp_path: Path) -> None:
    import gguf_files
    from dtlab.checkpoint import open_checkpoint, read_tensor

    path = tmp_path / "m.gguf"
    gguf_files.write_model(path)
    specs = ["int8", "int4:g32", "int8:channel", "nvfp4", "q4_1"]
    report = scan_checkpoint(path, [parse_target(s) for s in specs], memory_budget=1 << 20)
    ckpt = open_checkpoint(path)
    scanned = [t for t in report.tensors if t.verdicts]
    assert len(scanned) >= 8
    for t in scanned:
        whole = quantize_analysis(read_tensor(ckpt, t.name).float(), specs)
        for v, row in zip(t.verdicts, whole.rows, strict=True):
            assert v.metrics.sqnr_db == pytest.approx(row.metrics.sqnr_db, rel=1e-9), t.name
            assert v.metrics.overflow == row.metrics.overflow
