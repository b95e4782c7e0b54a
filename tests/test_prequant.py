"""Pre-quantized safetensors checkpoints: each layout written by a re-implementation of its
library's packing code (tests/prequant_packers.py), then recognised, counted at its logical
shape and dequantized bit for bit as the library dequantizes it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

import prequant_packers as pk
from dtlab.checkpoint import memory_table, open_checkpoint, read_tensor
from dtlab.checkpoint.header import CheckpointError
from dtlab.checkpoint.prequant import Family, PackedWeight, layout_of
from dtlab.checkpoint.prequant.dequant import packed_chunks, read_packed
from dtlab.checkpoint.scan import scan_checkpoint
from dtlab.cli.app import app
from dtlab.formats import get_format
from dtlab.formats.quantizer_spec import parse_quantizer
from test_startup import run_probe

Maker = Callable[[Path], tuple[Path, dict[str, torch.Tensor]]]
LAYOUTS: dict[str, tuple[Maker, Family]] = {
    "gptq-4bit-g32": (lambda p: pk.gptq_checkpoint(p), Family.GPTQ),
    "gptq-8bit-desc-act-per-column": (
        lambda p: pk.gptq_checkpoint(p, bits=8, group=-1, desc_act=True),
        Family.GPTQ,
    ),
    "gptq-2bit-desc-act-g16": (
        lambda p: pk.gptq_checkpoint(p, bits=2, group=16, desc_act=True),
        Family.GPTQ,
    ),
    "gptq-3bit-g32": (lambda p: pk.gptq_checkpoint(p, bits=3, group=32), Family.GPTQ),
    "awq-gemm": (pk.awq_checkpoint, Family.AWQ),
    "bnb-nf4": (lambda p: pk.bnb_checkpoint(p, "nf4", False), Family.BNB_4BIT),
    "bnb-nf4-double-quant": (lambda p: pk.bnb_checkpoint(p, "nf4", True), Family.BNB_4BIT),
    "bnb-fp4-double-quant": (lambda p: pk.bnb_checkpoint(p, "fp4", True), Family.BNB_4BIT),
    "bnb-int8": (pk.bnb8_checkpoint, Family.BNB_INT8),
    "fp8-deepseek-128x128": (pk.fp8_block_checkpoint, Family.FP8_BLOCK),
    "compressed-tensors-fp8": (pk.compressed_fp8_checkpoint, Family.CT_FP8),
    "mxfp4-gpt-oss": (pk.mxfp4_checkpoint, Family.MXFP4),
}
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def bits(t: torch.Tensor) -> torch.Tensor:
    return t.view({1: torch.uint8, 2: torch.int16, 4: torch.int32}[t.element_size()])


def unit_values(w: PackedWeight) -> int:
    """Values of the smallest piece a family reads: one stored row or block."""
    if w.family is Family.GPTQ:
        rows = 3 if w.scheme.bits == 3 else 1  # 3-bit codes straddle int32s: 32 in 3 rows
        return 32 * rows // w.scheme.bits * w.shape[0]
    if w.family is Family.AWQ:
        return w.shape[0]  # one input row
    if w.family in (Family.BNB_4BIT, Family.MXFP4):
        return w.scheme.group_size
    return w.shape[-1]


@pytest.fixture(params=sorted(LAYOUTS))
def layout_case(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[Path, dict[str, torch.Tensor], Family]:
    make, family = LAYOUTS[request.param]
    folder, known = make(tmp_path / request.param)
    return folder, known, family


def test_dequantized_weights_are_the_librarys_bit_for_bit(
    layout_case: tuple[Path, dict[str, torch.Tensor], Family],
) -> None:
    folder, known, family = layout_case
    ckpt = open_checkpoint(folder)
    layout = layout_of(ckpt)
    assert layout.recognised and {w.family for w in layout.weights} == {family}
    assert {w.name for w in layout.weights} == set(known)
    for name, want in known.items():
        w = layout.weight(name)
        assert w is not None
        got = read_packed(ckpt, w)
        assert (got.dtype, got.shape) == (want.dtype, want.shape)
        assert torch.equal(bits(got), bits(want))  # -0 and NaN payloads too


def test_memory_counts_logical_parameters_and_every_stored_byte(
    layout_case: tuple[Path, dict[str, torch.Tensor], Family],
) -> None:
    folder, known, _ = layout_case
    ckpt = open_checkpoint(folder)
    table = memory_table(ckpt, ["bf16", "int4:g128"])
    plain = [
        e
        for e in ckpt.tensors
        if not any(e.name in {p.name for p in w.parts} for w in layout_of(ckpt).weights)
    ]
    logical = sum(v.numel() for v in known.values())
    assert table.total_params == logical + sum(e.numel for e in plain)
    assert table.stored_bytes == sum(e.nbytes for e in ckpt.tensors)  # nothing dropped
    assert table.layout is not None and table.layout.recognised
    assert table.layout.logical_params == logical
    rows = {r.name: r for r in table.tensors}
    int4 = parse_quantizer("int4:g128")
    for name, want in known.items():
        row = rows[name]
        assert row.shape == tuple(want.shape) and row.stored_as is not None
        assert row.nbytes[0] == 2 * want.numel()  # dequantized to bf16
        assert row.nbytes[1] == int4.nbytes(tuple(want.shape))  # re-quantized
    assert any(a.startswith("Pre-quantized: ") for a in table.assumptions)


def test_scan_reads_the_dequantized_values_in_bounded_pieces(
    layout_case: tuple[Path, dict[str, torch.Tensor], Family],
) -> None:
    folder, known, family = layout_case
    ckpt = open_checkpoint(folder)
    for name, want in known.items():
        w = layout_of(ckpt).weight(name)
        assert isinstance(w, PackedWeight)
        pieces = list(packed_chunks(ckpt, w, 1024))
        most = max(256, unit_values(w))  # 1024 bytes of float32, or one row or block
        assert len(pieces) >= want.numel() // most
        assert all(p.dtype == torch.float32 and p.numel() <= most for p in pieces)
        stored_order = want.T if family in (Family.GPTQ, Family.AWQ) else want
        assert torch.equal(torch.cat(pieces), stored_order.float().reshape(-1))
    report = scan_checkpoint(folder, [get_format("fp16")])
    scans = {t.name: t for t in report.tensors}
    assert report.layout is not None and report.layout.packed_weights == len(known)
    for name, want in known.items():
        t = scans[name]
        assert t.numel == want.numel() and t.stored_as is not None
        assert t.absmax == want.float().abs().max().item()


def test_gptq_cli_memory_and_scan_show_the_layout(tmp_path: Path) -> None:
    folder, known = pk.gptq_checkpoint(tmp_path / "m")
    code, out, _ = run("model", "memory", str(folder), "--to", "bf16,int4:g128")
    out = " ".join(out.split())  # rich wraps lines at the terminal's width
    assert code == 0
    assert "pre-quantized: GPTQ 4-bit, groups of 32" in out
    assert "24,576 gptq int4 g32" in out  # 2 x (64x64 + 128x64) logical parameters
    code, out, _ = run("model", "memory", str(folder), "--json")
    doc = json.loads(out)["result"]
    assert doc["layout"]["recognised"] is True and doc["layout"]["logical_params"] == 24576
    assert {t["stored_as"] for t in doc["tensors"]} == {"gptq int4 g32", None}
    code, out, _ = run("model", "scan", str(folder), "--json")
    doc = json.loads(out)["result"]
    assert code == 0 and doc["layout"]["method"] == "gptq"
    q = next(t for t in doc["tensors"] if t["name"] == "model.layers.0.q_proj.weight")
    assert q["stored_as"] == "gptq int4 g32" and q["dtype"] == "F16" and q["numel"] == 4096
    w = known["model.layers.0.q_proj.weight"]
    assert q["absmax"] == w.float().abs().max().item()


def test_memory_of_a_gptq_checkpoint_imports_no_torch(tmp_path: Path) -> None:
    folder, _ = pk.gptq_checkpoint(tmp_path / "m")
    r = run_probe("model", "memory", str(folder), "--json")
    assert r["code"] == 0 and r["loaded"] == []
    assert '"logical_params": 24576' in str(r["out"])


# ---- what is not understood is said so -------------------------------------------------------


def test_an_unknown_quant_method_is_reported_unrecognised(tmp_path: Path) -> None:
    folder = pk.write(
        tmp_path / "hqq",
        {"l.W_q": torch.zeros(8, 4, dtype=torch.uint8)},
        {"quant_method": "hqq", "nbits": 4},
    )
    table = memory_table(open_checkpoint(folder))
    assert table.layout is not None and not table.layout.recognised
    assert table.layout.method == "hqq"
    assert table.assumptions[0].startswith("UNRECOGNISED packed layout: quant_method 'hqq'")
    code, out, _ = run("model", "memory", str(folder))
    assert code == 0 and "UNRECOGNISED packed layout" in " ".join(out.split())


@pytest.mark.parametrize(
    "make",
    [pk.gptq_checkpoint, pk.awq_checkpoint, pk.fp8_block_checkpoint, pk.compressed_fp8_checkpoint],
)
def test_packed_tensors_without_a_config_are_not_counted_as_weights(
    tmp_path: Path, make: Maker
) -> None:
    folder, _ = make(tmp_path / "m")
    (folder / "config.json").unlink()
    table = memory_table(open_checkpoint(folder))
    assert table.layout is not None and not table.layout.recognised
    assert "no config.json quantization_config" in (table.layout.note or "")


def test_self_describing_layouts_need_no_config(tmp_path: Path) -> None:
    folder, known = pk.bnb_checkpoint(tmp_path / "b", "nf4", True)
    (folder / "config.json").unlink()
    layout = layout_of(open_checkpoint(folder))
    assert layout.recognised and "from tensor names" in layout.description
    assert {w.name for w in layout.weights} == set(known)


def test_awq_gemv_and_compressed_pack_quantized_are_reported_unrecognised(tmp_path: Path) -> None:
    folder, _ = pk.awq_checkpoint(tmp_path / "a")
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"]["version"] = "gemv"
    (folder / "config.json").write_text(json.dumps(config))
    assert not layout_of(open_checkpoint(folder)).recognised
    folder = pk.write(
        tmp_path / "ct",
        {"l.weight_packed": torch.zeros(4, 2, dtype=torch.int32)},
        {
            "quant_method": "compressed-tensors",
            "format": "pack-quantized",
            "config_groups": {"g": {"weights": {"num_bits": 4, "type": "int"}}},
        },
    )
    layout = layout_of(open_checkpoint(folder))
    assert not layout.recognised and "pack-quantized" in (layout.note or "")


# ---- hostile ----------------------------------------------------------------------------------


def _gptq_with(
    tmp_path: Path, change: Callable[[dict[str, torch.Tensor], dict[str, object]], None]
) -> Path:
    parts, _ = pk.gptq_linear(64, 128, 4, 32, 0)
    tensors = {f"l.{k}": v for k, v in parts.items()}
    qc: dict[str, object] = {"quant_method": "gptq", "bits": 4, "group_size": 32}
    change(tensors, qc)
    return pk.write(tmp_path / "bad", tensors, qc)


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        (lambda t, qc: qc.update(bits=8), "should be [2, 64] for group_size 32"),
        (lambda t, qc: qc.update(group_size=64), "should be [2, 64] for group_size 64"),
        (
            lambda t, qc: t.update({"l.qzeros": torch.zeros(4, 16, dtype=torch.int32)}),
            "pack into [4, 8]",
        ),
        (
            lambda t, qc: t.update({"l.g_idx": torch.zeros(100, dtype=torch.int32)}),
            "has 100 entries",
        ),
        (lambda t, qc: t.pop("l.scales"), "has no l.scales beside it"),
        (lambda t, qc: t.update({"l.qweight": torch.zeros(16, 64)}), "is F32"),
        (lambda t, qc: qc.update(bits=5), "GPTQ bits=5"),
    ],
)
def test_gptq_shapes_that_contradict_the_config_are_refused(
    tmp_path: Path,
    change: Callable[[dict[str, torch.Tensor], dict[str, object]], None],
    expect: str,
) -> None:
    folder = _gptq_with(tmp_path, change)
    with pytest.raises(CheckpointError, match=expect.replace("[", r"\[")):
        memory_table(open_checkpoint(folder))
    code, out, err = run("model", "memory", str(folder))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and expect in err


def test_gptq_g_idx_naming_missing_groups_is_refused_by_the_scan(tmp_path: Path) -> None:
    folder = _gptq_with(tmp_path, lambda t, qc: t["l.g_idx"].fill_(1 << 20))
    code, _, err = run("model", "scan", str(folder))
    assert code == 2 and "names groups outside [0, 4)" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("state", "expect"),
    [
        (
            {
                "quant_type": "nf4",
                "blocksize": 64,
                "dtype": "bfloat16",
                "shape": [1 << 40, 1 << 40],
            },
            "holds 660 bytes",
        ),
        (
            {"quant_type": "nf4", "blocksize": 63, "dtype": "bfloat16", "shape": [33, 40]},
            "blocksize 63",
        ),
        (
            {"quant_type": "int4", "blocksize": 64, "dtype": "bfloat16", "shape": [33, 40]},
            "quant_type 'int4'",
        ),
    ],
)
def test_hostile_bitsandbytes_states_are_refused(
    tmp_path: Path, state: dict[str, object], expect: str
) -> None:
    parts, _ = pk.bnb4_linear(torch.randn(33, 40).bfloat16(), "nf4", False)
    blob = json.dumps(state).encode()
    parts["weight.quant_state.bitsandbytes__nf4"] = torch.tensor(list(blob), dtype=torch.uint8)
    folder = tmp_path / "b"
    folder.mkdir()
    save_file({f"l.{k}": v for k, v in parts.items()}, str(folder / "model.safetensors"))
    code, _, err = run("model", "memory", str(folder))
    assert code == 2 and expect in err and len(err.splitlines()) == 1


def test_a_malformed_config_is_one_line(tmp_path: Path) -> None:
    folder, _ = pk.gptq_checkpoint(tmp_path / "m")
    (folder / "config.json").write_text(
        '{"quantization_config": {"quant_method": "gptq", "bits": NaN}}'
    )
    code, _, err = run("model", "memory", str(folder))
    assert code == 2 and "config.json" in err and len(err.splitlines()) == 1


# ---- against the libraries that are installed -------------------------------------------------


def test_mxfp4_equals_transformers_convert_moe_packed_tensors(tmp_path: Path) -> None:
    mxfp4 = pytest.importorskip("transformers.integrations.mxfp4")
    folder, known = pk.mxfp4_checkpoint(tmp_path / "mx")
    ckpt = open_checkpoint(folder)
    w = layout_of(ckpt).weight("experts.gate_up_proj")
    assert w is not None
    blocks, scales = (ckpt.entry(f"experts.gate_up_proj_{k}") for k in ("blocks", "scales"))
    ref = mxfp4.convert_moe_packed_tensors(
        read_tensor(ckpt, blocks.name), read_tensor(ckpt, scales.name)
    )
    # transformers returns gpt-oss's [experts, in, out]: the transpose of dims 1 and 2
    assert torch.equal(bits(read_packed(ckpt, w).transpose(1, 2).contiguous()), bits(ref))
    assert torch.equal(bits(ref.transpose(1, 2).contiguous()), bits(known["experts.gate_up_proj"]))


def test_fp8_blocks_follow_deepseek_where_transformers_rounds_the_scale_first(
    tmp_path: Path,
) -> None:
    fp8 = pytest.importorskip("transformers.integrations.finegrained_fp8")
    folder, known = pk.fp8_block_checkpoint(tmp_path / "fp8")
    ckpt = open_checkpoint(folder)
    w = layout_of(ckpt).weight("mlp.weight")
    assert w is not None
    y, s = read_tensor(ckpt, "mlp.weight"), read_tensor(ckpt, "mlp.weight_scale_inv")
    ours = read_packed(ckpt, w)
    assert torch.equal(bits(ours), bits(known["mlp.weight"]))  # DeepSeek: fp32 product -> bf16
    theirs = fp8._dequantize_fp8_weight(y, s, [128, 128], torch.bfloat16)
    # transformers' backward-pass helper rounds the scale to bf16 before multiplying: a
    # second rounding, so some values differ from DeepSeek's weight_dequant in the last bit
    differ = int((bits(ours) != bits(theirs)).sum())
    assert 0 < differ < ours.numel() // 2
    assert torch.allclose(ours.float(), theirs.float(), rtol=2**-7, atol=0)


def test_scan_workers_dequantize_packed_weights_too(tmp_path: Path) -> None:
    folder, _ = pk.bnb_checkpoint(tmp_path / "b", "nf4", True)
    one = scan_checkpoint(folder, [get_format("fp8")])
    two = scan_checkpoint(folder, [get_format("fp8")], workers=2)
    assert [(t.name, t.stored_as, t.absmax) for t in one.tensors] == [
        (t.name, t.stored_as, t.absmax) for t in two.tensors
    ]
    assert [t.verdicts[0].metrics for t in one.tensors] == [
        t.verdicts[0].metrics for t in two.tensors
    ]


def test_quantizer_targets_see_packed_weights_in_their_logical_order(
    layout_case: tuple[Path, dict[str, torch.Tensor], Family],
) -> None:
    # GPTQ and AWQ dequantize in [in, out] order: groups and channels of int4:g32 and
    # int8:channel must still run along the logical [out, in] weight
    from dtlab.analysis.comparison import quantize_analysis
    from dtlab.formats.quantizer_spec import parse_target

    folder, known, _ = layout_case
    specs = ["int8:channel", "int4:g32", "int8", "fp8"]
    report = scan_checkpoint(folder, [parse_target(s) for s in specs])
    scans = {t.name: t for t in report.tensors}
    for name, want in known.items():
        whole = quantize_analysis(want.float(), specs[:3])
        got = scans[name].verdicts
        assert len(got) == len(specs)
        for v, row in zip(got[:3], whole.rows, strict=True):
            assert v.metrics.sqnr_db == pytest.approx(row.metrics.sqnr_db, rel=1e-9), (
                name,
                row.spec,
            )
            assert v.metrics.overflow == row.metrics.overflow
