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
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dtlab.analysis.metrics import ErrorMetrics, Partial, by_sqnr
from dtlab.analysis.targets import (
    Range,
    merged_range,
    slice_values,
    target_partial,
    tensor_pass,
    tensor_range,
)
from dtlab.checkpoint.files import embedded_model
from dtlab.checkpoint.handle import Checkpoint, open_checkpoint
from dtlab.checkpoint.header import TensorEntry, is_float_dtype
from dtlab.checkpoint.prequant.dequant import packed_chunks, read_packed
from dtlab.checkpoint.prequant.layout import (
    PackedWeight,
    PrequantSummary,
    logical_entries,
    logical_entry,
    logical_summary,
)
from dtlab.checkpoint.reader import iter_chunks
from dtlab.defaults import SCAN_BUDGET_BYTES, SCAN_FORMATS, SCAN_SQNR_DB
from dtlab.errors import OptionError, OptionValueError
from dtlab.formats import Format, get_format
from dtlab.formats.quantizer import Quantizer
from dtlab.formats.quantizer_spec import Target

# in --json a target is its name: "float16", "int4:g128"
_BY_NAME = {"json": "name"}

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
    format: Target = field(metadata=_BY_NAME)
    status: Status
    message: str
    metrics: ErrorMetrics
    signal: float  # sum of x^2 over the finite pairs: what FormatSummary's SQNR adds up
    noise: float  # sum of (q - x)^2 over them; inf if a finite x became inf or NaN


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
    stored_as: str | None = None  # a pre-quantized weight's layout; dtype is what it dequantizes to


@dataclass(frozen=True)
class FormatSummary:
    format: Target = field(metadata=_BY_NAME)
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
    formats: tuple[Target, ...] = field(metadata=_BY_NAME)
    sqnr_threshold_db: float
    tensors: tuple[TensorScan, ...]
    summaries: tuple[FormatSummary, ...]
    params: int
    stored_bytes: int
    seconds: float
    workers: int
    chunk_bytes: int
    layout: PrequantSummary | None = None  # a pre-quantized checkpoint's, dequantized to scan


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
    formats: list[Target] | None = None,
    *,
    sqnr_threshold_db: float = DEFAULT_SQNR_DB,
    memory_budget: int = DEFAULT_BUDGET,
    workers: int = 1,
    allow_pickle: bool = False,
    progress: ProgressFn | None = None,
) -> ScanReport:
    """Scan every floating-point tensor against each target (default fp16, bf16, fp8): a
    format, cast elementwise, or a quantizer (``analysis.targets.parse_target``)."""
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
        if is_float_dtype(e.dtype):
            _check_budget(e.name, e.shape, _together(e.shape, fmts), fmts, chunk)
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

    if workers == 1 or len(entries) < 2:
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
        layout=logical_summary(ckpt),
    )


_worker_ckpt: Checkpoint | None = None  # a worker process's own view of the checkpoint


def _worker_setup(source: str, allow_pickle: bool) -> None:
    global _worker_ckpt
    torch.set_num_threads(1)  # the workers share the cores
    _worker_ckpt = open_checkpoint(source, allow_pickle=allow_pickle)  # once per worker


def _scan_job(job: tuple[str, tuple[Target, ...], float, int]) -> TensorScan:
    name, fmts, threshold, chunk = job
    assert _worker_ckpt is not None, "_worker_setup runs first"
    return _scan_tensor(_worker_ckpt, name, fmts, threshold, chunk)


def _scan_tensor(
    ckpt: Checkpoint, name: str, fmts: tuple[Target, ...], threshold: float, chunk: int
) -> TensorScan:
    e = logical_entry(ckpt, name)
    if not is_float_dtype(e.dtype):
        return _unscanned(name, e.dtype, e.shape, e.numel)
    together = _together(e.shape, fmts)
    per = chunk if together == 1 else chunk * 4 // _QUANT_BYTES  # quantizers hold more
    ranges: list[Range | None] = [None] * len(fmts)
    if any(tensor_pass(f, e.shape) for f in fmts):  # per-tensor scales: first the range
        for part in _pieces(ckpt, e, fmts, per, together, chunk):
            for i, f in enumerate(fmts):
                if tensor_pass(f, e.shape):
                    ranges[i] = merged_range(ranges[i], tensor_range(part, f, e.shape))
    partials: list[Partial | None] = [None] * len(fmts)
    for part in _pieces(ckpt, e, fmts, per, together, chunk):
        for i, f in enumerate(fmts):
            p = target_partial(part, f, e.shape, ranges[i])
            prev = partials[i]
            partials[i] = p if prev is None else prev.merged(p)
    verdicts = tuple(
        _verdict(f, p, threshold) for f, p in zip(fmts, partials, strict=True) if p is not None
    )
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
        stored_as=e.label if isinstance(e, PackedWeight) else None,
    )


def _together(shape: tuple[int, ...], fmts: tuple[Target, ...]) -> int:
    """Values no part may cut: every target's scale slices whole."""
    return math.lcm(*(slice_values(f, shape) for f in fmts)) if math.prod(shape) else 1


_QUANT_BYTES = 128  # per value a quantizer holds at once (int8 81, nvfp4 112, mxfp4 127)


def _pieces(
    ckpt: Checkpoint,
    e: TensorEntry | PackedWeight,
    fmts: tuple[Target, ...],
    per: int,
    together: int,
    chunk: int,
) -> Iterator[torch.Tensor]:
    """The tensor's values in C order of its (logical) shape, in parts of whole scale slices."""
    if not isinstance(e, PackedWeight):
        return iter_chunks(ckpt, e.name, per, decoded=True, multiple_of=together)
    if all(isinstance(f, Format) for f in fmts):  # casts: any order, the library's pieces
        return packed_chunks(ckpt, e, chunk)
    # quantizers need C order of the logical shape (GPTQ and AWQ store [in, out]): the
    # weight dequantized whole, then cut
    if e.numel * 8 > chunk * 8:  # the float32 copy takes at most half the budget
        need = -(-e.numel * 8 // (1 << 20))
        raise OptionError(
            f"packed weight {e.name!r} {list(e.shape)}: quantizing it needs it dequantized "
            f"whole; use --memory-budget {need} (MiB) or more, or plain formats"
        )
    flat = read_packed(ckpt, e).reshape(-1).to(torch.float32)
    step = max(together, per // together * together)
    return (flat[i : i + step] for i in range(0, flat.numel(), step))


def _check_budget(
    name: str, shape: tuple[int, ...], together: int, fmts: tuple[Target, ...], chunk: int
) -> None:
    """A quantizer whose scales span more values than the budget holds would break it: its
    slice, float64 copies, codes and dequantized values take up to 128 bytes a value."""
    if together * _QUANT_BYTES <= chunk * 8:
        return
    worst = max(fmts, key=lambda f: slice_values(f, shape))
    need = -(-together * _QUANT_BYTES // (1 << 20))
    raise OptionError(
        f"tensor {name!r} {list(shape)}: {worst.name} scales {together:,} values at once, more "
        f"than the memory budget lets a worker hold; use --memory-budget {need} (MiB) or more"
    )


def _unscanned(name: str, dtype: str, shape: tuple[int, ...], numel: int) -> TensorScan:
    """An integer or empty tensor: no values judged, so no verdicts."""
    return TensorScan(
        name=name, dtype=dtype, shape=shape, numel=numel, absmax=math.nan, nan=0, inf=0, verdicts=()
    )


def _verdict(fmt: Target, p: Partial, threshold: float) -> Verdict:
    m = p.finish()
    if m.input_nan or m.input_inf:
        status = Status.NAN
        message = f"{m.input_nan:,} NaN and {m.input_inf:,} inf in the weights"
    elif isinstance(fmt, Quantizer):  # a scale fits the values: clipping is a loss, not overflow
        status = Status.LOSSY if not m.sqnr_db >= threshold else Status.SAFE
        clipped = f"; {m.overflow:,} values clipped by their scale" if m.overflow else ""
        message = f"SQNR {_db(m.sqnr_db)}{clipped}"
        if status is Status.LOSSY:
            message = f"loses too much: SQNR {_db(m.sqnr_db)} < {threshold:g} dB{clipped}"
        elif status is Status.SAFE and not clipped:
            message = "safe"
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
        # a finite weight that became inf or NaN is an unbounded error, as in its own SQNR
        noise=math.inf if m.nonfinite_output else p.sums.sq_err,
    )


def _db(v: float) -> str:
    return f"{v:.1f} dB" if math.isfinite(v) else ("inf" if v > 0 else "-inf")


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
