"""Pre-quantized checkpoints: dtlab's dequantization against the reference code in one run.

  mxfp4  2^24 values of gpt-oss blocks: dtlab (read from the safetensors file, in pieces)
         against transformers' convert_moe_packed_tensors (on tensors already in memory);
         the results are compared bit for bit first
  fp8    a 4096 x 4096 DeepSeek-V3 weight with 128 x 128 block scales: dtlab against
         transformers' finegrained_fp8._dequantize_fp8_weight (which rounds the scale to bf16
         first, so it differs in the last bit for some values: counted, not hidden)
  scan   `dtlab model scan --to fp16,bf16,fp8` of a synthetic GPTQ 4-bit g128 checkpoint of
         2^24 logical parameters, against the same scan of those weights stored as plain fp16,
         each in a fresh process: parameters/s and peak resident memory

Run: .venv/bin/python bench/prequant.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

from _timing import median_time
from dtlab.checkpoint import open_checkpoint
from dtlab.checkpoint.prequant import layout_of
from dtlab.checkpoint.prequant.dequant import packed_chunks, read_packed

N = 1 << 24
CHILD = r"""
import json, resource, sys, time
from dtlab.checkpoint.scan import scan_checkpoint
from dtlab.formats import get_format
start = time.perf_counter()
r = scan_checkpoint(sys.argv[1], [get_format(f) for f in ("fp16", "bf16", "fp8")])
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"params": r.params, "seconds": seconds, "rss_mib": rss}))
"""


def drain(ckpt: object, w: object) -> int:
    return sum(p.numel() for p in packed_chunks(ckpt, w, 64 << 20))  # type: ignore[arg-type]


def write(folder: Path, tensors: dict[str, torch.Tensor], qc: dict[str, object] | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "model.safetensors"))
    config = {"quantization_config": qc} if qc else {}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def bench_mxfp4(root: Path) -> None:
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors

    g = torch.Generator().manual_seed(0)
    blocks = torch.randint(0, 256, (8, 2048, 32, 16), generator=g, dtype=torch.uint8)
    scales = torch.randint(110, 140, (8, 2048, 32), generator=g, dtype=torch.uint8)
    folder = write(
        root / "mx",
        {"e.down_proj_blocks": blocks, "e.down_proj_scales": scales},
        {"quant_method": "mxfp4"},
    )
    ckpt = open_checkpoint(folder)
    w = layout_of(ckpt).weight("e.down_proj")
    assert w is not None
    ref = convert_moe_packed_tensors(blocks, scales)
    same = torch.equal(
        read_packed(ckpt, w).transpose(1, 2).view(torch.int16), ref.view(torch.int16)
    )
    ours = median_time(lambda: drain(ckpt, w), 5)
    theirs = median_time(lambda: convert_moe_packed_tensors(blocks, scales), 5)
    print(
        f"mxfp4 {N:,} values: dtlab {N / ours / 1e6:,.0f} Mval/s (from the file), transformers "
        f"{N / theirs / 1e6:,.0f} Mval/s (in memory): ratio {theirs / ours:.2f}; "
        f"bit-identical: {same}"
    )


def bench_fp8(root: Path) -> None:
    from transformers.integrations.finegrained_fp8 import _dequantize_fp8_weight

    g = torch.Generator().manual_seed(1)
    x = torch.randn(4096, 4096, generator=g)
    s = x.abs().reshape(32, 128, 32, 128).amax(dim=(1, 3)) / 448
    y = (x / s.repeat_interleave(128, 0).repeat_interleave(128, 1)).to(torch.float8_e4m3fn)
    folder = write(
        root / "fp8",
        {"l.weight": y, "l.weight_scale_inv": s},
        {"quant_method": "fp8", "weight_block_size": [128, 128]},
    )
    ckpt = open_checkpoint(folder)
    w = layout_of(ckpt).weight("l.weight")
    assert w is not None
    ref = _dequantize_fp8_weight(y, s, [128, 128], torch.bfloat16)
    differ = int((read_packed(ckpt, w).view(torch.int16) != ref.view(torch.int16)).sum())
    ours = median_time(lambda: drain(ckpt, w), 5)
    theirs = median_time(lambda: _dequantize_fp8_weight(y, s, [128, 128], torch.bfloat16), 5)
    n = y.numel()
    print(
        f"fp8 128x128 blocks, {n:,} values: dtlab {n / ours / 1e6:,.0f} Mval/s (from the "
        f"file), transformers {n / theirs / 1e6:,.0f} Mval/s (in memory): ratio "
        f"{theirs / ours:.2f}; {differ:,} values differ in the last bit (transformers rounds "
        "the scale to bf16 first; dtlab follows DeepSeek's fp32 product)"
    )


def as_int32(v: torch.Tensor) -> torch.Tensor:
    """Unsigned 32-bit patterns held in int64, as the int32 with the same bits."""
    return ((v + 2**31) % 2**32 - 2**31).to(torch.int32)


def gptq_tensors(layers: int, size: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Packed 4-bit g128 layers (vectorised AutoGPTQ packing) and the fp16 weights they hold."""
    g = torch.Generator().manual_seed(2)
    packed, plain = {}, {}
    shifts = torch.arange(0, 32, 4, dtype=torch.int64)
    for i in range(layers):
        q = torch.randint(0, 16, (size, size), generator=g, dtype=torch.int64)  # [in, out]
        zeros = torch.randint(1, 16, (size // 128, size), generator=g, dtype=torch.int64)
        scales = (torch.rand(size // 128, size, generator=g) * 0.01 + 1e-3).half()
        qweight = (q.view(size // 8, 8, size) << shifts.view(1, 8, 1)).sum(1)
        qzeros = ((zeros - 1).view(size // 128, size // 8, 8) << shifts).sum(2)
        p = f"model.layers.{i}.mlp"
        packed.update(
            {
                f"{p}.qweight": as_int32(qweight),
                f"{p}.qzeros": as_int32(qzeros),
                f"{p}.scales": scales,
                f"{p}.g_idx": torch.arange(size, dtype=torch.int32) // 128,
            }
        )
        rows = torch.arange(size) // 128
        plain[f"{p}.weight"] = (scales[rows] * (q - zeros[rows]).to(torch.int16)).T.contiguous()
    return packed, plain


def scan(folder: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder)], capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def bench_scan(root: Path) -> None:
    packed, plain = gptq_tensors(16, 1024)
    qc = {"quant_method": "gptq", "bits": 4, "group_size": 128, "sym": False, "desc_act": False}
    gptq = write(root / "gptq", packed, qc)
    fp16 = write(root / "fp16", plain, None)
    runs = [(scan(gptq), scan(fp16)) for _ in range(3)]
    a = sorted(runs, key=lambda r: r[0]["seconds"])[1][0]
    b = sorted(runs, key=lambda r: r[1]["seconds"])[1][1]
    rate_a, rate_b = a["params"] / a["seconds"] / 1e6, b["params"] / b["seconds"] / 1e6
    print(
        f"scan, {int(a['params']):,} parameters: GPTQ 4-bit g128 {rate_a:.1f} M params/s, "
        f"peak {a['rss_mib']:.0f} MiB; the same weights as fp16 {rate_b:.1f} M params/s, "
        f"peak {b['rss_mib']:.0f} MiB "
        f"(dequantizing costs {rate_b / rate_a:.2f}x); "
        "medians of 3 fresh processes"
    )


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bench_mxfp4(root)
        bench_fp8(root)
        bench_scan(root)


if __name__ == "__main__":
    main()
