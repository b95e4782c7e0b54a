"""GGML's legacy block quantizers on blocks of 32 float32 values: the C kernel (``_ggml.c``)
on CPU, and a pure-torch twin with the same bits everywhere else (CUDA, no compiler). The
formulas, and where they follow gguf-py or ggml's C, are in ``dtlab.analysis.ggufquant``.

>>> import torch
>>> data, clipped = ggml_quantize_blocks(torch.full((1, 32), 2.0), "Q4_0")
>>> data.shape, data[0, :2].tolist(), data[0, 2:4].tolist(), clipped
(torch.Size([1, 18]), [0, 180], [0, 0], 0)
"""

from __future__ import annotations

import torch

from dtlab.formats.ggml import GGMLType, get_ggml_type
from dtlab.kernels import native

__all__ = ["KINDS", "ggml_quantize_blocks"]

KINDS = ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1")  # the kind codes of _ggml.c
_CHUNK_BLOCKS = 1 << 15  # blocks per torch pass: temporaries of a few MB


def ggml_quantize_blocks(
    blocks: torch.Tensor, t: GGMLType | str, *, use_c: bool = True
) -> tuple[torch.Tensor, int]:
    """Blocks (n, 32) of float32 -> their bytes (n, type_size) and the clipped code count.
    ``use_c=False`` forces the torch path (the tests compare both)."""
    t = get_ggml_type(t)
    kind = KINDS.index(t.name)
    n = blocks.shape[0]
    out = torch.empty(n, t.type_size, dtype=torch.uint8, device=blocks.device)
    dm = torch.zeros(n, 2, dtype=torch.float32, device=blocks.device)
    if use_c and blocks.is_cpu and native.has_ggml_kernel():
        x = blocks.contiguous()
        clipped = native.ggml_quantize_blocks(x, out, dm, kind)
    else:
        clipped = 0
        for lo in range(0, n, _CHUNK_BLOCKS):
            sl = slice(lo, lo + _CHUNK_BLOCKS)
            clipped += _TORCH[kind](blocks[sl], out[sl], dm[sl])
    out[:, 0:2] = _half_bytes(dm[:, 0])
    if t.name in ("Q4_1", "Q5_1"):
        out[:, 2:4] = _half_bytes(dm[:, 1])
    return out, clipped


def _half_bytes(v: torch.Tensor) -> torch.Tensor:
    """float32 (n,) -> the two little-endian bytes of its float16 rounding (n, 2)."""
    h = torch.empty(v.shape[0], dtype=torch.float16, device=v.device)  # fresh: stride 1
    return h.copy_(v).view(torch.uint8).reshape(-1, 2)


def _inverse(d: torch.Tensor) -> torch.Tensor:
    """gguf-py's ``np.where(d == 0, 0, 1 / d)`` in float32."""
    return torch.where(d == 0, 0.0, torch.ones_like(d) / d)


def _codes(v: torch.Tensor, top: int) -> tuple[torch.Tensor, int]:
    """The C kernel's code_of: truncated v in [0, 256), else 0, clipped to top."""
    q = torch.where((v >= 0) & (v < 256), v.trunc(), 0.0)
    return q.clamp(max=top).to(torch.uint8), int((q > top).sum())


def _pack(q: torch.Tensor, out: torch.Tensor, at_qh: int | None) -> None:
    out[:, -16:] = (q[:, :16] & 0x0F) | ((q[:, 16:] & 0x0F) << 4)
    if at_qh is not None:
        bits = 1 << torch.arange(8, dtype=torch.uint8, device=q.device)
        h = ((q >> 4) & 1).reshape(-1, 4, 8)
        out[:, at_qh : at_qh + 4] = (h * bits).sum(dim=-1, dtype=torch.uint8)


def _q8_0(b: torch.Tensor, out: torch.Tensor, dm: torch.Tensor) -> int:
    d = b.abs().amax(dim=-1, keepdim=True) / 127
    v = b * _inverse(d)
    a = v.abs()
    whole = a.floor()
    r = (whole + (a - whole >= 0.5)) * v.sign()  # np_roundf, C roundf: halves away from zero
    r = torch.where(r.isfinite() & (r.abs() < 256), r, 0.0)
    dm[:, 0] = d[:, 0]
    out[:, 2:] = r.clamp(-127, 127).to(torch.int8).view(torch.uint8)
    return int((r.abs() > 127).sum())


def _first(b: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return b.gather(-1, index)


def _q_0(kind: int, b: torch.Tensor, out: torch.Tensor, dm: torch.Tensor) -> int:
    levels = 8 if kind == 1 else 16
    d = _first(b, b.abs().argmax(dim=-1, keepdim=True)) / -levels
    q, clipped = _codes(torch.trunc(b * _inverse(d) + (levels + 0.5)), 2 * levels - 1)
    dm[:, 0] = d[:, 0]
    _pack(q, out, 2 if kind == 3 else None)
    return clipped


def _q_1(kind: int, b: torch.Tensor, out: torch.Tensor, dm: torch.Tensor) -> int:
    top = 15 if kind == 2 else 31
    mx = _first(b, b.argmax(dim=-1, keepdim=True))  # the first of equal values, as ggml's C
    mn = _first(b, b.argmin(dim=-1, keepdim=True))
    d = (mx - mn) / top
    q, clipped = _codes(torch.trunc((b - mn) * _inverse(d) + 0.5), top)
    dm[:, 0], dm[:, 1] = d[:, 0], mn[:, 0]
    _pack(q, out, 4 if kind == 4 else None)
    return clipped


_TORCH = (
    _q8_0,
    lambda b, o, dm: _q_0(1, b, o, dm),
    lambda b, o, dm: _q_1(2, b, o, dm),
    lambda b, o, dm: _q_0(3, b, o, dm),
    lambda b, o, dm: _q_1(4, b, o, dm),
)
