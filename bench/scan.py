"""Pre-cast scan of a synthetic multi-GB checkpoint: dtlab against the naive approach.

The checkpoint (written once, then reused): SHARDS shards with an index, mixed shapes and
dtypes (F32, BF16, F16), a few planted outliers beyond fp16's range and a few NaNs.

  dtlab   `dtlab model scan DIR --to fp16,bf16,fp8` in a fresh process (median of 3)
  naive   in a fresh process: safetensors.torch.load_file per shard, then for each tensor and
          format .to(dtype).float() and separate torch operations for absmax, overflow,
          NaN, SQNR and relative error

Prints parameters/s and peak resident memory (ru_maxrss of each child process), and the
ratios. Run: make bench, or .venv/bin/python bench/scan.py [--gb 2.2] [--dir PATH]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

SHARDS = 4
FORMATS = "fp16,bf16,fp8"

NAIVE = r"""
import json, sys, torch
from pathlib import Path
from safetensors.torch import load_file
folder = Path(sys.argv[1])
index = json.loads((folder / "model.safetensors.index.json").read_text())
params = 0
for shard in sorted(set(index["weight_map"].values())):
    tensors = load_file(str(folder / shard))
    for name, t in tensors.items():
        x = t.float()
        params += x.numel()
        absmax = x.abs().max()
        for dt in (torch.float16, torch.bfloat16, torch.float8_e4m3fn):
            q = x.to(dt).float()
            over = ((x.abs() > torch.finfo(dt).max) & x.isfinite()).sum()
            nan = x.isnan().sum()
            err = (q.double() - x.double())
            sqnr = 10 * torch.log10(x.double().square().nansum() / err.square().nansum())
            rel = (err.abs() / x.double().abs()).nanmean()
    del tensors
print(params)
"""


def build(folder: Path, gb: float) -> int:
    """Write the synthetic checkpoint (unless it is there already); returns its parameters."""
    marker = folder / "done.json"
    if marker.exists() and json.loads(marker.read_text()).get("gb") == gb:
        return int(json.loads(marker.read_text())["params"])
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    per_shard = int(gb * 1e9 / SHARDS)
    weight_map: dict[str, str] = {}
    params = 0
    dtypes = [torch.float32, torch.bfloat16, torch.float16]
    for s in range(SHARDS):
        tensors: dict[str, torch.Tensor] = {}
        used, i = 0, 0
        while used < per_shard:
            dt = dtypes[(s + i) % 3]
            rows = [4096, 2048, 11008, 1024][i % 4]
            cols = [4096, 4096, 4096, 512][i % 4]
            t = (torch.randn(rows, cols, generator=g) * 0.02).to(dt)
            if i % 7 == 3:
                t.view(-1)[:: t.numel() // 3] = 70000.0 if dt != torch.float16 else 60000.0
            if i % 11 == 5:
                t.view(-1)[:5] = float("nan")
            name = f"layers.{s}.{i}.weight"
            tensors[name] = t
            tensors[f"layers.{s}.{i}.bias"] = torch.randn(rows, generator=g).to(dt)
            used += t.numel() * t.element_size()
            params += t.numel() + rows
            i += 1
        shard = f"model-{s + 1:05d}-of-{SHARDS:05d}.safetensors"
        save_file(tensors, str(folder / shard))
        weight_map.update({n: shard for n in tensors})
        del tensors
    index = {"metadata": {}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    marker.write_text(json.dumps({"gb": gb, "params": params}))
    return params


def run(cmd: list[str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in bytes, and stdout of one child process."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)  # files: no pipe to fill
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) not in (0, 1):
            raise SystemExit(f"{cmd[0]} failed: {err.read()[-2000:]}")
        return seconds, usage.ru_maxrss * 1024, out.read()


def main() -> None:
    args = sys.argv[1:]
    gb = float(args[args.index("--gb") + 1]) if "--gb" in args else 2.2
    folder = (
        Path(args[args.index("--dir") + 1]) if "--dir" in args else Path("/tmp/dtlab-bench-scan")
    )
    quick = "--quick" in args
    if quick:
        gb, folder = 0.2, folder.with_name(folder.name + "-quick")
    params = build(folder, gb)
    size = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    print(f"checkpoint: {folder}, {SHARDS} shards, {size / 1e9:.2f} GB, {params:,} parameters")
    bindir = Path(sys.executable).parent
    _, base_rss, _ = run([sys.executable, "-c", "import torch, dtlab.checkpoint"])
    # dtlab three times (median time, largest peak): one run is seconds, and this machine
    # drifts; the naive approach once (minutes)
    runs = [run([str(bindir / "dtlab"), "model", "scan", str(folder), "--to", FORMATS, "--json"])
            for _ in range(3)]  # fmt: skip
    d_t = sorted(r[0] for r in runs)[1]
    d_rss = max(r[1] for r in runs)
    n_t, n_rss, _ = run([sys.executable, "-c", NAIVE, str(folder)])
    print(f"process baseline (python + torch imported): peak RSS {base_rss / 2**20:,.0f} MiB")
    print(f"{'':8} {'seconds':>9} {'M params/s':>11} {'peak RSS MiB':>13} {'above baseline':>15}")
    for label, t, rss in (("dtlab", d_t, d_rss), ("naive", n_t, n_rss)):
        print(f"{label:8} {t:9.1f} {params / t / 1e6:11.1f} {rss / 2**20:13,.0f} "
              f"{(rss - base_rss) / 2**20:15,.0f}")  # fmt: skip
    print(f"\nthroughput: dtlab {n_t / d_t:.1f}× the naive approach; peak memory "
          f"{d_rss / n_rss:.2f}× the naive approach's ({(d_rss - base_rss) / 2**20:,.0f} MiB "
          f"above baseline, budget 512 MiB)")  # fmt: skip


if __name__ == "__main__":
    main()
