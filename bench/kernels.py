"""Throughput of dtlab.quantize against the memory-speed ceiling and the reference libraries.

2^24 float32 values from N(0, 10), fake-quantized to every catalogue format of 16 bits or
fewer. All figures come from this one run (the machine drifts; compare within a run only):
median of REPEATS timings, in Mvalues/s.

  copy      out.copy_(x) into a preallocated float32 tensor: the memory-speed ceiling
  dtlab     quantize(x, fmt, out=out)             (the C kernel when built)
  %copy     dtlab's speed as a share of the copy's, the two timed alternately
  %clone    quantize(x, fmt) returning a new tensor, as a share of x.clone() (the allocation
            and first touch of a new tensor that any new result needs)
  torch     x.to(dtype).float(), where torch has the dtype
  ml_dtypes x.astype(dtype).astype(float32), where ml_dtypes has it
  gfloat    gfloat.round_ndarray on 2^16 values (it is slow), where gfloat has the format
  µs/call   quantize on a 4096-element tensor, per call

Run: make bench, or .venv/bin/python bench/kernels.py [--quick]
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable

import numpy as np
import torch

from _timing import alternating, median_time
from dtlab.formats import NUMPY_NAMES, TORCH_NAMES, formats
from dtlab.kernels import has_c_kernel, quantize

N = 1 << 24
REPEATS = 7
GFLOAT_N = 1 << 16


def against_copy(fn: Callable[[], object], copy: Callable[[], object]) -> tuple[float, float]:
    """Median time of fn and median of (copy time / fn time), timed alternately."""
    times, copies = alternating(fn, copy, REPEATS)
    ratios = [c / t for c, t in zip(copies, times, strict=True)]
    return statistics.median(times), statistics.median(ratios)


def rate(n: int, seconds: float) -> float:
    return n / seconds / 1e6


def gfloat_formats() -> dict[str, object]:
    try:
        import gfloat.formats as gf
    except ImportError:
        return {}
    return {
        "bfloat16": gf.format_info_bfloat16,
        "float16": gf.format_info_binary16,
        "float8_e4m3fn": gf.format_info_ocp_e4m3,
        "float8_e5m2": gf.format_info_ocp_e5m2,
        "float6_e2m3fn": gf.format_info_ocp_e2m3,
        "float6_e3m2fn": gf.format_info_ocp_e3m2,
        "float4_e2m1fn": gf.format_info_ocp_e2m1,
        "float8_e8m0fnu": gf.format_info_ocp_e8m0,
    }


def main() -> None:
    quick = "--quick" in sys.argv
    n = N >> 4 if quick else N
    torch.manual_seed(0)
    x = torch.randn(n) * 10
    out = torch.empty_like(x)
    xn = x.numpy()
    small = torch.randn(4096) * 10
    small_out = torch.empty_like(small)
    gvals = x[:GFLOAT_N].double().numpy()
    gfs = gfloat_formats()
    import ml_dtypes

    copy = rate(n, median_time(lambda: out.copy_(x)))
    clone = rate(n, median_time(lambda: x.clone()))
    print(
        f"dtlab kernels benchmark: {n:,} float32 values from N(0, 10); "
        f"C kernel: {has_c_kernel()}; torch threads: {torch.get_num_threads()}"
    )
    print(f"copy into a preallocated tensor: {copy:,.0f} Mval/s; x.clone(): {clone:,.0f} Mval/s\n")
    head = (f"{'format':20} {'dtlab':>7} {'%copy':>6} {'%clone':>6} {'torch':>7} {'×torch':>7} "
            f"{'ml_dt':>7} {'×ml_dt':>7} {'gfloat':>7} {'×gfloat':>8} {'µs/call':>8}")  # fmt: skip
    print(head)
    print("-" * len(head))
    worst = 1e9
    fmts = [f for f in formats() if f.bits <= 16]
    for fmt in fmts:
        t, share = against_copy(lambda f=fmt: quantize(x, f, out=out), lambda: out.copy_(x))
        d = rate(n, t)
        _, new_share = against_copy(lambda f=fmt: quantize(x, f), lambda: x.clone())
        worst = min(worst, share)
        cells = [f"{fmt.name:20}", f"{d:7.0f}", f"{100 * share:5.0f}%", f"{100 * new_share:5.0f}%"]
        tname = TORCH_NAMES.get(fmt.name)
        tdt = getattr(torch, tname, None) if tname and fmt.bits >= 8 else None
        if tdt is not None and tname != "float4_e2m1fn_x2":
            t = rate(n, median_time(lambda dt=tdt: x.to(dt).float()))
            cells += [f"{t:7.0f}", f"{d / t:6.1f}×"]
        else:
            cells += [f"{'—':>7}", f"{'':>7}"]
        mname = NUMPY_NAMES.get(fmt.name, "")
        if mname.startswith("ml_dtypes.") or (fmt.name == "float16"):
            mdt = getattr(ml_dtypes, mname.split(".")[1]) if "ml_dtypes" in mname else np.float16
            with np.errstate(all="ignore"):
                m = rate(n, median_time(lambda dt=mdt: xn.astype(dt).astype(np.float32), 3))
            cells += [f"{m:7.0f}", f"{d / m:6.1f}×"]
        else:
            cells += [f"{'—':>7}", f"{'':>7}"]
        if fmt.name in gfs:
            from gfloat import RoundMode, round_ndarray

            fi = gfs[fmt.name]

            def g(fi: object = fi) -> object:
                with np.errstate(all="ignore"):
                    return round_ndarray(fi, gvals, RoundMode.TiesToEven, sat=True)

            gr = rate(GFLOAT_N, median_time(g, 3))
            cells += [f"{gr:7.1f}", f"{d / gr:7.0f}×"]
        else:
            cells += [f"{'—':>7}", f"{'':>8}"]
        per_call = median_time(lambda f=fmt: quantize(small, f, out=small_out), 201) * 1e6
        cells.append(f"{per_call:8.1f}")
        print(" ".join(cells))
    print(
        f"\nslowest format at {100 * worst:.0f}% of the copy ceiling (median of alternating runs)"
    )
    if torch.cuda.is_available():
        cuda_section(n)


def cuda_section(n: int) -> None:
    """On a GPU: the pure-torch path against torch's native casts and a device copy."""

    def sync_time(fn: Callable[[], object]) -> float:
        def run() -> None:
            fn()
            torch.cuda.synchronize()

        return median_time(run)

    x = (torch.randn(n) * 10).cuda()
    out = torch.empty_like(x)
    copy = rate(n, sync_time(lambda: out.copy_(x)))
    print(f"\nCUDA ({torch.cuda.get_device_name()}): copy {copy:,.0f} Mval/s")
    for name, dt in [("bf16", torch.bfloat16), ("fp16", torch.float16),
                     ("fp8", torch.float8_e4m3fn), ("e5m2", torch.float8_e5m2)]:  # fmt: skip
        d = rate(n, sync_time(lambda f=name: quantize(x, f, out=out)))
        t = rate(n, sync_time(lambda dt=dt: x.to(dt).float()))
        print(f"{name:6} dtlab {d:9,.0f}  torch round trip {t:9,.0f}  ratio {d / t:5.2f}")


if __name__ == "__main__":
    main()
