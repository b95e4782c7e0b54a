"""The checks every tensor entry point makes, with one message each.

>>> import torch
>>> check_float_tensor(torch.ones(2), "quantize").dtype
torch.float32
>>> normalize_axis(-1, 3, "quantize")
2
"""

from __future__ import annotations

import torch

from dtlab.errors import OptionError
from dtlab.formats.quantizer import normalize_axis  # torch-free, shared with the descriptors

__all__ = ["FLOAT_DTYPES", "check_float_tensor", "normalize_axis"]

FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def check_float_tensor(x: object, what: str, *, min_dim: int = 0) -> torch.Tensor:
    """x itself, when it is a float32/float64/float16/bfloat16 tensor of at least ``min_dim``
    dimensions; otherwise an OptionError naming ``what`` needed it."""
    if not isinstance(x, torch.Tensor) or x.dtype not in FLOAT_DTYPES:
        got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise OptionError(
            f"{what} needs a floating-point tensor (float32/float64/float16/bfloat16), not {got}"
        )
    if x.dim() < min_dim:
        raise OptionError(f"{what} needs a tensor with at least {min_dim} dimension(s)")
    return x
