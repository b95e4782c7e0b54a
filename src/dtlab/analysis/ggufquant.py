"""GGML's legacy block quantizers on torch tensors: ``q8_0``, ``q4_0``, ``q4_1``, ``q5_0`` and
``q5_1``, byte for byte what gguf-py's ``gguf.quants.quantize`` writes (tests/test_gguf.py
compares the bytes and the dequantized values on random and adversarial blocks).

Each block of 32 values along the last axis (ggml's rows) is quantized in float32, with the
steps and the order of gguf-py's numpy code (``gguf/quants.py``, itself bit-exact with
``quantize_row_*_ref`` of ggml-quants.c); docs/gguf.md has the block layouts:

* q8_0: ``d = amax / 127``, ``id = 1/d`` (0 when d is 0), ``q = round(x * id)`` with halves
  away from zero (gguf-py's ``np_roundf``, C's ``roundf``); d stored as float16.
* q4_0 / q5_0: ``max`` is the value of largest magnitude, sign kept (the first such one on
  ties, as ``argmax``); ``d = max / -8`` (``-16``); ``q = trunc(x * id + 8.5)`` (``16.5``),
  clipped to 15 (31): the block's extreme, opposite in sign to max, would be 16 (32).
* q4_1 / q5_1: ``d = (max - min) / 15`` (31), ``q = trunc((x - min) * id + 0.5)`` clipped to
  15 (31); d and min stored as float16. The codes are chosen with the float32 d and min, the
  values decoded with their float16 roundings, as ggml does.

Where the references disagree: a block whose min (or max) is a zero present with both signs.
ggml's C keeps the first of equal values (strict ``<``), so m's sign is the first zero's;
gguf-py's ``blocks.min`` is numpy's SIMD reduction, whose pick among equal zeros depends on
lanes (on this machine's numpy 2.4 build: roughly the last one). dtlab follows the C rule; the
two differ in the sign bit of m (0x0000 or 0x8000), never in a dequantized value. A block
whose ``1 / d`` overflows float32 (|x| below about 3.7e-37) scales to inf or NaN, which ggml
and gguf-py convert to an integer with undefined results; x86 gives code 0, and dtlab writes
code 0 everywhere; d rounds to 0 in float16 there, so every value decodes to 0 either way.

Packing: 4-bit codes two to a byte, value i in the low nibble and value i + 16 in the high
one; q5's fifth bits in a little-endian u32 ``qh``, bit i for value i.

A row whose length is not a multiple of 32 is padded by repeating its last value, which
changes no block statistic (max, min, the first largest magnitude), so its values are coded
as a short block would be; ggml itself takes whole blocks only. Inputs are rounded to float32
first, as gguf-py does. NaN or inf in a block give what IEEE float32 arithmetic gives
(gguf-py converts NaN to an integer, which numpy leaves undefined): not compared.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction

import torch

from dtlab.analysis.metrics import ErrorMetrics, Partial, measure, measure_partial
from dtlab.errors import OptionError
from dtlab.formats.ggml import GGML_QUANTIZERS, GGMLType, get_ggml_type
from dtlab.formats.quantizer import Quantizer
from dtlab.kernels.checks import check_float_tensor
from dtlab.kernels.ggml import ggml_quantize_blocks

__all__ = ["GGMLQuantized", "GGMLReport", "ggml_dequantize", "ggml_metrics", "ggml_quantize"]


@dataclass(frozen=True, eq=False)
class GGMLQuantized:
    """A tensor in a GGML type: ``data`` is the raw bytes, one row of blocks per row of x
    (x's shape with the last axis counting bytes), as a GGUF file stores them."""

    type: GGMLType
    data: torch.Tensor
    shape: tuple[int, ...]
    dtype: torch.dtype

    def dequantize(self) -> torch.Tensor:
        """The values, in x's shape and dtype."""
        values = ggml_dequantize(self.data.reshape(-1), self.type)
        padded = values.reshape(*self.shape[:-1], -1)
        return padded[..., : self.shape[-1]].to(self.dtype).contiguous()


@dataclass(frozen=True)
class GGMLReport:
    """What a GGML quantizer did: ``clipped`` counts the codes cut to the top of the range
    (each block's extreme opposite to max in q4_0/q5_0, rounding excess in the others)."""

    format: str
    blocks: int
    clipped: int
    effective_bits: Fraction
    metrics: ErrorMetrics


def _as_type(quantizer: Quantizer | GGMLType | str) -> GGMLType:
    t = quantizer.ggml if isinstance(quantizer, Quantizer) else get_ggml_type(quantizer)
    if t is None or t.name.lower() not in GGML_QUANTIZERS:
        name = quantizer.name if isinstance(quantizer, Quantizer) else str(quantizer)
        raise OptionError(
            f"{name!r}: dtlab quantizes tensors to the GGML types {', '.join(GGML_QUANTIZERS)}; "
            "the k-quants and i-quants are dtlab model memory targets only"
        )
    return t


def ggml_quantize(x: torch.Tensor, quantizer: Quantizer | GGMLType | str) -> GGMLQuantized:
    """x in a GGML type, blocks along the last axis.

    >>> import torch
    >>> q = ggml_quantize(torch.tensor([1.0, -2.0, 0.5]), "q8_0")
    >>> q.data.shape, q.dequantize().tolist()
    (torch.Size([34]), [1.0078125, -1.9998779296875, 0.50390625])
    """
    return _quantize(x, _as_type(quantizer))[0]


def ggml_metrics(x: torch.Tensor, quantizer: Quantizer | GGMLType | str) -> GGMLReport:
    """Error metrics of x after a GGML quantizer, with the clipped codes as overflow."""
    t = _as_type(quantizer)
    q, clipped = _quantize(x, t)
    blocks = q.data.numel() // t.type_size
    return GGMLReport(
        t.name.lower(),
        blocks,
        clipped,
        t.bits_per_weight,
        measure(x, q.dequantize(), overflow=clipped),
    )


def ggml_partial(x: torch.Tensor, quantizer: Quantizer | GGMLType | str) -> Partial:
    """The sums of ``ggml_metrics`` for x, to merge with those of other parts of a tensor
    (each part holding whole rows, or whole blocks)."""
    q, clipped = _quantize(x, _as_type(quantizer))
    p = measure_partial(x, q.dequantize())
    return dataclasses.replace(p, overflow=p.overflow + clipped)


def _quantize(x: torch.Tensor, t: GGMLType) -> tuple[GGMLQuantized, int]:
    check_float_tensor(x, "GGML quantization", min_dim=1)
    rows = x.detach().float().reshape(-1, x.shape[-1])
    pad = -rows.shape[-1] % t.block_size
    if pad and rows.shape[-1]:
        rows = torch.cat([rows, rows[:, -1:].expand(-1, pad)], dim=1)
    out, clipped = ggml_quantize_blocks(rows.reshape(-1, t.block_size), t)
    data = out.reshape(*x.shape[:-1], -1) if x.dim() > 1 else out.reshape(-1)
    return GGMLQuantized(t, data, tuple(x.shape), x.dtype), clipped


def ggml_dequantize(data: torch.Tensor, t: GGMLType | str) -> torch.Tensor:
    """Raw bytes of whole blocks (uint8, any shape) -> their float32 values, flat, with
    gguf-py's ``dequantize`` formulas: ``d * q`` (``d * (q - 8)``, ``d * (q - 16)``) and
    ``d * q + m``, d and m read as float16."""
    t = _as_type(t)
    blocks = data.reshape(-1, t.type_size)
    d = blocks[:, :2].contiguous().view(torch.float16).float()
    if t.name == "Q8_0":
        return (blocks[:, 2:].contiguous().view(torch.int8).float() * d).reshape(-1)
    has_min = t.name in ("Q4_1", "Q5_1")
    at = 4 if has_min else 2
    qs = blocks[:, -16:].long()
    q = torch.cat([qs & 0x0F, qs >> 4], dim=1)
    if t.name in ("Q5_0", "Q5_1"):
        qh = blocks[:, at : at + 4].long()
        bits = (qh.unsqueeze(-1) >> torch.arange(8, device=data.device)) & 1
        q = q | (bits.reshape(-1, 32) << 4)
    if not has_min:
        return (d * (q - (16 if t.name == "Q5_0" else 8)).float()).reshape(-1)
    m = blocks[:, 2:4].contiguous().view(torch.float16).float()
    return (d * q.float() + m).reshape(-1)
