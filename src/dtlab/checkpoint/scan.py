"""The pre-cast scan: stream every tensor of a checkpoint, a chunk at a time, and say for each
tensor and target format whether it is safe to cast.

Memory stays bounded whatever the checkpoint's size: one chunk of at most ``chunk_bytes``
decoded bytes (float32, or float64 for wide dtypes: F4 widens eightfold, F16 twofold) is in
memory at a time (per worker), and the metrics of a format are sums merged across chunks.
Integer tensors (position ids, masks) are listed but not scanned.
"""

from __future__ import annotations

import enum
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from dtlab.analysis.elementwise import format_partial
from dtlab.analysis.metrics import ErrorMetrics, Partial, by_sqnr
from dtlab.checkpoint.files import embedded_model
from dtlab.checkpoint.handle import Checkpoint, open_checkpoint
from dtlab.checkpoint.header import DTYPES, TensorEntry
from dtlab.checkpoint.reader import iter_chunks
from dtlab.defaults import SCAN_BUDGET_BYTES, SCAN_FORMATS, SCAN_SQNR_DB
from dtlab.errors import OptionError, OptionValueError
from dtlab.formats import Format, get_format

DEFAULT_FORMATS = SCAN_FORMATS
DEFAULT_SQNR_DB = SCAN_SQNR_DB  # below this, a tensor "loses too much" in a format
DEFAULT_BUDGET = SCAN_BUDGET_BYTES  # bytes a scan may hold above its baseline, per worker


class Status(enum.Enum):
    SAFE = "safe"
    OVERFLOW = "overflow"
    NAN = "nan"  # NaN or inf already in the weights
    LOSSY = "lossy"  # SQNR below the threshold


@dataclass(frozen=True)
class Verdict:
    format: Format
    status: Status
    message: str
    metrics: ErrorMetrics
    signal: float  # sum of x^2 over the finite pairs: what FormatSummary's SQNR adds up
    noise: float  # sum of (q - x)^2 over them


@dataclass(frozen=True)
class TensorScan:
    name: str
    dtype: str
    shape: tuple[int, ...]
    numel: int
    absmax: float
    nan: int
    inf: int
    verdicts: tuple[Verdict, ...]  # empty for tensors not scanned (integers)


@dataclass(frozen=True)
class FormatSummary:
    format: Format
    tensors: int
    safe: int
    overflowing: int  # tensors with at least one overflowing value
    overflow_values: int
    lossy: int
    nan: int
    worst: tuple[str, ...]  # tensor names, lowest SQNR first (at most 5)
    worst_sqnr_db: float
    mean_sqnr_db: float  # over parameters: 10 log10(sum of signal / sum of noise)


@dataclass(frozen=True)
class ScanReport:
    source: str
    formats: tuple[Format, ...]
    sqnr_threshold_db: float
    tensors: tuple[TensorScan, ...]
    summaries: tuple[FormatSummary, ...]
    params: int
    stored_bytes: int
    seconds: float
    workers: int
    chunk_bytes: int


@dataclass(frozen=True)
class Progress:
    tensors_done: int
    tensors_total: int
    bytes_done: int
    bytes_total: int
    params_done: int
    seconds: float


ProgressFn = Callable[[Progress], None]


def max_workers() -> int:
    """The most worker processes a scan starts: this machine's usable cores."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):  # not Linux
        return max(os.cpu_count() or 1, 1)


def scan_checkpoint(
    path: str | Path | None,
    formats: list[Format] | None = None,
    *,
    sqnr_threshold_db: float = DEFAULT_SQNR_DB,
    memory_budget: int = DEFAULT_BUDGET,
    workers: int = 1,
    allow_pickle: bool = False,
    progress: ProgressFn | None = None,
    dask: str | None = None,
) -> ScanReport:
    """Scan every floating-point tensor against each format (default fp16, bf16, fp8).

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
    entries = ckpt.stored
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
            report(_scan_tensor(ckpt, e.name, fmts, sqnr_threshold_db, chunk), e.nbytes)
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
    )


_worker_ckpt: Checkpoint | None = None  # a worker process's own view of the checkpoint


def _worker_setup(source: str, allow_pickle: bool) -> None:
    global _worker_ckpt
    torch.set_num_threads(1)  # the workers share the cores
    _worker_ckpt = open_checkpoint(source, allow_pickle=allow_pickle)  # once per worker


def _scan_job(job: tuple[str, tuple[Format, ...], float, int]) -> TensorScan:
    name, fmts, threshold, chunk = job
    assert _worker_ckpt is not None, "_worker_setup runs first"
    return _scan_tensor(_worker_ckpt, name, fmts, threshold, chunk)


def _scan_tensor(
    ckpt: Checkpoint, name: str, fmts: tuple[Format, ...], threshold: float, chunk: int
) -> TensorScan:
    e = ckpt.entry(name)
    if not DTYPES[e.dtype].is_float:
        return _unscanned(name, e.dtype, e.shape, e.numel)
    return tensor_scan(e, fmts, threshold, chunk_partials(ckpt, name, fmts, chunk))


def chunk_partials(
    ckpt: Checkpoint,
    name: str,
    fmts: tuple[Format, ...],
    chunk: int,
    part: tuple[int, int] | None = None,
) -> Iterator[list[Partial]]:
    """Each chunk's partial metrics, one per format, chunk by chunk (``part``: chunks i..j-1)."""
    for values in iter_chunks(ckpt, name, chunk, decoded=True, part=part):
        yield [format_partial(values, f) for f in fmts]


def tensor_scan(
    e: TensorEntry, fmts: tuple[Format, ...], threshold: float, chunks: Iterable[list[Partial]]
) -> TensorScan:
    """A floating-point tensor's verdicts from its chunks' partials, merged in chunk order
    (float sums: the order fixes the last bits, so every executor merges the same way)."""
    partials: list[Partial | None] = [None] * len(fmts)
    for parts in chunks:
        for i, p in enumerate(parts):
            prev = partials[i]
            partials[i] = p if prev is None else prev.merged(p)
    verdicts = tuple(
        _verdict(f, p, threshold) for f, p in zip(fmts, partials, strict=True) if p is not None
    )
    name = e.name
    if not verdicts:  # an empty tensor
        return _unscanned(name, e.dtype, e.shape, e.numel)
    m = verdicts[0].metrics  # the input's own figures come with every format's metrics
    return TensorScan(
        name=name,
        dtype=e.dtype,
        shape=e.shape,
        numel=e.numel,
        absmax=m.input_absmax,
        nan=m.input_nan,
        inf=m.input_inf,
        verdicts=verdicts,
    )


def _unscanned(name: str, dtype: str, shape: tuple[int, ...], numel: int) -> TensorScan:
    """An integer or empty tensor: no values judged, so no verdicts."""
    return TensorScan(
        name=name, dtype=dtype, shape=shape, numel=numel, absmax=math.nan, nan=0, inf=0, verdicts=()
    )


def _verdict(fmt: Format, p: Partial, threshold: float) -> Verdict:
    m = p.finish()
    if m.input_nan or m.input_inf:
        status = Status.NAN
        message = f"{m.input_nan:,} NaN and {m.input_inf:,} inf in the weights"
    elif m.overflow:
        beyond = "became inf/NaN" if m.nonfinite_output else "saturated"
        status = Status.OVERFLOW
        message = (
            f"overflows {fmt.name}: {m.overflow:,} values beyond {float(fmt.max):g} ({beyond})"
        )
    elif m.sqnr_db < threshold:
        status = Status.LOSSY
        message = f"loses too much: SQNR {m.sqnr_db:.1f} dB < {threshold:g} dB"
    else:
        status, message = Status.SAFE, "safe"
    return Verdict(
        format=fmt,
        status=status,
        message=message,
        metrics=m,
        signal=p.sums.xx,
        noise=p.sums.sq_err,
    )


def _summaries(
    tensors: tuple[TensorScan, ...], fmts: tuple[Format, ...]
) -> tuple[FormatSummary, ...]:
    out = []
    for i, f in enumerate(fmts):
        rows = [(t, t.verdicts[i]) for t in tensors if t.verdicts]
        worst = sorted(rows, key=lambda r: by_sqnr(r[1].metrics.sqnr_db, worst_first=True))
        signal = math.fsum(v.signal for _, v in rows)
        noise = math.fsum(v.noise for _, v in rows)
        if noise == 0:
            mean = math.inf if signal > 0 else math.nan
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


@dataclass(frozen=True)
class FailRules:
    """What the fail_on rules ask for: any overflow, any NaN/inf in the weights, SQNR below."""

    overflow: bool = False
    nan: bool = False
    sqnr_below: float | None = None


def parse_fail_rules(rules: list[str]) -> FailRules:
    """``overflow``, ``nan``, ``sqnr<DB``; a bad rule is an OptionError (before any scan)."""
    wanted_over = wanted_nan = False
    floor = None
    for rule in rules:
        r = rule.strip().lower().replace(" ", "")
        if r == "overflow":
            wanted_over = True
        elif r == "nan":
            wanted_nan = True
        elif r.startswith("sqnr<"):
            try:
                floor = float(r[5:])
            except ValueError:
                floor = math.nan
            if not math.isfinite(floor):  # sqnr<nan would pass everything, sqnr<inf fail it
                raise OptionValueError("", "fail_on", f" {rule!r}: write sqnr<20 (dB)") from None
        else:
            raise OptionValueError("", "fail_on", f" {rule!r}: choose overflow, nan or sqnr<DB")
    return FailRules(wanted_over, wanted_nan, floor)


def failures(report: ScanReport, rules: FailRules | list[str]) -> list[str]:
    """The verdicts that break the fail_on rules: overflow, nan, sqnr<DB."""
    r = rules if isinstance(rules, FailRules) else parse_fail_rules(rules)
    if (r.overflow or r.nan or r.sqnr_below is not None) and not any(
        t.verdicts for t in report.tensors
    ):  # a check that looked at nothing has not passed
        return ["nothing to check: the checkpoint has no floating-point tensor to scan"]
    out = []
    for t in report.tensors:
        for v in t.verdicts:
            m = v.metrics
            if (
                (r.overflow and m.overflow)
                or (r.nan and (m.input_nan or m.input_inf))
                or (r.sqnr_below is not None and m.sqnr_db < r.sqnr_below)
            ):
                out.append(f"{t.name} in {v.format.name}: {v.message}")
    return out
