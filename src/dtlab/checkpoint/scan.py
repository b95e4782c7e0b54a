"""The pre-cast scan: stream every tensor of a checkpoint, a chunk at a time, and say for each
tensor and target whether it is safe to cast (or to quantize).

Memory stays bounded whatever the checkpoint's size: one chunk of at most ``chunk_bytes``
decoded bytes (float32, or float64 for wide dtypes: F4 widens eightfold, F16 twofold) is in
memory at a time (per worker), and the metrics of a target are sums merged across chunks
(``scan_tensor``). Integer tensors (position ids, masks) are listed but not scanned. The
tensors run in this process, in a pool of processes, or on a Dask cluster
(``distributed``); the report is the same, bit for bit.
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from dtlab.analysis.metrics import by_sqnr
from dtlab.checkpoint.files import embedded_model
from dtlab.checkpoint.handle import Checkpoint, open_checkpoint
from dtlab.checkpoint.prequant.layout import logical_entries, logical_summary
from dtlab.checkpoint.scan_records import (
    FormatSummary,
    Progress,
    ProgressFn,
    ScanReport,
    Status,
    TensorScan,
    Verdict,
)
from dtlab.checkpoint.scan_rules import FailRules, failures, parse_fail_rules
from dtlab.checkpoint.scan_tensor import Targets, check_budget, scan_tensor
from dtlab.defaults import SCAN_BUDGET_BYTES, SCAN_FORMATS, SCAN_SQNR_DB
from dtlab.errors import OptionError
from dtlab.formats import get_format
from dtlab.formats.quantizer_spec import Target

__all__ = [
    "DEFAULT_BUDGET",
    "DEFAULT_FORMATS",
    "DEFAULT_SQNR_DB",
    "FailRules",
    "FormatSummary",
    "Progress",
    "ProgressFn",
    "ScanReport",
    "Status",
    "TensorScan",
    "Verdict",
    "embedded_model",
    "failures",
    "max_workers",
    "parse_fail_rules",
    "scan_checkpoint",
]

DEFAULT_FORMATS = SCAN_FORMATS
DEFAULT_SQNR_DB = SCAN_SQNR_DB  # below this, a tensor "loses too much" in a format
DEFAULT_BUDGET = SCAN_BUDGET_BYTES  # bytes a scan may hold above its baseline, per worker


def max_workers() -> int:
    """The most worker processes a scan starts: this machine's usable cores."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):  # not Linux
        return max(os.cpu_count() or 1, 1)


def scan_checkpoint(
    path: str | Path | None,
    formats: list[Target] | None = None,
    *,
    sqnr_threshold_db: float = DEFAULT_SQNR_DB,
    memory_budget: int = DEFAULT_BUDGET,
    workers: int = 1,
    allow_pickle: bool = False,
    progress: ProgressFn | None = None,
    dask: str | None = None,
) -> ScanReport:
    """Scan every floating-point tensor against each target (default fp16, bf16, fp8): a
    format, cast elementwise, or a quantizer (``formats.quantizer_spec.parse_target``).

    ``dask``: a dask.distributed scheduler address, or ``local:N`` for a LocalCluster of N
    processes (``checkpoint.distributed``); the report is the same, bit for bit."""
    fmts = tuple(formats or [get_format(f) for f in DEFAULT_FORMATS])
    source = str(path) if path is not None else str(embedded_model())
    if workers < 1:
        raise OptionError("workers must be at least 1")
    workers = min(workers, max_workers())  # more processes than cores only add memory
    if not math.isfinite(sqnr_threshold_db):
        raise OptionError(f"the SQNR threshold is a finite number of dB, not {sqnr_threshold_db}")
    if memory_budget < 1 << 20:
        raise OptionError("the memory budget must be at least 1 MiB")
    ckpt = open_checkpoint(source, allow_pickle=allow_pickle)
    # bytes of one decoded chunk (float32, or float64): the scan holds about two copies, and
    # rounding each takes buffers of its own
    chunk = max(memory_budget // 8, 1 << 16)
    entries = logical_entries(ckpt)  # packed weights in place of their parts
    for e in entries:  # a target too large for the budget fails before the scan, not during it
        check_budget(e, fmts, chunk)
    start = time.perf_counter()
    total_bytes = sum(e.nbytes for e in entries)
    results: dict[str, TensorScan] = {}
    done_bytes = done_params = 0

    def report(scan: TensorScan, nbytes: int) -> None:
        nonlocal done_bytes, done_params
        results[scan.name] = scan
        done_bytes += nbytes
        done_params += scan.numel
        if progress is not None:
            progress(
                Progress(
                    tensors_done=len(results),
                    tensors_total=len(entries),
                    bytes_done=done_bytes,
                    bytes_total=total_bytes,
                    params_done=done_params,
                    seconds=time.perf_counter() - start,
                )
            )

    if dask is not None:
        from dtlab.checkpoint.distributed import scan_on_dask

        job = (source, allow_pickle, fmts, sqnr_threshold_db, chunk)
        workers = scan_on_dask(dask, ckpt, entries, job, report)
    elif workers == 1 or len(entries) < 2:
        for e in entries:
            report(scan_tensor(ckpt, e.name, fmts, sqnr_threshold_db, chunk), e.nbytes)
    else:
        setup = (source, allow_pickle)
        with ProcessPoolExecutor(workers, initializer=_worker_setup, initargs=setup) as pool:
            jobs = [(e.name, fmts, sqnr_threshold_db, chunk) for e in entries]
            for e, scan in zip(entries, pool.map(_scan_job, jobs), strict=True):
                report(scan, e.nbytes)
    tensors = tuple(results[e.name] for e in entries)
    return ScanReport(
        source=source,
        formats=fmts,
        sqnr_threshold_db=sqnr_threshold_db,
        tensors=tensors,
        summaries=_summaries(tensors, fmts),
        params=sum(t.numel for t in tensors),
        stored_bytes=total_bytes,
        seconds=time.perf_counter() - start,
        workers=workers,
        chunk_bytes=chunk,
        layout=logical_summary(ckpt),
    )


_worker_ckpt: Checkpoint | None = None  # a worker process's own view of the checkpoint


def _worker_setup(source: str, allow_pickle: bool) -> None:
    global _worker_ckpt
    torch.set_num_threads(1)  # the workers share the cores
    _worker_ckpt = open_checkpoint(source, allow_pickle=allow_pickle)  # once per worker


def _scan_job(job: tuple[str, Targets, float, int]) -> TensorScan:
    name, fmts, threshold, chunk = job
    assert _worker_ckpt is not None, "_worker_setup runs first"
    return scan_tensor(_worker_ckpt, name, fmts, threshold, chunk)


def _summaries(
    tensors: tuple[TensorScan, ...], fmts: tuple[Target, ...]
) -> tuple[FormatSummary, ...]:
    out = []
    for i, f in enumerate(fmts):
        rows = [(t, t.verdicts[i]) for t in tensors if t.verdicts]
        worst = sorted(rows, key=lambda r: by_sqnr(r[1].metrics.sqnr_db, worst_first=True))
        signal = math.fsum(v.signal for _, v in rows)
        noise = math.fsum(v.noise for _, v in rows)
        if noise == 0:
            mean = math.inf if signal > 0 else math.nan
        elif math.isinf(noise):
            mean = -math.inf
        else:
            mean = 10 * math.log10(signal / noise) if signal > 0 else -math.inf
        count = {s: sum(1 for _, v in rows if v.status is s) for s in Status}
        out.append(
            FormatSummary(
                format=f,
                tensors=len(rows),
                safe=count[Status.SAFE],
                overflowing=count[Status.OVERFLOW],
                overflow_values=sum(v.metrics.overflow for _, v in rows),
                lossy=count[Status.LOSSY],
                nan=count[Status.NAN],
                worst=tuple(t.name for t, _ in worst[:5]),
                worst_sqnr_db=worst[0][1].metrics.sqnr_db if worst else math.nan,
                mean_sqnr_db=mean,
            )
        )
    return tuple(out)
