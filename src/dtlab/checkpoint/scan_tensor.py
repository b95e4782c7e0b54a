"""One tensor of the pre-cast scan: its values read in parts (each a whole number of every
target's scale slices), each part measured in every target, the partial sums merged in part
order, then a verdict per target.

A plain format takes any cut. A quantizer's scale covers a group, a block, a channel or the
tensor (``analysis.targets``): parts hold whole slices, per-tensor absmax scales and NVFP4's
tensor scale take a first pass for the tensor's range, and a pre-quantized weight that a
quantizer re-quantizes is dequantized whole in its logical order (GPTQ and AWQ dequantize as
[in, out]). Memory stays within the budget, or the scan is refused before it starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

import torch

from dtlab.analysis.metrics import Partial
from dtlab.analysis.targets import (
    Range,
    merged_range,
    slice_values,
    target_partial,
    tensor_pass,
    tensor_range,
)
from dtlab.checkpoint.files import CheckpointKind
from dtlab.checkpoint.handle import Checkpoint
from dtlab.checkpoint.header import TensorEntry, is_float_dtype
from dtlab.checkpoint.prequant.dequant import packed_chunks, read_packed
from dtlab.checkpoint.prequant.layout import PackedWeight, logical_entry
from dtlab.checkpoint.reader import iter_chunks
from dtlab.checkpoint.scan_records import Status, TensorScan, Verdict
from dtlab.errors import OptionError
from dtlab.formats import Format
from dtlab.formats.quantizer import Quantizer
from dtlab.formats.quantizer_spec import Target

Targets = tuple[Target, ...]


def scan_tensor(
    ckpt: Checkpoint, name: str, fmts: Targets, threshold: float, chunk: int
) -> TensorScan:
    """One tensor (a stored one, or a packed weight by its logical name) in every target."""
    e = logical_entry(ckpt, name)
    if not is_float_dtype(e.dtype):
        return unscanned(e)
    together = _together(e.shape, fmts)
    per = chunk if together == 1 else chunk * 4 // _QUANT_BYTES  # quantizers hold more
    pieces = _pieces(ckpt, e, fmts, per, together, chunk)
    ranges: list[Range | None] = [None] * len(fmts)
    if any(tensor_pass(f, e.shape) for f in fmts):  # per-tensor scales: first the range
        for values in pieces():
            for i, f in enumerate(fmts):
                if tensor_pass(f, e.shape):
                    ranges[i] = merged_range(ranges[i], tensor_range(values, f, e.shape))
    parts = (
        [target_partial(values, f, e.shape, ranges[i]) for i, f in enumerate(fmts)]
        for values in pieces()
    )
    return tensor_scan(e, fmts, threshold, parts)


def splittable(ckpt: Checkpoint, e: TensorEntry, fmts: Targets) -> bool:
    """Whether ``chunk_partials`` may scan the tensor in ranges of chunks on several workers:
    a stored float tensor of a safetensors or pickled checkpoint, in plain formats only."""
    return (
        is_float_dtype(e.dtype)
        and not isinstance(e, PackedWeight)
        and ckpt.kind is not CheckpointKind.GGUF
        and all(isinstance(f, Format) for f in fmts)
    )


def chunk_partials(
    ckpt: Checkpoint,
    name: str,
    fmts: Targets,
    chunk: int,
    part: tuple[int, int] | None = None,
) -> Iterator[list[Partial]]:
    """Each chunk's partial metrics, one per format, chunk by chunk (``part``: chunks i..j-1)
    of a tensor that is ``splittable``."""
    for values in iter_chunks(ckpt, name, chunk, decoded=True, part=part):
        yield [target_partial(values, f, ()) for f in fmts]


def tensor_scan(
    e: TensorEntry, fmts: Targets, threshold: float, chunks: Iterable[list[Partial]]
) -> TensorScan:
    """A floating-point tensor's verdicts from its chunks' partials, merged in chunk order
    (float sums: the order fixes the last bits, so every executor merges the same way)."""
    partials: list[Partial | None] = [None] * len(fmts)
    for parts in chunks:
        for i, p in enumerate(parts):
            prev = partials[i]
            partials[i] = p if prev is None else prev.merged(p)
    verdicts = tuple(
        verdict(f, p, threshold) for f, p in zip(fmts, partials, strict=True) if p is not None
    )
    if not verdicts:  # an empty tensor
        return unscanned(e)
    m = verdicts[0].metrics  # the input's own figures come with every format's metrics
    return TensorScan(
        name=e.name,
        dtype=e.dtype,
        shape=e.shape,
        numel=e.numel,
        absmax=m.input_absmax,
        nan=m.input_nan,
        inf=m.input_inf,
        verdicts=verdicts,
        stored_as=e.label if isinstance(e, PackedWeight) else None,
    )


def check_budget(e: TensorEntry, fmts: Targets, chunk: int) -> None:
    """Refuse, before any reading, a target whose slices the budget cannot hold, or a packed
    weight that a quantizer needs dequantized whole (its float32 copy takes at most half the
    budget, ``chunk * 4`` bytes)."""
    if not is_float_dtype(e.dtype):
        return
    _check_budget(e.name, e.shape, _together(e.shape, fmts), fmts, chunk)
    if _dequantized_whole(e, fmts) and e.numel > chunk:  # e.numel * 4 bytes > chunk * 4
        raise OptionError(
            f"packed weight {e.name!r} {list(e.shape)}: quantizing it needs it dequantized "
            f"whole; use --memory-budget {-(-e.numel * 8 // (1 << 20))} (MiB) or more, or "
            "plain formats"
        )


def _dequantized_whole(e: TensorEntry, fmts: Targets) -> bool:
    """A packed weight that a quantizer re-quantizes: its slices need the C order of its
    logical shape, while GPTQ and AWQ dequantize as [in, out]."""
    return isinstance(e, PackedWeight) and not all(isinstance(f, Format) for f in fmts)


def _together(shape: tuple[int, ...], fmts: tuple[Target, ...]) -> int:
    """Values no part may cut: every target's scale slices whole."""
    return math.lcm(*(slice_values(f, shape) for f in fmts)) if math.prod(shape) else 1


_QUANT_BYTES = 128  # per value a quantizer holds at once (int8 81, nvfp4 112, mxfp4 127)


def _pieces(
    ckpt: Checkpoint,
    e: TensorEntry,
    fmts: Targets,
    per: int,
    together: int,
    chunk: int,
) -> Callable[[], Iterable[torch.Tensor]]:
    """A pass over the tensor's values in C order of its (logical) shape, in parts of whole
    scale slices, each call a new pass; a packed weight dequantized whole is read once."""
    if not isinstance(e, PackedWeight):
        return lambda: iter_chunks(ckpt, e.name, per, decoded=True, multiple_of=together)
    if not _dequantized_whole(e, fmts):  # casts: any order, the library's pieces
        return lambda: packed_chunks(ckpt, e, chunk)
    flat = read_packed(ckpt, e).reshape(-1).to(torch.float32)  # within check_budget's bound
    step = max(together, per // together * together)
    parts = [flat[i : i + step] for i in range(0, flat.numel(), step)]
    return lambda: parts


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


def unscanned(e: TensorEntry) -> TensorScan:
    """An integer or empty tensor: no values judged, so no verdicts."""
    return TensorScan(
        name=e.name,
        dtype=e.dtype,
        shape=e.shape,
        numel=e.numel,
        absmax=math.nan,
        nan=0,
        inf=0,
        verdicts=(),
        stored_as=e.label if isinstance(e, PackedWeight) else None,
    )


def verdict(fmt: Target, p: Partial, threshold: float) -> Verdict:
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
