"""The one reshape that groups and blocks share: the axis moved last, padded to whole groups,
split as (..., groups, size); and back.

>>> import torch
>>> g = to_groups(torch.arange(6.0).reshape(2, 3), 1, 2, fill=0.0)
>>> g.shape, g[0].tolist()
(torch.Size([2, 2, 2]), [[0.0, 1.0], [2.0, 0.0]])
>>> from_groups(g, 1, 3).tolist()
[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["from_groups", "to_groups"]


def to_groups(x: torch.Tensor, axis: int, size: int, *, fill: float) -> torch.Tensor:
    """x with ``axis`` (non-negative) moved last, padded with ``fill`` to a multiple of
    ``size``, split as (..., groups, size)."""
    moved = x.movedim(axis, -1)
    pad = -moved.shape[-1] % size
    if pad:
        moved = F.pad(moved, (0, pad), value=fill)
    return moved.reshape(*moved.shape[:-1], moved.shape[-1] // size, size)


def from_groups(groups: torch.Tensor, axis: int, length: int) -> torch.Tensor:
    """The inverse of ``to_groups``: the first ``length`` values, back along ``axis``."""
    flat = groups.reshape(*groups.shape[:-2], groups.shape[-2] * groups.shape[-1])
    return flat[..., :length].movedim(-1, axis)
