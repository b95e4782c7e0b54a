"""Dequantize pre-quantized weights as their libraries do, a piece at a time.

Each family's reader yields the weight's values in its library's output dtype, in the order
the codes are stored, one piece of at most about ``max_bytes`` of float32 at a time: GPTQ and
AWQ by input rows (their codes are stored ``[in, out]``, the transpose of the nn.Linear
weight), the others in the logical weight's own C order. Per-group statistics (scales, zero
points, ``g_idx``, absmax) are read whole: a few percent of the weight at most. The exact
arithmetic and the code it follows are in docs/prequantized.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from dtlab.checkpoint.handle import Checkpoint
from dtlab.checkpoint.header import CheckpointError, show
from dtlab.checkpoint.prequant.layout import Family, PackedWeight, ceil_div
from dtlab.checkpoint.reader import read_range, read_tensor
from dtlab.formats.blocks import NF4_TABLE

__all__ = ["packed_chunks", "read_packed"]

AWQ_REVERSE_ORDER = (0, 4, 1, 5, 2, 6, 3, 7)  # AutoAWQ packing_utils: undoes [0,2,4,6,1,3,5,7]
FP4_E2M1 = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0)
BNB_FP4 = (0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0)  # codes 8-15 negate 0-7 (get_4bit_type)
INT8_INV_127 = 7.874015718698502e-3  # bitsandbytes int8_vectorwise_dequant's 1/127
_TORCH = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32}

Pieces = Iterator[torch.Tensor]


def packed_chunks(ckpt: Checkpoint, w: PackedWeight, max_bytes: int) -> Pieces:
    """The dequantized values as 1-D float32 pieces (exact: every output dtype fits)."""
    return (p.reshape(-1).to(torch.float32) for p in _READERS[w.family](ckpt, w, max_bytes))


def read_packed(ckpt: Checkpoint, w: PackedWeight) -> torch.Tensor:
    """The whole dequantized weight, in its logical shape and its library's dtype."""
    pieces = [p.reshape(-1) for p in _READERS[w.family](ckpt, w, 1 << 26)]
    flat = torch.cat(pieces) if pieces else torch.empty(0, dtype=_TORCH[w.dtype])
    if w.family in (Family.GPTQ, Family.AWQ):
        out, inputs = w.shape
        return flat.reshape(inputs, out).T.contiguous()
    return flat.reshape(w.shape)


def _per(max_bytes: int, values_per_row: int) -> int:
    return max(1, max_bytes // (4 * max(values_per_row, 1)))


def _unpack_cols(q: torch.Tensor, bits: int) -> torch.Tensor:
    """int32 [r, c] -> [r, c * 32 / bits]: field i of each int32 in bits [bits*i, bits*(i+1))."""
    shifts = torch.arange(0, 32, bits, dtype=torch.int32)
    return ((q.unsqueeze(2) >> shifts) & ((1 << bits) - 1)).reshape(q.shape[0], -1)


def _unpack_3bit(q: torch.Tensor, dim: int) -> torch.Tensor:
    """AutoGPTQ's 3-bit packing along ``dim``: three int32 hold 32 codes as one little-endian
    96-bit stream, code j in bits [3j, 3j + 3) (codes 10 and 21 straddle two int32)."""
    q = q.movedim(dim, -1)
    words = q.reshape(*q.shape[:-1], -1, 3).to(torch.int64) & 0xFFFFFFFF
    j = torch.arange(32) * 3
    word, off = j // 32, j % 32
    nxt = torch.clamp(word + 1, max=2)
    pair = words[..., word] | (words[..., nxt] << 32) * (word < 2)
    codes = (pair >> off) & 7
    return codes.reshape(*q.shape[:-1], -1).movedim(-1, dim).to(torch.int32)


def _gptq(ckpt: Checkpoint, w: PackedWeight, max_bytes: int) -> Pieces:
    bits = w.scheme.bits
    qweight = w.need("qweight")
    rows, out = qweight.shape
    step = 3 if bits == 3 else 1  # int32 rows that hold whole codes
    pf, mask = 32 * step // bits, (1 << bits) - 1
    scales, zeros, g_idx = _gptq_groups(ckpt, w)
    shifts = torch.arange(0, 32, max(bits, 1), dtype=torch.int32).view(1, -1, 1)
    per = step * _per(max_bytes, out * pf)
    for r0 in range(0, rows, per):
        r1 = min(rows, r0 + per)
        q = read_range(ckpt, qweight.name, r0 * out, r1 * out).view(r1 - r0, out)
        if bits == 3:
            codes = _unpack_3bit(q, 0)
        else:
            codes = ((q.unsqueeze(1) >> shifts) & mask).reshape(-1, out)
        yield _apply_groups(codes, zeros, scales, r0 * pf // step, w.scheme.group_size, g_idx)


def _gptq_groups(
    ckpt: Checkpoint, w: PackedWeight
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Scales and zero points [groups, out], and g_idx unless it is rows in order."""
    bits, size = w.scheme.bits, w.scheme.group_size
    scales = read_tensor(ckpt, w.need("scales").name)
    packed_zeros = read_tensor(ckpt, w.need("qzeros").name)
    zeros = _unpack_3bit(packed_zeros, 1) if bits == 3 else _unpack_cols(packed_zeros, bits)
    if w.scheme.zero_plus_one:  # AutoGPTQ: (stored & mask) + 1, up to 2^bits
        zeros = zeros + 1
    g_entry = w.part("g_idx")
    if g_entry is None:
        return scales, zeros, None
    g_idx = read_tensor(ckpt, g_entry.name).long()
    if g_idx.numel() and (int(g_idx.min()) < 0 or int(g_idx.max()) >= scales.shape[0]):
        raise CheckpointError(
            f"{show(w.file)}: {g_entry.name!r} names groups outside [0, {scales.shape[0]})"
        )
    in_order = torch.equal(g_idx, torch.arange(g_idx.numel()) // size)
    return scales, zeros, None if in_order else g_idx


def _apply_groups(
    codes: torch.Tensor,
    zeros: torch.Tensor,
    scales: torch.Tensor,
    first: int,
    size: int,
    g_idx: torch.Tensor | None,
) -> torch.Tensor:
    """scale * (code - zero) for input rows first, first + 1, ...: each in its group of
    ``size`` rows, or where ``g_idx`` sends it (act-order). The integer difference goes to the
    scales' dtype and is multiplied there: one rounding, as GPTQ's and AWQ's torch code."""
    if g_idx is not None:
        gi = g_idx[first : first + codes.shape[0]]
        return scales[gi] * (codes - zeros[gi]).to(scales.dtype)
    out = torch.empty(codes.shape, dtype=scales.dtype)
    r, n = 0, codes.shape[0]
    while r < n:  # one group's rows at a time: no gathered copies of scales and zeros
        g = (first + r) // size
        end = min(n, (g + 1) * size - first)
        torch.mul(scales[g], (codes[r:end] - zeros[g]).to(scales.dtype), out=out[r:end])
        r = end
    return out


def _awq(ckpt: Checkpoint, w: PackedWeight, max_bytes: int) -> Pieces:
    qweight = w.need("qweight")
    inputs, cols = qweight.shape
    out = cols * 8
    order = torch.arange(out).view(-1, 8)[:, list(AWQ_REVERSE_ORDER)].reshape(-1)
    scales = read_tensor(ckpt, w.need("scales").name)
    zeros = _unpack_cols(read_tensor(ckpt, w.need("qzeros").name), 4)[:, order]
    per = _per(max_bytes, out)
    for r0 in range(0, inputs, per):
        r1 = min(inputs, r0 + per)
        q = read_range(ckpt, qweight.name, r0 * cols, r1 * cols).view(r1 - r0, cols)
        codes = _unpack_cols(q, 4)[:, order]
        yield _apply_groups(codes, zeros, scales, r0, w.scheme.group_size, None)


def _bnb_table(name: str) -> torch.Tensor:
    values = NF4_TABLE if name == "nf4" else BNB_FP4 + tuple(-v for v in BNB_FP4)
    data = torch.tensor(values, dtype=torch.float32)
    return data.div_(data.abs().max())  # functional.get_4bit_type


def _bnb_absmax(ckpt: Checkpoint, w: PackedWeight) -> torch.Tensor:
    absmax = read_tensor(ckpt, w.need("absmax").name)
    nb = w.scheme.nested_block
    if not nb:
        return absmax.float()
    code = read_tensor(ckpt, w.need("nested_quant_map").name).float()
    nested = read_tensor(ckpt, w.need("nested_absmax").name).float()
    vals = code[absmax.long()]  # dequantize_blockwise, default backend
    full = vals.numel() - vals.numel() % nb
    out = torch.cat(
        [(vals[:full].reshape(-1, nb) * nested[: full // nb].view(-1, 1)).reshape(-1)]
        + ([vals[full:] * nested[full // nb]] if full < vals.numel() else [])
    )
    return out + torch.tensor(w.scheme.nested_offset, dtype=torch.float32)


def _bnb4(ckpt: Checkpoint, w: PackedWeight, max_bytes: int) -> Pieces:
    n, size, dtype = w.numel, w.scheme.group_size, _TORCH[w.dtype]
    table, absmax = _bnb_table(w.scheme.table), _bnb_absmax(ckpt, w)
    weight = w.need("weight")
    whole = None if weight.dtype == "U8" else read_tensor(ckpt, weight.name).reshape(-1)
    per = _per(max_bytes, size)
    for b0 in range(0, ceil_div(n, size), per):
        v0, v1 = b0 * size, min(n, (b0 + per) * size)
        if whole is None:
            raw = read_range(ckpt, weight.name, v0 // 2, ceil_div(v1, 2))
        else:  # quant_storage other than uint8: the same bytes, another dtype
            raw = whole.view(torch.uint8)[v0 // 2 : ceil_div(v1, 2)]
        codes = torch.stack([raw >> 4, raw & 0xF], dim=1).reshape(-1)[: v1 - v0]  # high first
        scale = absmax[b0 : b0 + per].repeat_interleave(size)[: v1 - v0]
        yield (table[codes.long()] * scale).to(dtype)


def _bnb8(ckpt: Checkpoint, w: PackedWeight, max_bytes: int) -> Pieces:
    weight = w.need("weight")
    rows, cols = weight.shape
    scb = read_tensor(ckpt, w.need("SCB").name)
    per = _per(max_bytes, cols)
    for r0 in range(0, rows, per):
        r1 = min(rows, r0 + per)
        a = read_range(ckpt, weight.name, r0 * cols, r1 * cols).view(r1 - r0, cols)
        yield a * scb[r0:r1].view(-1, 1) * INT8_INV_127


def _fp8(ckpt: Checkpoint, w: PackedWeight, max_bytes: int) -> Pieces:
    weight, br, bc = w.need("weight"), *w.scheme.block
    rows, cols = weight.shape
    scale = read_tensor(ckpt, w.need("scale").name)
    scale = scale.reshape(ceil_div(rows, br), ceil_div(cols, bc))
    zp = w.part("zero_point")
    zero = None if zp is None else read_tensor(ckpt, zp.name).reshape(scale.shape)
    col_block = torch.arange(cols) // bc
    per = _per(max_bytes, cols)
    for r0 in range(0, rows, per):
        r1 = min(rows, r0 + per)
        x = read_range(ckpt, weight.name, r0 * cols, r1 * cols).view(r1 - r0, cols)
        row_block = torch.arange(r0, r1) // br
        if w.family is Family.FP8_BLOCK:  # DeepSeek-V3 weight_dequant: fp32 product -> bf16
            v = _times_blocks(x.to(torch.float32), scale[row_block], bc)
            yield v.to(torch.bfloat16)
            continue
        v = x.to(scale.dtype)  # compressed-tensors _dequantize: in the scale's dtype
        if zero is not None:
            v = v - zero[row_block][:, col_block].to(scale.dtype)
        yield _times_blocks(v, scale[row_block], bc)


def _times_blocks(v: torch.Tensor, s: torch.Tensor, bc: int) -> torch.Tensor:
    """v [r, cols] times s [r, ceil(cols / bc)] in place, column j by s[:, j // bc]: the same
    products as expanding s to v's shape (v's dtype is the product's)."""
    cols = v.shape[1]
    full = cols - cols % bc
    blocks = full // bc
    torch.unflatten(v[:, :full], -1, (blocks, bc)).mul_(s[:, :blocks, None])
    if full < cols:
        v[:, full:].mul_(s[:, blocks : blocks + 1])
    return v


def _mxfp4(ckpt: Checkpoint, w: PackedWeight, max_bytes: int) -> Pieces:
    blocks, scales = w.need("blocks"), w.need("scales")
    rows = scales.numel
    lut = torch.tensor(FP4_E2M1, dtype=torch.bfloat16)
    per = _per(max_bytes, 32)
    for r0 in range(0, rows, per):
        r1 = min(rows, r0 + per)
        blk = read_range(ckpt, blocks.name, r0 * 16, r1 * 16).view(r1 - r0, 16)
        exp = read_range(ckpt, scales.name, r0, r1).to(torch.int32).view(-1, 1) - 127
        sub = torch.empty(r1 - r0, 32, dtype=torch.bfloat16)
        sub[:, 0::2] = lut[(blk & 0x0F).long()]  # convert_moe_packed_tensors: low nibble first
        sub[:, 1::2] = lut[(blk >> 4).long()]
        yield torch.ldexp(sub, exp, out=sub)


_READERS: dict[Family, Callable[[Checkpoint, PackedWeight, int], Pieces]] = {
    Family.GPTQ: _gptq,
    Family.AWQ: _awq,
    Family.BNB_4BIT: _bnb4,
    Family.BNB_INT8: _bnb8,
    Family.FP8_BLOCK: _fp8,
    Family.CT_FP8: _fp8,
    Family.MXFP4: _mxfp4,
}
