"""Dense storage of sub-byte codes.

Bit order: element 0 in the lowest bits, as torch's float4_e2m1fn_x2
(torch/headeronly/util/Float4_e2m1fn_x2.h), NVIDIA and ONNX store fp4 and int4. Generally the
codes form one little-endian bit stream: element i occupies bits [i*b, (i+1)*b) of the
stream, byte k holds stream bits [8k, 8k+8). So two 4-bit codes share a byte (element 0 in
bits 3..0), four 2-bit codes share a byte, four 6-bit codes fill three bytes, and a partial
last byte is padded with zeros. (bitsandbytes and tinygemm put element 0 in the high
nibble instead: swap nibbles to read theirs.)
"""

from __future__ import annotations

import torch

from dtlab.errors import OptionError
from dtlab.formats.quantizer import packed_size


def _check(bits: int) -> None:
    if not isinstance(bits, int) or not 1 <= bits <= 8:
        raise OptionError(f"packing is for codes of 1..8 bits, not {bits}")


def pack(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack the low ``bits`` bits of each code (flattened) into a uint8 tensor.

    >>> import torch
    >>> pack(torch.tensor([0x1, 0x2, 0x3], dtype=torch.uint8), 4)
    tensor([33,  3], dtype=torch.uint8)
    """
    _check(bits)
    c = codes.reshape(-1).to(torch.int64) & ((1 << bits) - 1)
    n = c.numel()
    if bits == 8:
        return c.to(torch.uint8)
    per = {1: 8, 2: 4, 4: 2}.get(bits)
    if per is not None:  # whole codes per byte: shift and add
        c = torch.nn.functional.pad(c, (0, -n % per)).reshape(-1, per)
        shifts = torch.arange(per, device=c.device) * bits
        return (c << shifts).sum(dim=1).to(torch.uint8)
    # general case: expand to a bit stream, little-endian
    stream = (c.unsqueeze(1) >> torch.arange(bits, device=c.device)) & 1
    stream = torch.nn.functional.pad(stream.reshape(-1), (0, -(n * bits) % 8)).reshape(-1, 8)
    return (stream << torch.arange(8, device=c.device)).sum(dim=1).to(torch.uint8)


def unpack(packed: torch.Tensor, bits: int, count: int) -> torch.Tensor:
    """The first ``count`` codes of a packed uint8 tensor, as uint8.

    >>> import torch
    >>> unpack(torch.tensor([33, 3], dtype=torch.uint8), 4, 3)
    tensor([1, 2, 3], dtype=torch.uint8)
    """
    _check(bits)
    if packed.dtype != torch.uint8:
        raise OptionError(f"packed codes are uint8, not {packed.dtype}")
    need = packed_size(count, bits)
    if count < 0 or packed.numel() < need:
        raise OptionError(f"{count} codes of {bits} bits need {need} bytes, got {packed.numel()}")
    b = packed.reshape(-1)[:need]
    if bits == 8:
        return b.clone()
    mask = (1 << bits) - 1
    if 8 % bits == 0:  # whole codes per byte: a shift each, in uint8 (checkpoint chunks are big)
        shifts = torch.arange(0, 8, bits, dtype=torch.uint8, device=b.device)
        return ((b.unsqueeze(1) >> shifts) & mask).reshape(-1)[:count]
    if bits == 6:  # four codes in every three bytes
        g = torch.nn.functional.pad(b, (0, -b.numel() % 3)).reshape(-1, 3).to(torch.int32)
        word = g[:, 0] | (g[:, 1] << 8) | (g[:, 2] << 16)
        shifts = torch.arange(0, 24, 6, dtype=torch.int32, device=b.device)
        return ((word.unsqueeze(1) >> shifts) & mask).reshape(-1)[:count].to(torch.uint8)
    # general case: through a bit stream, little-endian
    stream = (b.unsqueeze(1) >> torch.arange(8, dtype=torch.uint8, device=b.device)) & 1
    stream = stream.reshape(-1)[: count * bits].reshape(count, bits).to(torch.int32)
    return (
        (stream << torch.arange(bits, dtype=torch.int32, device=b.device))
        .sum(dim=1)
        .to(torch.uint8)
    )
