"""Error metrics for 2^24 values against 8 formats: dtlab's fused pass against the naive way.

  naive   cast with torch (or ml_dtypes where torch lacks the dtype), then every metric as
          its own torch operation over float64 copies: a dozen passes over memory
  dtlab   dtlab.analysis.elementwise.format_metrics: one pass, nothing written
  copy    out.copy_(x): one read and one write of the input, the memory-speed unit

Prints Mvalues/s per format, the speed-up over naive, and dtlab's time in copies.
Run: make bench, or .venv/bin/python bench/analysis.py [--quick]
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable

import numpy as np
import torch

from _timing import alternating, median_time
from dtlab.analysis.elementwise import format_metrics

N = 1 << 24
FORMATS = [
    ("bfloat16", torch.bfloat16, None),
    ("float16", torch.float16, None),
    ("float8_e4m3fn", torch.float8_e4m3fn, None),
    ("float8_e5m2", torch.float8_e5m2, None),
    ("float8_e4m3fnuz", torch.float8_e4m3fnuz, None),
    ("float6_e2m3fn", None, "float6_e2m3fn"),
    ("float4_e2m1fn", None, "float4_e2m1fn"),
    ("int8", torch.int8, None),
]


def alternate(fn: Callable[[], object], copy: Callable[[], object]) -> tuple[float, ...]:
    """Median and best times of fn and of a copy, timed alternately: 11 turns, since a
    shared machine's speed drifts by tens of percent within a run."""
    ts, cs = alternating(fn, copy, 11)
    return statistics.median(ts), statistics.median(cs), min(ts), min(cs)


def naive(x: torch.Tensor, tdt: torch.dtype | None, mdt: str | None) -> dict[str, float]:
    if tdt is not None:
        q = x.round().clamp(-128, 127) if tdt == torch.int8 else x.to(tdt).float()
    else:
        import ml_dtypes

        with np.errstate(all="ignore"):
            q = torch.from_numpy(x.numpy().astype(getattr(ml_dtypes, mdt)).astype(np.float32))
    xd, qd = x.double(), q.double()
    err = (qd - xd).abs()
    nz = xd != 0
    rel = err[nz] / xd[nz].abs()
    return {
        "max_abs": float(err.max()),
        "mean_abs": float(err.mean()),
        "rmse": float(err.square().mean().sqrt()),
        "max_rel": float(rel.max()),
        "mean_rel": float(rel.mean()),
        "sqnr": float(10 * torch.log10(xd.square().sum() / err.square().sum())),
        "cos": float(torch.nn.functional.cosine_similarity(xd, qd, dim=0)),
        "underflow": float(((xd != 0) & (qd == 0)).sum()),
        "nonfinite": float((~qd.isfinite()).sum()),
    }


def main() -> None:
    n = N >> 4 if "--quick" in sys.argv else N
    torch.manual_seed(0)
    x = torch.randn(n) * 10
    out = torch.empty_like(x)
    copy = median_time(lambda: out.copy_(x), 5)
    threads = torch.get_num_threads()
    print(f"metrics benchmark: {n:,} float32 values from N(0, 10); torch threads {threads}")
    print(f"copy: {copy * 1e3:.1f} ms ({n / copy / 1e6:,.0f} Mval/s)\n")
    print("copies: dtlab's time over the copy's, medians of 11 turns (best of them after /)\n")
    # every dtlab-and-copy timing first, then the naive runs: their gigabytes of float64
    # temporaries leave the kernel reclaiming memory for a while, which slows whatever runs
    # next on two cores (the compute-bound pass more than the copy)
    timed = {
        name: alternate(lambda name=name: format_metrics(x, name), lambda: out.copy_(x))
        for name, _, _ in FORMATS
    }
    print(f"{'format':18} {'dtlab Mval/s':>13} {'naive Mval/s':>13} {'speed-up':>9} {'copies':>13}")
    worst_speedup, worst_copies = 1e9, 0.0
    for name, tdt, mdt in FORMATS:
        d, copy, d_best, copy_best = timed[name]
        v = median_time(lambda tdt=tdt, mdt=mdt: naive(x, tdt, mdt), 3)
        worst_speedup = min(worst_speedup, v / d)
        worst_copies = max(worst_copies, d / copy)
        copies = f"{d / copy:.2f}× / {d_best / copy_best:.2f}×"
        print(f"{name:18} {n / d / 1e6:13,.0f} {n / v / 1e6:13,.0f} {v / d:8.1f}× {copies:>13}")
    print(f"\nworst speed-up {worst_speedup:.1f}×; slowest format takes {worst_copies:.2f} copies")


if __name__ == "__main__":
    main()
