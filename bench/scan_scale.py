"""The scan's scaling, measured: one checkpoint (bench/scan.py's builder) scanned in one run by
`dtlab model scan` with --workers 1, --workers 2, on a 2-worker LocalCluster started by the
command (--dask local:2), and on one started beforehand (--dask tcp://..., so that the cluster's
start is not counted); then the projected wall time of DeepSeek-V3 and Llama 3.1 405B.

Each command runs in a fresh process; the JSON reports must agree (timings aside), which the
script checks. Prints seconds, M params/s, the Dask overhead against --workers 2 (per task
and in all), and the projection with its assumptions.

Run: .venv/bin/python bench/scan_scale.py [--gb 2.2] [--dir PATH] [--quick] [--read-gbps 1.0]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from scan import SHARDS, build  # bench/scan.py: the same synthetic checkpoint

FORMATS = "fp16,bf16,fp8"
RUNS = 3
CORES = 16  # per machine, in the projection
MODELS = (("DeepSeek-V3 (FP8)", 671e9, 1), ("Llama 3.1 405B (BF16)", 405e9, 2))  # bytes/param


def scan(folder: Path, *extra: str) -> tuple[float, dict[str, object]]:
    cmd = [str(Path(sys.executable).parent / "dtlab"), "model", "scan", str(folder), "--to",
           FORMATS, "--json", *extra]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr[-2000:]}")
    result: dict[str, object] = json.loads(done.stdout)["result"]
    return seconds, result


def median_scan(folder: Path, extra: list[str]) -> tuple[float, float, dict[str, object]]:
    """Median wall seconds, median scan seconds (the report's own), and one report."""
    runs = [scan(folder, *extra) for _ in range(RUNS)]
    walls = sorted(r[0] for r in runs)
    inner = sorted(float(str(r[1]["seconds"])) for r in runs)
    return walls[RUNS // 2], inner[RUNS // 2], runs[0][1]


def _task_overhead(client: Any, distributed: Any, n: int = 200) -> float:
    """Seconds per task of Dask itself: n tasks that do nothing, submitted and gathered."""
    start = time.perf_counter()
    futures = [client.submit(_nothing, i, pure=False) for i in range(n)]
    distributed.wait(futures)
    return (time.perf_counter() - start) / n


def _nothing(i: int) -> int:
    return i


def same(a: dict[str, object], b: dict[str, object]) -> bool:
    drop = ("seconds", "workers")
    return {k: v for k, v in a.items() if k not in drop} == {
        k: v for k, v in b.items() if k not in drop
    }


def main() -> None:
    args = sys.argv[1:]
    gb = float(args[args.index("--gb") + 1]) if "--gb" in args else 2.2
    read_gbps = float(args[args.index("--read-gbps") + 1]) if "--read-gbps" in args else 1.0
    folder = (
        Path(args[args.index("--dir") + 1]) if "--dir" in args else Path("/tmp/dtlab-bench-scan")
    )
    if "--quick" in args:
        gb, folder = 0.2, folder.with_name(folder.name + "-quick")
    params = build(folder, gb)
    size = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    print(f"checkpoint: {folder}, {SHARDS} shards, {size / 1e9:.2f} GB, {params:,} parameters")
    import distributed

    from dtlab.checkpoint import open_checkpoint
    from dtlab.checkpoint.distributed import plan
    from dtlab.defaults import SCAN_BUDGET_BYTES

    tasks = len(plan(open_checkpoint(folder), open_checkpoint(folder).stored,
                     SCAN_BUDGET_BYTES // 8))  # fmt: skip
    rows: list[tuple[str, float, float, dict[str, object]]] = []
    configs = [("--workers 1", ["--workers", "1"]), ("--workers 2", ["--workers", "2"]),
               ("--dask local:2", ["--dask", "local:2"])]  # fmt: skip
    for label, extra in configs:
        rows.append((label, *median_scan(folder, extra)))
    started = time.perf_counter()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:  # fmt: skip
        cluster_start = time.perf_counter() - started
        with distributed.Client(cluster) as client:  # workers import torch and dtlab first
            client.run(_warm)
            per_task = _task_overhead(client, distributed)
        warm = ["--dask", cluster.scheduler_address]
        rows.append(("--dask tcp (warm)", *median_scan(folder, warm)))
    base = rows[0][3]
    print(f"median of {RUNS} runs each; 'scan s' is the report's own seconds (no process start)")
    print(f"{'':22} {'wall s':>7} {'scan s':>7} {'M params/s':>11} {'same JSON':>10}")
    for label, wall, t, result in rows:
        print(f"{label:22} {wall:7.1f} {t:7.1f} {params / t / 1e6:11.1f} "
              f"{same(base, result)!s:>10}")  # fmt: skip
    w2, dask_local, dask_tcp = rows[1][2], rows[2][2], rows[3][2]
    print(f"\nDask against --workers 2 (scan seconds): {dask_local / w2:.2f}x with the cluster's "
          f"start, {dask_tcp / w2:.2f}x on a running, warm cluster ({tasks} tasks); a "
          f"LocalCluster of 2 took {cluster_start:.1f} s to start; Dask's overhead per task "
          f"(200 empty tasks on the warm cluster): {per_task * 1e3:.1f} ms")  # fmt: skip
    per_core = params / rows[0][2]  # the scan alone, in one process
    print(f"per-core throughput (--workers 1): {per_core / 1e6:.1f} M params/s; read speed "
          f"assumed {read_gbps:g} GB/s per machine; {CORES} cores per machine; one task per "
          "~5 GB shard, Dask's per-task overhead as measured")  # fmt: skip
    print(f"\n{'projected wall time':24}" + "".join(f"{m:>14}" for m in ("1 machine", "8", "64")))
    for name, n, nbytes in MODELS:
        cells = []
        for machines in (1, 8, 64):
            compute = n / (per_core * CORES * machines)
            read = n * nbytes / (read_gbps * 1e9 * machines)
            shards = n * nbytes / 5e9  # tasks: a few per shard at most, overhead stays small
            overhead = per_task * shards / (CORES * machines)
            cells.append(_hms(max(compute, read) + overhead))
        print(f"{name:24}" + "".join(f"{c:>14}" for c in cells))


def _warm() -> None:
    import dtlab.checkpoint.scan  # noqa: F401 - imported for its cost, before the timing


def _hms(seconds: float) -> str:
    h, rest = divmod(round(seconds), 3600)
    return f"{h} h {rest // 60:02d} min" if h else f"{rest // 60} min {rest % 60:02d} s"


if __name__ == "__main__":
    main()
