"""Integer and block quantizers named by one short spec, compared on one tensor.

The specs are those of ``dtlab.analysis.quantspec`` (``int8``, ``int8:channel``,
``int4:g128:mse``, ``uint8``, ``mxfp4:rceil``, ``nvfp4``, ``nf4``, ...): the same grammar, and
the same defaults, as ``dtlab model memory --to``. Channels run along ``channel_axis``,
groups and blocks along ``group_axis``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import torch

from dtlab.analysis.blocks import BLOCK_FORMATS, block_metrics
from dtlab.analysis.distribution import InputSummary, summarize
from dtlab.analysis.intquant import ScaleMethod, int_metrics, int_quantize
from dtlab.analysis.metrics import ErrorMetrics, by_sqnr
from dtlab.analysis.quantspec import BlockSpec, Layout, parse_quantizer
from dtlab.errors import OptionError
from dtlab.formats import IntFormat
from dtlab.modes import Rounding


@dataclass(frozen=True)
class QuantRow:
    spec: str  # as the user wrote it
    kind: str  # "int" or "block"
    detail: str  # what was done, in words
    effective_bits: Fraction  # storage per value, scales included
    metrics: ErrorMetrics


@dataclass(frozen=True)
class QuantAnalysis:
    input: InputSummary
    channel_axis: int
    group_axis: int
    rows: tuple[QuantRow, ...]

    def ranked(self) -> tuple[QuantRow, ...]:
        """Best SQNR first (NaN SQNR last)."""
        return tuple(sorted(self.rows, key=lambda r: by_sqnr(r.metrics.sqnr_db)))


def quantize_analysis(
    x: torch.Tensor,
    specs: list[str],
    *,
    channel_axis: int = 0,
    group_axis: int = -1,
    rounding: Rounding = Rounding.NEAREST_EVEN,
) -> QuantAnalysis:
    """Quantize x with each spec and measure it.

    >>> import torch
    >>> w = torch.randn(64, 256, generator=torch.Generator().manual_seed(0))
    >>> a = quantize_analysis(w, ["int8", "int4:g128", "mxfp4"])
    >>> [(r.spec, str(r.effective_bits)) for r in a.ranked()]
    [('int8', '4097/512'), ('mxfp4', '17/4'), ('int4:g128', '17/4')]
    """
    if x.dim() == 0:
        raise OptionError("quantize needs a tensor with at least one dimension")
    rows = tuple(_one(x, s, channel_axis, group_axis, rounding) for s in specs)
    return QuantAnalysis(summarize(x), channel_axis, group_axis, rows)


def _one(
    x: torch.Tensor, spec: str, channel_axis: int, group_axis: int, rounding: Rounding
) -> QuantRow:
    p = parse_quantizer(spec)
    if isinstance(p, BlockSpec):
        b = block_metrics(x, p.block, axis=group_axis, scale_rule=p.scale_rule)
        detail = f"blocks of {p.block.block_size} along axis {group_axis}"
        if p.block.is_mx:
            detail += f", scale rule {p.scale_rule.value}"
        return QuantRow(spec, "block", detail, b.effective_bits, b.metrics)
    if not isinstance(p.format, IntFormat):
        raise OptionError(
            f"{spec!r}: quantize takes integer formats (int8, int4:g128, ...) or block formats "
            f"({', '.join(BLOCK_FORMATS)}); for {p.format.name} use dtlab cast"
        )
    axis = {Layout.CHANNEL: channel_axis, Layout.GROUP: group_axis}.get(p.layout)
    if axis is not None:
        axis = _check_axis(axis, x.dim(), spec)
    q = int_quantize(x, p.format, symmetric=p.symmetric, axis=axis, group_size=p.group_size,
                     method=p.method, percentile=p.percentile, rounding=rounding)  # fmt: skip
    r = int_metrics(x, q)
    if axis is None:
        where = "per tensor"
    elif p.group_size is None:
        where = f"per channel along axis {axis}"
    else:
        where = f"groups of {p.group_size} along axis {axis}"
    how = "symmetric" if p.symmetric else "asymmetric"
    scale = p.method.value
    if p.method is ScaleMethod.PERCENTILE:
        scale = f"percentile {p.percentile:g}"
    return QuantRow(spec, "int", f"{where}, {how}, {scale}", r.effective_bits, r.metrics)


def _check_axis(axis: int, ndim: int, spec: str) -> int:
    if not -ndim <= axis < ndim:
        raise OptionError(f"{spec!r}: axis {axis} is out of range for a {ndim}-d tensor")
    return axis % ndim
