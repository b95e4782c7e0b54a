"""GGUF files as checkpoints: the header read as gguf-py's GGUFReader reads it, the memory
table from it alone, values dequantized exactly as gguf.quants.dequantize gives them, GGUF
tensors as cast/quantize sources, and hostile headers refused in one line, cheaply."""

from __future__ import annotations

import json
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from gguf import GGML_QUANT_SIZES, GGUFReader
from gguf.quants import dequantize
from typer.testing import CliRunner

from dtlab.checkpoint import (
    CheckpointError,
    iter_chunks,
    memory_table,
    open_checkpoint,
    read_tensor,
)
from dtlab.checkpoint.gguf_file import read_gguf_header
from dtlab.cli.app import app
from dtlab.formats.ggml import GGML_TYPES, ggml_type_by_id
from dtlab.formats.quantizer_spec import parse_quantizer
from dtlab.inputs import load_tensor
from gguf_files import (
    gguf_bytes,
    gguf_string,
    kv_u32,
    smollm2_gguf,
    tensor_info,
    write_model,
)
from test_startup import run_probe

runner = CliRunner()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gguf") / "model.gguf"
    write_model(path)
    return path


@pytest.fixture(scope="module")
def smol_reader() -> GGUFReader:
    return GGUFReader(smollm2_gguf())  # about 3 s: once for the module


def test_the_type_table_is_gguf_pys() -> None:
    """Block size and bytes of every type gguf-py knows, from dtlab's struct fields (Q8_1:
    gguf-py counts float32 d and s, 40 bytes; ggml-common.h's block_q8_1 has two halves, 36
    bytes; Q8_1 is an intermediate of dot products and never stored in files)."""
    for qtype, (block, size) in GGML_QUANT_SIZES.items():
        t = ggml_type_by_id(int(qtype))
        assert t is not None and t.name == qtype.name, qtype
        assert (t.block_size, t.type_size) == (block, size), qtype
    assert len(GGML_TYPES) == len(GGML_QUANT_SIZES)


def entries_of(reader: GGUFReader) -> dict[str, tuple[str, tuple[int, ...], int, int, int]]:
    return {
        t.name: (
            t.tensor_type.name,
            tuple(int(d) for d in reversed(t.shape.tolist())),
            int(t.n_elements),
            int(t.n_bytes),
            int(t.data_offset),
        )
        for t in reader.tensors
    }


def test_the_header_reads_as_gguf_reader_reads_it(model: Path) -> None:
    ckpt = open_checkpoint(model)
    mine = {e.name: (e.dtype, e.shape, e.numel, e.nbytes, e.file_range[0]) for e in ckpt.tensors}
    assert mine == entries_of(GGUFReader(model))
    assert {e.dtype for e in ckpt.tensors} == {
        "F32", "F16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q6_K"
    }  # fmt: skip
    meta = dict(read_gguf_header(model).metadata)
    assert meta["general.name"] == "dtlab test" and meta["tokenizer.ggml.tokens"] == "[3 STRING]"


def test_smollm2_counts_equal_gguf_reader(smol_reader: GGUFReader) -> None:
    ckpt = open_checkpoint(smollm2_gguf())
    mine = {e.name: (e.dtype, e.shape, e.numel, e.nbytes, e.file_range[0]) for e in ckpt.tensors}
    assert mine == entries_of(smol_reader)
    table = memory_table(ckpt, ["bf16", "q8_0", "q4_0", "q4_1", "q4_k"])
    assert table.total_params == sum(t.n_elements for t in smol_reader.tensors) == 134_515_008
    assert table.stored_bytes == sum(int(t.n_bytes) for t in smol_reader.tensors) == 96_576_768
    assert dict(table.params_by_dtype) == {"Q4_1": 106_168_320, "Q8_0": 28_311_552, "F32": 35_136}
    by = {t.target: t for t in table.totals}
    # q4_1 of every 2-d tensor: exactly the stored Q4_1 bytes plus token_embd in Q4_1
    assert by["q4_1"].nbytes == 106_168_320 * 5 // 8 + 28_311_552 * 5 // 8 + 35_136 * 4


@pytest.mark.parametrize(
    ("name", "qtype"),
    [
        ("blk.0.attn_q.weight", "Q4_1"),
        ("blk.0.attn_norm.weight", "F32"),
        ("output_norm.weight", "F32"),
    ],
)
def test_smollm2_tensors_equal_gguf_dequantize(
    smol_reader: GGUFReader, name: str, qtype: str
) -> None:
    t = next(t for t in smol_reader.tensors if t.name == name)
    assert t.tensor_type.name == qtype
    want = torch.from_numpy(np.array(dequantize(t.data, t.tensor_type), dtype=np.float32))
    got = read_tensor(open_checkpoint(smollm2_gguf()), name)
    assert got.shape == want.shape and torch.equal(got.view(torch.int32), want.view(torch.int32))


def test_smollm2_embedding_chunks_equal_gguf_dequantize(smol_reader: GGUFReader) -> None:
    t = smol_reader.tensors[0]
    assert t.name == "token_embd.weight" and t.tensor_type.name == "Q8_0"
    chunks = iter_chunks(open_checkpoint(smollm2_gguf()), t.name, 64 << 10, decoded=True)
    first, second = next(chunks), next(chunks)  # 16,384 values each: whole blocks
    want = dequantize(t.data[:58], t.tensor_type).reshape(-1)  # 58 rows of 576
    got = torch.cat([first, second]).numpy()
    assert len(first) == 16_384 and np.array_equal(
        got.view(np.int32), want[: len(got)].view(np.int32)
    )


def test_every_tensor_dequantizes_as_gguf_does_whole_and_in_chunks(model: Path) -> None:
    ckpt = open_checkpoint(model)
    for t in GGUFReader(model).tensors:
        want = np.ascontiguousarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
        whole = read_tensor(ckpt, t.name).float().numpy()
        chunked = torch.cat(list(iter_chunks(ckpt, t.name, 300, decoded=True))).numpy()
        assert np.array_equal(whole.view(np.int32), want.view(np.int32)), t.name
        assert np.array_equal(chunked.view(np.int32), want.reshape(-1).view(np.int32)), t.name


def test_memory_and_scan_of_a_gguf(model: Path) -> None:
    r = runner.invoke(app, ["model", "memory", str(model), "--to", "q8_0,q6_k", "--json"])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)["result"]
    reader = GGUFReader(model)
    assert doc["total_params"] == sum(t.n_elements for t in reader.tensors)
    assert doc["stored_bytes"] == sum(int(t.n_bytes) for t in reader.tensors)
    # 2-d tensors: 8x64 F16, five of 6x96, two k-quants of 3x512; the 1-d norm is kept
    q6k = (8 * 64 + 5 * 6 * 96 + 2 * 3 * 512) // 256 * 210 + 64 * 4 + 8 * 64 // 256 * 0
    rows = {t["target"]: t["nbytes"] for t in doc["totals"]}
    assert rows["q8_0"] == (8 * 64 + 5 * 6 * 96 + 2 * 3 * 512) // 32 * 34 + 64 * 4
    assert rows["q6_k"] == 8 * 210 + 5 * 6 * 210 + 2 * 3 * 2 * 210 + 64 * 4 != q6k  # padded rows
    assert any("stored Q4_K" in a for a in doc["assumptions"])
    r = runner.invoke(app, ["model", "scan", str(model), "--to", "fp16,fp8", "--json"])
    assert r.exit_code == 0, r.stderr
    scan = json.loads(r.stdout)["result"]
    assert scan["params"] == doc["total_params"] and len(scan["tensors"]) == 9
    assert all(t["verdicts"] for t in scan["tensors"])


def test_memory_of_a_gguf_imports_neither_torch_nor_numpy(model: Path) -> None:
    r = run_probe("model", "memory", str(model), "--to", "q4_0,q4_k")
    assert r["code"] == 0 and r["loaded"] == []
    assert "q4_k" in str(r["out"])


def test_gguf_tensors_are_cast_and_quantize_sources(model: Path) -> None:
    spec = f"{model}:blk.0.q4_1.weight"
    loaded = load_tensor(spec)
    assert loaded.tensor.shape == (6, 96) and loaded.files == (model,)
    r = runner.invoke(app, ["quantize", spec, "--as", "q4_1,q4_0", "--json"])
    assert r.exit_code == 0, r.stderr
    rows = {row["spec"]: row for row in json.loads(r.stdout)["result"]["rows"]}
    assert rows["q4_1"]["kind"] == "ggml" and rows["q4_1"]["effective_bits"] == "5"
    assert rows["q4_1"]["metrics"]["max_abs_error"] == 0  # requantizing Q4_1 values is exact
    r = runner.invoke(app, ["cast", f"{model}:blk.0.attn_norm.weight", "--as", "bf16"])
    assert r.exit_code == 0 and "bfloat16" in r.stdout
    r = runner.invoke(app, ["cast", f"{model}:blk.0.q4_1", "--as", "bf16"])
    assert r.exit_code == 2 and "similar: blk.0.q4_1.weight" in r.stderr


def test_ggml_targets_count_exact_bytes() -> None:
    q = parse_quantizer("q4_k")
    assert q.nbytes((4096, 4096)) == 4096 * 16 * 144
    assert q.nbytes((2, 300)) == 2 * 2 * 144  # a row of 300 counted padded to 512
    assert parse_quantizer("Q8_0").json_form()["group_size"] == 32
    r = runner.invoke(app, ["model", "memory", "--to", "q4_0:g64"])
    assert r.exit_code == 2 and "takes no options" in r.stderr
    r = runner.invoke(app, ["quantize", "normal:64", "--as", "q4_k"])
    assert r.exit_code == 2 and "memory targets only" in r.stderr


# ---- hostile headers ------------------------------------------------------------------------

F32_4 = tensor_info("w", [4], 0, 0)
HOSTILE = {
    "bad magic": (gguf_bytes([], [], magic=b"GGUG"), "no GGUF magic"),
    "version 1": (gguf_bytes([], [], version=1), "version 1"),
    "big-endian": (gguf_bytes([], [], version=3 << 24), "big-endian"),
    "absurd tensor count": (gguf_bytes([], [], n_tensors=1 << 62), "tensors claimed"),
    "absurd key count": (gguf_bytes([], [], n_kv=1 << 60), "key-value pairs claimed"),
    "absurd key length": (gguf_bytes([gguf_string("k", 1 << 60)], []), "over the 65,536"),
    "absurd string value": (
        gguf_bytes([gguf_string("k") + struct.pack("<I", 8) + gguf_string("v", 1 << 50)], []),
        "truncated",
    ),
    "absurd array": (
        gguf_bytes([gguf_string("k") + struct.pack("<IIQ", 9, 0, 1 << 40)], []),
        "items of 'k'",
    ),
    "absurd string array": (
        gguf_bytes([gguf_string("k") + struct.pack("<IIQ", 9, 8, 1 << 40)], []),
        "strings of 'k'",
    ),
    "truncated tensor table": (
        gguf_bytes([], [tensor_info("w" * 40, [4], 0, 0), tensor_info("v" * 40, [4], 0, 32)])[
            : 24 + 2 * 69
        ],
        "truncated",
    ),
    "offset past the end": (gguf_bytes([], [tensor_info("w", [4], 0, 1 << 40)]), "ends at byte"),
    "data past the end": (
        gguf_bytes([], [tensor_info("w", [1 << 20], 0, 0)], b"\0" * 16),
        "ends at",
    ),
    "overlap": (
        gguf_bytes([], [F32_4, tensor_info("v", [4], 0, 0)], b"\0" * 32),
        "overlap",
    ),
    "unknown type": (gguf_bytes([], [tensor_info("w", [4], 99, 0)], b"\0" * 32), "type 99"),
    "rank 5": (gguf_bytes([], [tensor_info("w", [1] * 5, 0, 0)], b"\0" * 32), "5 dimensions"),
    "dims overflow": (
        gguf_bytes([], [tensor_info("w", [1 << 32, 1 << 32], 0, 0)], b"\0" * 32),
        "overflow int64",
    ),
    "misaligned": (gguf_bytes([], [tensor_info("w", [4], 0, 4)], b"\0" * 64), "multiple of 32"),
    "partial block": (gguf_bytes([], [tensor_info("w", [33], 2, 0)], b"\0" * 64), "whole Q4_0"),
    "duplicate tensor": (
        gguf_bytes([], [F32_4, tensor_info("w", [4], 0, 32)], b"\0" * 64),
        "duplicate",
    ),
    "duplicate key": (gguf_bytes([kv_u32("a", 1), kv_u32("a", 2)], []), "duplicate key"),
    "bad alignment": (gguf_bytes([kv_u32("general.alignment", 24)], []), "power of two"),
    "bad name": (gguf_bytes([], [tensor_info(b"\xff\xfe", [4], 0, 0)], b"\0" * 32), "UTF-8"),
    "bad value type": (gguf_bytes([gguf_string("k") + struct.pack("<I", 13)], []), "type 13"),
    "short": (b"GGUF\3\0\0\0", "shorter than a GGUF header"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_headers_are_refused_in_one_line_cheaply(tmp_path: Path, case: str) -> None:
    content, expect = HOSTILE[case]
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError) as info:
            open_checkpoint(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert expect in message and message.startswith(str(path)) and "\n" not in message, message
    assert peak < 1 << 20, peak  # counts are checked against the bytes left before any read
    r = runner.invoke(app, ["model", "memory", str(path)])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and expect in r.stderr, r.stderr


def test_a_file_that_shrank_after_opening_is_reported(model: Path, tmp_path: Path) -> None:
    copy = tmp_path / "m.gguf"
    copy.write_bytes(model.read_bytes())
    ckpt = open_checkpoint(copy)
    with open(copy, "r+b") as f:
        f.truncate(ckpt.tensors[-1].file_range[0])
    with pytest.raises(CheckpointError, match="changed since it was opened"):
        read_tensor(ckpt, ckpt.tensors[-1].name)
