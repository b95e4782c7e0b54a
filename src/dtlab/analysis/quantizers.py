"""Integer and block quantizers named by one short spec, compared on one tensor.

Spec grammar (``dtlab quantize --as``):

* integers: ``(u)intN[:OPTION...]`` with options ``tensor`` (the default), ``channel`` (one
  scale per index along the channel axis), ``gN`` (groups of N along the group axis),
  ``sym`` / ``asym`` (unsigned formats are always asymmetric), ``absmax`` (default), ``mse``,
  ``pNN.N`` (percentile clipping). For example ``int8``, ``int8:channel``, ``int4:g128``,
  ``int4:g128:mse``, ``uint8:asym``, ``int8:p99.9``.
* block formats: ``mxfp8_e4m3`` (``mxfp8``), ``mxfp8_e5m2``, ``mxfp6_e2m3`` (``mxfp6``),
  ``mxfp6_e3m2``, ``mxfp4``, ``mxint8``, ``nvfp4``, ``nf4``; MX formats take a scale rule
  ``:floor`` (default, the OCP spec), ``:ceil``, ``:even`` or ``:rceil``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

import torch

from dtlab.analysis.blocks import BLOCK_FORMATS, ScaleRule, block_metrics, get_block_format
from dtlab.analysis.distribution import InputSummary, summarize
from dtlab.analysis.intquant import ScaleMethod, int_metrics, int_quantize
from dtlab.analysis.metrics import ErrorMetrics
from dtlab.errors import OptionError
from dtlab.formats import IntFormat, get_format
from dtlab.modes import Rounding

_ALIASES = {"mxfp8": "mxfp8_e4m3", "mxfp6": "mxfp6_e2m3"}
_PCT = re.compile(r"p(\d+(?:\.\d+)?)")
_GROUP = re.compile(r"g(?:roup)?(\d+)")


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
        def key(r: QuantRow) -> float:
            v = r.metrics.sqnr_db
            return -v if v == v else float("inf")

        return tuple(sorted(self.rows, key=key))


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
    head, *opts = [t.strip().lower() for t in spec.split(":")]
    name = _ALIASES.get(head, head)
    if name in BLOCK_FORMATS:
        rule = ScaleRule.FLOOR
        for opt in opts:
            rule = ScaleRule.parse(opt)
        b = block_metrics(x, get_block_format(name), axis=group_axis, scale_rule=rule)
        detail = f"blocks of {get_block_format(name).block_size} along axis {group_axis}"
        if name.startswith("mx"):
            detail += f", scale rule {rule.value}"
        return QuantRow(spec, "block", detail, b.effective_bits, b.metrics)
    fmt = get_format(name)
    if not isinstance(fmt, IntFormat):
        raise OptionError(
            f"{spec!r}: quantize takes integer formats (int8, int4:g128, ...) or block formats "
            f"({', '.join(BLOCK_FORMATS)}); for {fmt.name} use dtlab cast"
        )
    axis: int | None = None
    group: int | None = None
    symmetric = fmt.signed
    method, pct = ScaleMethod.ABSMAX, 99.9
    for opt in opts:
        if opt == "tensor":
            axis, group = None, None
        elif opt == "channel":
            axis, group = channel_axis, None
        elif m := _GROUP.fullmatch(opt):
            axis, group = group_axis, int(m.group(1))
        elif opt in ("sym", "asym"):
            symmetric = opt == "sym"
        elif opt in ("absmax", "mse"):
            method = ScaleMethod(opt)
        elif m := _PCT.fullmatch(opt):
            method, pct = ScaleMethod.PERCENTILE, float(m.group(1))
        else:
            raise OptionError(
                f"{spec!r}: unknown option {opt!r}; use tensor, channel, gN, sym, asym, "
                "absmax, mse or pNN"
            )
    if axis is not None:
        axis = _check_axis(axis, x.dim(), spec)
    q = int_quantize(x, fmt, symmetric=symmetric, axis=axis, group_size=group, method=method,
                     percentile=pct, rounding=rounding)  # fmt: skip
    r = int_metrics(x, q)
    if axis is None:
        where = "per tensor"
    elif group is None:
        where = f"per channel along axis {axis}"
    else:
        where = f"groups of {group} along axis {axis}"
    how = "symmetric" if symmetric else "asymmetric"
    scale = method.value if method is not ScaleMethod.PERCENTILE else f"percentile {pct:g}"
    return QuantRow(spec, "int", f"{where}, {how}, {scale}", r.effective_bits, r.metrics)


def _check_axis(axis: int, ndim: int, spec: str) -> int:
    if not -ndim <= axis < ndim:
        raise OptionError(f"{spec!r}: axis {axis} is out of range for a {ndim}-d tensor")
    return axis % ndim
