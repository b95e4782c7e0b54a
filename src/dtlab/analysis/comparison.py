"""Quantizers compared on one tensor: each integer or block quantizer, named by its spec, is
applied and measured, and the results ranked.

The specs are those of ``dtlab.formats.quantizer`` (``int8``, ``int8:channel``,
``int4:g128:mse``, ``uint8``, ``mxfp4:rceil``, ``nvfp4``, ``nf4``, ...): the same grammar, and
the same defaults, as ``dtlab model memory --to``. Channels run along ``channel_axis``,
groups and blocks along ``group_axis``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import torch

from dtlab.analysis.blockquant import block_metrics
from dtlab.analysis.format_fit import InputSummary, summarize
from dtlab.analysis.ggufquant import ggml_metrics
from dtlab.analysis.intquant import int_metrics, int_quantize
from dtlab.analysis.metrics import ErrorMetrics, by_sqnr
from dtlab.errors import OptionError
from dtlab.formats.blocks import BLOCK_FORMATS
from dtlab.formats.ggml import GGML_QUANTIZERS
from dtlab.formats.quantizer import Granularity, Quantizer, ScaleMethod
from dtlab.formats.quantizer_spec import parse_quantizer
from dtlab.modes import Rounding


@dataclass(frozen=True)
class QuantRow:
    spec: str  # as the user wrote it
    kind: str  # "int", "block" or "ggml"
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
    given = {
        Granularity.CHANNEL: channel_axis,
        Granularity.GROUP: group_axis,
        Granularity.BLOCK: group_axis,
    }.get(p.granularity)
    asked = p.granularity
    p = p.along(given).applied(x.dim())  # a 1-d tensor has one scale for its "channels"
    if p.ggml is not None:  # GGUF's block types: rows along group_axis
        g = ggml_metrics(x.movedim(p.axis if p.axis is not None else -1, -1), p)
        detail = f"GGML {p.ggml.name}, blocks of {p.ggml.block_size} along axis {p.axis}"
        return QuantRow(spec, "ggml", detail, g.effective_bits, g.metrics)
    if p.block is not None:
        b = block_metrics(x, p)
        detail = f"blocks of {p.block.block_size} along axis {p.axis}"
        if p.scale_rule is not None:
            detail += f", scale rule {p.scale_rule.value}"
        return QuantRow(spec, "block", detail, b.effective_bits, b.metrics)
    if not p.is_int:
        raise OptionError(
            f"{spec!r}: quantize takes integer formats (int8, int4:g128, ...), block formats "
            f"({', '.join(BLOCK_FORMATS)}) or GGML types ({', '.join(GGML_QUANTIZERS)}); "
            f"for {p.format.name} use dtlab cast"
        )
    r = int_metrics(x, int_quantize(x, p, rounding=rounding))
    return QuantRow(spec, "int", _int_detail(p, asked), r.effective_bits, r.metrics)


def _int_detail(p: Quantizer, asked: Granularity) -> str:
    """In words, the quantizer as applied; ``asked`` is the granularity the spec named."""
    if p.axis is None:
        where = "per tensor"
        if asked is Granularity.CHANNEL:
            where += " (rank < 2: no channels)"
    elif p.group_size is None:
        where = f"per channel along axis {p.axis}"
    else:
        where = f"groups of {p.group_size} along axis {p.axis}"
    how = "symmetric" if p.symmetric else "asymmetric"
    scale = p.clipping.value
    if p.clipping is ScaleMethod.PERCENTILE:
        scale = f"percentile {p.percentile:g}"
    return f"{where}, {how}, {scale}"
