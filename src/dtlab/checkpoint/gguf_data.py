"""The values of GGUF tensors, dequantized by gguf-py's own ``gguf.quants.dequantize`` (ggml's
formulas, in numpy float32), a run of whole blocks at a time, so memory stays bounded by the
chunk whatever the tensor's size.

Each chunk is read through a fresh memory map of just its bytes (as ``reader._raw_chunk``
does for safetensors): pages a scan has read are unmapped with the chunk and do not pile up
in the process. The header (``gguf_file``) has already checked that every byte range lies in
the file; a file that shrank since is reported in one line.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import numpy as np
import torch

from dtlab.checkpoint.gguf_file import GGUFEntry
from dtlab.checkpoint.header import CheckpointError, TensorEntry, show
from dtlab.errors import first_line

__all__ = ["gguf_chunks", "read_gguf_tensor"]

_NATIVE = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
_NATIVE |= {"F64": torch.float64, "I8": torch.int8, "I16": torch.int16}
_NATIVE |= {"I32": torch.int32, "I64": torch.int64}


def _entry(entry: TensorEntry) -> GGUFEntry:
    if not isinstance(entry, GGUFEntry):
        raise CheckpointError(f"{show(entry.file)}: tensor {entry.name!r} is not a GGUF tensor")
    return entry


def read_gguf_tensor(entry: TensorEntry) -> torch.Tensor:
    """The whole tensor: plain types in their torch dtype, block types as float32 values."""
    e = _entry(entry)
    if e.dtype in _NATIVE:
        raw = _bytes(e, 0, e.nbytes)
        return raw.view(_NATIVE[e.dtype]).reshape(e.shape)
    blocks = e.numel // e.ggml.block_size
    return _dequantized(e, 0, blocks).reshape(e.shape)


def gguf_chunks(entry: TensorEntry, max_bytes: int, multiple_of: int = 1) -> Iterator[torch.Tensor]:
    """The tensor's values flattened in C order (ggml's own order: block after block along
    each row), as float32 chunks (float64 for F64 and wide integers) of at most
    ``max_bytes`` decoded bytes, each a whole number of blocks (at least one) and, but the
    last, of ``multiple_of`` values."""
    e = _entry(entry)
    out = torch.float64 if e.dtype in ("F64", "I32", "I64") else torch.float32
    bs = e.ggml.block_size
    step = math.lcm(bs, max(multiple_of, 1)) // bs  # blocks
    per = max(step, max_bytes // out.itemsize // bs // step * step)  # blocks per chunk
    total = math.ceil(e.numel / bs) if e.numel else 0
    for lo in range(0, total, per):
        hi = min(lo + per, total)
        if e.dtype in _NATIVE:
            ts = e.ggml.type_size
            yield _bytes(e, lo * ts, hi * ts).view(_NATIVE[e.dtype]).to(out)
        else:
            yield _dequantized(e, lo, hi)


def _dequantized(e: GGUFEntry, lo: int, hi: int) -> torch.Tensor:
    """Blocks [lo, hi) dequantized by gguf-py, as a float32 tensor."""
    from gguf.constants import GGMLQuantizationType
    from gguf.quants import dequantize

    ts = e.ggml.type_size
    raw = _bytes(e, lo * ts, hi * ts).numpy()
    try:
        values = dequantize(raw, GGMLQuantizationType(e.ggml.type_id))
    except (NotImplementedError, ValueError) as exc:
        raise CheckpointError(
            f"{show(e.file)}: tensor {e.name!r} ({e.dtype}): gguf cannot dequantize it "
            f"({first_line(exc)})"
        ) from None
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32).reshape(-1))


def _bytes(e: GGUFEntry, b0: int, b1: int) -> torch.Tensor:
    """Bytes [b0, b1) of the tensor's data, a private copy (uint8)."""
    if b1 <= b0:
        return torch.empty(0, dtype=torch.uint8)
    start = e.file_range[0]
    try:
        if os.stat(e.file).st_size < e.file_range[1]:
            raise CheckpointError(f"{show(e.file)}: the file changed since it was opened")
        mm = np.memmap(e.file, dtype=np.uint8, mode="r", offset=start + b0, shape=(b1 - b0,))
        raw = torch.from_numpy(np.array(mm))
        del mm
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"{show(e.file)}: cannot read tensor {e.name!r} ({first_line(exc)})"
        ) from None
    return raw
