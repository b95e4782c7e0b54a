"""Open a checkpoint from its headers, then read tensors whole or in bounded chunks.

``open_checkpoint`` reads headers only (see ``header`` for every check); tensor data is read
later, from a memory map, one tensor or one chunk at a time:

* dtypes the official ``safetensors`` library and torch both hold are read with
  ``safe_open(..., framework="pt")`` (``get_tensor``, and ``get_slice`` for chunks);
* F4, F6_E2M3 and F6_E3M2 (safetensors' F4 slicing fails and it reads no F6; torch has no
  unpacked fp4/fp6), any dtype the installed torch lacks, and every tensor of a file with tied
  entries (which the official reader refuses) are read as raw bytes with ``numpy.memmap``,
  then unpacked and decoded by ``dtlab.kernels``.

Sub-byte order. safetensors' F4 is torch's ``float4_e2m1fn_x2`` byte for byte:
``safe_open(...).get_tensor`` of an F4 entry of shape ``[..., 2n]`` returns a
``float4_e2m1fn_x2`` tensor of shape ``[..., n]`` over the same bytes, and torch stores element
0 in the low nibble (``torch/headeronly/util/Float4_e2m1fn_x2.h``; docs/formats.md §7). The
safetensors documentation itself states no nibble order. It states no order for F6 either
(its ``Dtype`` enum only gives 6 bits and cites the OCP MX spec, which defines no byte
layout): dtlab reads F6 as one little-endian bit stream, element i in bits [6i, 6i+6), four
values in three bytes (``dtlab.kernels.packing``). That F6 order is an assumption, not checked
against any file a producer wrote.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dtlab.checkpoint.files import CheckpointKind
from dtlab.checkpoint.gguf_data import gguf_chunks, read_gguf_tensor
from dtlab.checkpoint.handle import Checkpoint
from dtlab.checkpoint.header import (
    DTYPES,
    CheckpointError,
    TensorEntry,
    show,
)
from dtlab.checkpoint.pickled import TORCH_DTYPES
from dtlab.errors import OptionError, first_line
from dtlab.kernels import decode, unpack

REMAP_BYTES = 256 << 20  # input bytes read through one memory map before it is reopened
_WIDE = ("F64", "I32", "U32", "I64", "U64")  # chunks in float64: float32 would round them


def read_tensor(ckpt: Checkpoint, name: str) -> torch.Tensor:
    """One tensor, in its stored torch dtype where torch has one; F4, F6 and dtypes the
    installed torch lacks come back as float32 values (exact: fp4/fp6 fit in float32)."""
    entry = ckpt.entry(name)
    if ckpt.kind is CheckpointKind.GGUF:  # block types dequantized by gguf-py
        return read_gguf_tensor(entry)
    if ckpt.loaded is not None:
        t = ckpt.loaded[name]
        if entry.bits < 8:  # float4_e2m1fn_x2: decoded like the safetensors F4
            return _decode_bytes(t.reshape(-1).view(torch.uint8), entry, None).reshape(entry.shape)
        return t
    if _native(ckpt, entry):
        from safetensors import safe_open

        try:
            with safe_open(entry.file, framework="pt") as f:
                out: torch.Tensor = f.get_tensor(name)
                return out
        except Exception as exc:  # SafetensorError, OSError: the file changed since opened
            raise _read_error(entry, exc) from None
    return _raw_chunk(ckpt, entry, 0, entry.numel, None).reshape(entry.shape)


def read_range(ckpt: Checkpoint, name: str, lo: int, hi: int) -> torch.Tensor:
    """Elements [lo, hi) of a tensor flattened in C order, in its stored torch dtype, read
    from the memory map (a pre-quantized weight's parts, a piece at a time)."""
    entry = ckpt.entry(name)
    lo, hi = max(0, lo), min(hi, entry.numel)
    if ckpt.loaded is not None:
        return ckpt.loaded[name].reshape(-1)[lo:hi]
    if entry.bits < 8 or _torch_dtype(entry.dtype) is None:
        raise CheckpointError(f"{show(entry.file)}: tensor {name!r} is {entry.dtype}: no range")
    return _raw_chunk(ckpt, entry, lo, hi, None)


def iter_chunks(
    ckpt: Checkpoint,
    name: str,
    max_bytes: int,
    *,
    decoded: bool = False,
    multiple_of: int = 1,
    part: tuple[int, int] | None = None,
) -> Iterator[torch.Tensor]:
    """The values of a tensor, flattened in C order, as 1-D chunks that each come from at most
    ``max_bytes`` of stored data: float64 for F64 and 32/64-bit integers, float32 otherwise.
    With ``decoded``, ``max_bytes`` bounds each chunk as returned instead (at least one
    storage unit's values): the same memory for every dtype, where F4 widens eightfold.
    A GGUF tensor always comes in whole blocks bounded as decoded (``gguf_data``).

    Memory stays bounded by the chunk size whatever the tensor's size. ``max_bytes`` must
    hold one storage unit: an element, or 3 bytes (4 values) for F6. The name and options
    are checked at the call, the data read as the chunks are consumed. A pickled tensor
    that is not contiguous is copied whole first. With ``multiple_of``, every chunk but the
    last holds a multiple of that many values (whole groups or rows), more than ``max_bytes``
    if one such run is larger. ``part`` = (i, j) yields chunks i to j - 1 only, the very
    chunks a whole pass yields there (``chunk_count`` says how many there are).
    """
    entry = ckpt.entry(name)
    if ckpt.kind is CheckpointKind.GGUF:  # whole blocks per chunk, always as decoded
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise OptionError(f"max_bytes must be an int >= 1 for {entry.dtype}")
        if part is not None:
            raise OptionError("GGUF tensors are read whole or in every chunk, not in parts")
        return gguf_chunks(entry, max_bytes, multiple_of)
    per = _per_chunk(entry, max_bytes, decoded, multiple_of)
    out_dtype = torch.float64 if entry.dtype in _WIDE else torch.float32
    starts = range(0, entry.numel, per)
    chunks = _Chunks(starts if part is None else starts[part[0] : part[1]], per, entry.numel)
    if ckpt.loaded is not None:
        return _loaded_chunks(ckpt.loaded[name], entry, chunks, out_dtype)
    if _native(ckpt, entry):
        return _sliced_chunks(entry, chunks, out_dtype)
    return (_raw_chunk(ckpt, entry, lo, hi, out_dtype) for lo, hi in chunks)


def chunk_count(ckpt: Checkpoint, name: str, max_bytes: int, *, decoded: bool = False) -> int:
    """How many chunks ``iter_chunks`` yields for these options (not for GGUF tensors)."""
    entry = ckpt.entry(name)
    return len(range(0, entry.numel, _per_chunk(entry, max_bytes, decoded, 1)))


def _per_chunk(entry: TensorEntry, max_bytes: int, decoded: bool, multiple_of: int) -> int:
    """Values per chunk: whole storage units within ``max_bytes``, stored or decoded, and a
    multiple of ``multiple_of`` (at least one such run)."""
    if entry.dtype == "C64":
        raise CheckpointError(
            f"{show(entry.file)}: tensor {entry.name!r} is complex: no real chunks"
        )
    g = math.gcd(entry.bits, 8)
    unit_bytes, unit_values = entry.bits // g, 8 // g
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < unit_bytes:
        raise OptionError(f"max_bytes must be an int >= {unit_bytes} for {entry.dtype}")
    if decoded:
        itemsize = 8 if entry.dtype in _WIDE else 4
        per = unit_values * max(1, max_bytes // itemsize // unit_values)
    else:
        per = unit_values * (max_bytes // unit_bytes)
    step = math.lcm(unit_values, max(multiple_of, 1))
    return max(step, per // step * step)


@dataclass(frozen=True)
class _Chunks:
    """Element ranges [lo, hi) of ``per`` values, lazily: a 4 GB tensor read 4 bytes at a time
    has a billion of them."""

    starts: range
    per: int
    numel: int

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> tuple[int, int]:
        lo = self.starts[i]
        return lo, min(lo + self.per, self.numel)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return (self[i] for i in range(len(self)))


def _loaded_chunks(
    t: torch.Tensor, entry: TensorEntry, chunks: _Chunks, out_dtype: torch.dtype
) -> Iterator[torch.Tensor]:
    flat = t.reshape(-1)
    if entry.bits < 8:
        flat = flat.view(torch.uint8)
    for lo, hi in chunks:
        if entry.bits < 8:
            raw = flat[lo * entry.bits // 8 : hi * entry.bits // 8]
            yield _decode_bytes(raw, entry, out_dtype)
        else:
            yield flat[lo:hi].to(out_dtype)


# ---- through safetensors --------------------------------------------------------------------


def _torch_dtype(st: str) -> torch.dtype | None:
    return TORCH_DTYPES.get(st)


def _native(ckpt: Checkpoint, entry: TensorEntry) -> bool:
    """Whether safetensors' own reader serves this tensor."""
    if entry.bits < 8 or _torch_dtype(entry.dtype) is None:
        return False
    return not any(h.tied for h in ckpt.headers if h.file == entry.file)


def _read_error(entry: TensorEntry, exc: Exception) -> CheckpointError:
    return CheckpointError(
        f"{show(entry.file)}: cannot read tensor {entry.name!r} ({first_line(exc)})"
    )


def _sliced_chunks(
    entry: TensorEntry, bounds: _Chunks, out_dtype: torch.dtype
) -> Iterator[torch.Tensor]:
    from safetensors import safe_open

    i = 0
    while i < len(bounds):
        # reopened every REMAP_BYTES: closing unmaps the file, so the pages a scan has read
        # do not pile up in the process (they would be reclaimable, but counted as its RSS)
        try:
            with safe_open(entry.file, framework="pt") as f:
                sl = f.get_slice(entry.name)
                done = 0
                while i < len(bounds) and done < REMAP_BYTES:
                    lo, hi = bounds[i]
                    yield _gather(sl, entry.shape, lo, hi, out_dtype)
                    done += (hi - lo) * entry.bits // 8
                    i += 1
        except Exception as exc:
            raise _read_error(entry, exc) from None


def _gather(
    sl: Any, shape: tuple[int, ...], lo: int, hi: int, out_dtype: torch.dtype
) -> torch.Tensor:
    out = torch.empty(hi - lo, dtype=out_dtype)
    pos = 0
    for index in _pieces(shape, lo, hi):
        piece = sl[index].reshape(-1)
        out[pos : pos + piece.numel()] = piece
        pos += piece.numel()
    return out


def _pieces(shape: tuple[int, ...], lo: int, hi: int) -> list[tuple[int | slice, ...]]:
    """Indexes into a tensor of ``shape`` whose flattened results, concatenated, are the
    flattened elements [lo, hi): at most 2 * rank - 1 of them (get_slice takes boxes only)."""
    if not shape:
        return [()]
    if len(shape) == 1:
        return [(slice(lo, hi),)]
    inner = math.prod(shape[1:])
    first, last = lo // inner, (hi - 1) // inner
    if lo % inner == 0 and hi % inner == 0:
        return [(slice(first, last + 1),)]
    if first == last:
        return [(first, *p) for p in _pieces(shape[1:], lo % inner, hi - first * inner)]
    out: list[tuple[int | slice, ...]] = []
    if lo % inner:
        out += [(first, *p) for p in _pieces(shape[1:], lo % inner, inner)]
        first += 1
    full_end = hi // inner
    if first < full_end:
        out.append((slice(first, full_end),))
    if hi % inner:
        out += [(full_end, *p) for p in _pieces(shape[1:], 0, hi % inner)]
    return out


# ---- raw bytes ------------------------------------------------------------------------------


def _raw_chunk(
    ckpt: Checkpoint, entry: TensorEntry, lo: int, hi: int, out_dtype: torch.dtype | None
) -> torch.Tensor:
    """Elements [lo, hi) from a memory map of the file's bytes (lo, hi on storage units)."""
    if hi <= lo:
        return torch.empty(0, dtype=out_dtype or _torch_dtype(entry.dtype) or torch.float32)
    start = entry.file_range[0]
    header = next(h for h in ckpt.headers if h.file == entry.file)
    try:
        if os.stat(entry.file).st_size != header.file_bytes:
            raise CheckpointError(f"{show(entry.file)}: the file changed since it was opened")
        b0, b1 = start + lo * entry.bits // 8, start + hi * entry.bits // 8
        mm = np.memmap(entry.file, dtype=np.uint8, mode="r", offset=b0, shape=(b1 - b0,))
        raw = torch.from_numpy(np.array(mm))  # a private, writable copy of this chunk
        del mm
    except (OSError, ValueError) as exc:
        raise _read_error(entry, exc) from None
    return _decode_bytes(raw, entry, out_dtype)


def _decode_bytes(
    raw: torch.Tensor, entry: TensorEntry, out_dtype: torch.dtype | None
) -> torch.Tensor:
    """Values from the little-endian bytes of whole storage units; ``out_dtype`` None keeps
    the stored torch dtype where there is one (read_tensor), else gives float32."""
    info = DTYPES[entry.dtype]
    count = raw.numel() * 8 // entry.bits
    native = _torch_dtype(entry.dtype)
    if entry.bits >= 8 and native is not None:
        if entry.bits > 8 and sys.byteorder != "little":  # pragma: no cover - no such host here
            raise CheckpointError("reading raw multi-byte tensors needs a little-endian host")
        values = raw.view(native)
        return values if out_dtype is None else values.to(out_dtype)
    if entry.bits > 8 or info.format_name is None:
        raise CheckpointError(f"{show(entry.file)}: this torch cannot hold {entry.dtype} tensors")
    codes = unpack(raw, entry.bits, count) if entry.bits < 8 else raw
    return decode(codes, info.format_name, dtype=out_dtype or torch.float32)
