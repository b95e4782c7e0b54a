"""What a tensor becomes in a target, a part at a time: a format (an elementwise cast) or a
quantizer (scales per tensor, channel, group or block), in the grammar of ``dtlab quantize``
and ``dtlab model memory --to``.

A quantizer's scale depends on a whole slice of the tensor (a group, a block, a channel, or
all of it), so a tensor streamed in parts must be cut between slices: ``slice_values`` is
the number of consecutive values (in C order) that belong together, and a part holds a
whole number of them. Per-tensor scales, NVFP4's tensor scale and slices across the last
axis need the tensor whole.
"""

from __future__ import annotations

import math

import torch

from dtlab.analysis.blockquant import block_partial
from dtlab.analysis.elementwise import format_partial
from dtlab.analysis.ggufquant import ggml_partial
from dtlab.analysis.groups import to_groups
from dtlab.analysis.intquant import int_partial
from dtlab.analysis.metrics import Partial
from dtlab.formats import Format
from dtlab.formats.quantizer import Granularity, Quantizer, ScaleMethod
from dtlab.formats.quantizer_spec import Target

Range = tuple[float, float]  # the finite values' [lo, hi], 0 included


def tensor_pass(target: Target, shape: tuple[int, ...]) -> bool:
    """Whether ``target`` needs a first pass over the tensor: a per-tensor absmax scale (int8)
    or NVFP4's tensor scale, whose parts then share the whole tensor's range."""
    if isinstance(target, Format):
        return False
    q = target.applied(len(shape))
    if q.block is not None:
        return q.block.tensor_scale
    return q.axis is None and q.clipping is ScaleMethod.ABSMAX


def slice_values(target: Target, shape: tuple[int, ...]) -> int:
    """How many consecutive values share a scale and must stay together (1 for a cast)."""
    if isinstance(target, Format):
        return 1
    numel = math.prod(shape)
    q = target.applied(len(shape))
    if q.axis is None:  # per tensor: any cut, with a first pass, or the tensor whole
        return 1 if tensor_pass(target, shape) else numel
    if q.granularity is Granularity.CHANNEL:
        return math.prod(shape[1:]) if q.axis == 0 else numel
    if q.axis != len(shape) - 1:  # groups across rows: the tensor whole
        return numel
    width = q.block.block_size if q.block is not None else q.group_size
    if q.ggml is not None:
        width = q.ggml.block_size
    assert width is not None  # a group granularity has its size
    return width if shape[-1] % width == 0 else shape[-1]


def tensor_range(part: torch.Tensor, target: Target, shape: tuple[int, ...]) -> Range:
    """The first pass over one part (see ``tensor_pass``): merge with ``merged_range``."""
    q = target.applied(len(shape)) if isinstance(target, Quantizer) else None
    if q is not None and q.block is not None:  # NVFP4: |x| of the blocks without NaN or inf
        x, q = _cut(part, q, shape)
        assert q.block is not None and q.axis is not None
        blocks = to_groups(x, q.axis, q.block.block_size, fill=0.0)
        kept = blocks[blocks.isfinite().all(dim=-1)]
        amax = float(kept.abs().amax()) if kept.numel() else 0.0
        return -amax, amax
    finite = part[part.isfinite()]
    if not finite.numel():
        return 0.0, 0.0
    lo, hi = torch.aminmax(finite)
    return min(float(lo), 0.0), max(float(hi), 0.0)


def merged_range(a: Range | None, b: Range) -> Range:
    return b if a is None else (min(a[0], b[0]), max(a[1], b[1]))


def target_partial(
    part: torch.Tensor, target: Target, shape: tuple[int, ...], whole: Range | None = None
) -> Partial:
    """The sums of ``part`` (flat values in C order of a tensor of ``shape``, starting at a
    slice boundary and holding whole slices) in ``target``; ``whole`` is the tensor's range
    from the first pass, for the targets that need one."""
    if isinstance(target, Format):
        return format_partial(part, target)
    x, q = _cut(part, target.applied(len(shape)), shape)
    if q.ggml is not None:  # rows of blocks along the last axis
        return ggml_partial(x, q)
    if q.block is not None:
        amax = None if whole is None else max(-whole[0], whole[1])
        return block_partial(x, q, tensor_amax=amax)
    if whole is not None and q.symmetric:
        amax = max(-whole[0], whole[1])
        whole = (-amax, amax)
    return int_partial(x, q, clip_range=whole)


def _cut(
    part: torch.Tensor, q: Quantizer, shape: tuple[int, ...]
) -> tuple[torch.Tensor, Quantizer]:
    """The part shaped so that ``q`` (as it applies to ``shape``) scales it as in the tensor."""
    unit = slice_values(q, shape)
    if q.axis is None:
        return (part.reshape(shape) if unit > 1 else part), q
    if unit == math.prod(shape):
        return part.reshape(shape), q
    if q.granularity is Granularity.CHANNEL:
        return part.reshape(-1, *shape[1:]), q.along(0)
    return part.reshape(-1, unit), q.along(1)
