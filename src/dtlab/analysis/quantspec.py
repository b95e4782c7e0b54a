"""One grammar for quantizer specs: ``dtlab quantize --as`` and ``dtlab model memory --to``.

``NAME[:OPTION...]``, case-insensitive:

* an integer format ``intN`` or ``uintN``: linear quantization with fp32 scales, **one per
  tensor** unless an option says otherwise: ``channel`` (one per index along the channel
  axis), ``gN`` (groups of N along the group axis), ``tensor``; ``sym`` (the default for
  signed formats) or ``asym`` (a zero point; unsigned formats always have one); the clipping
  range by ``absmax`` (the default), ``mse`` or ``pNN.N`` (a percentile of |x|).
* a block format (``mxfp8_e4m3`` or ``mxfp8``, ``mxfp8_e5m2``, ``mxfp6_e2m3`` or ``mxfp6``,
  ``mxfp6_e3m2``, ``mxfp4``, ``mxint8``, ``nvfp4``, ``nf4``); MX formats take a scale rule,
  ``floor`` (the default, OCP MX v1.0), ``ceil``, ``even`` or ``rceil``.
* any other format (``fp16``, ``fp8``, ``e3m4``, ...): a plain cast, no scale; ``tensor``,
  ``channel`` or ``gN`` give it fp32 scales too (a scaled fp8, say).

>>> s = parse_quantizer("int4:g128")
>>> s.format.name, s.layout, s.group_size, s.symmetric
('int4', <Layout.GROUP: 'group'>, 128, True)
>>> parse_quantizer("mxfp4:rceil").scale_rule
<ScaleRule.RCEIL: 'rceil'>
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from dtlab.analysis.blocks import BLOCK_FORMATS, BlockFormat, ScaleRule, get_block_format
from dtlab.analysis.intquant import ScaleMethod
from dtlab.errors import OptionError
from dtlab.formats import Format, IntFormat, get_format

__all__ = ["BlockSpec", "Layout", "QuantSpec", "ScaledSpec", "parse_quantizer"]

BLOCK_ALIASES = {"mxfp8": "mxfp8_e4m3", "mxfp6": "mxfp6_e2m3"}
_GROUP = re.compile(r"g(?:roup)?([0-9]+)")
_PERCENTILE = re.compile(r"p(\d+(?:\.\d+)?)")


class Layout(enum.Enum):
    """Which values share a scale."""

    NONE = "none"  # a plain cast: no scale
    TENSOR = "tensor"
    CHANNEL = "channel"  # one scale per index along the channel axis
    GROUP = "group"  # group_size values along the group axis
    BLOCK = "block"  # a block format's blocks along the group axis


@dataclass(frozen=True)
class ScaledSpec:
    """An elementwise format, with its scales (none for a plain cast)."""

    text: str  # as the user wrote it
    format: Format
    layout: Layout
    group_size: int | None
    symmetric: bool
    method: ScaleMethod
    percentile: float  # with ScaleMethod.PERCENTILE

    @property
    def is_int(self) -> bool:
        return isinstance(self.format, IntFormat)


@dataclass(frozen=True)
class BlockSpec:
    """A block format, with the scale rule of an MX format."""

    text: str
    block: BlockFormat
    scale_rule: ScaleRule


QuantSpec = ScaledSpec | BlockSpec


def parse_quantizer(text: str) -> QuantSpec:
    """Parse one spec; errors name the spec and what it accepts."""
    head, *options = [t.strip().lower() for t in text.strip().split(":")]
    if not head:
        raise OptionError(f"empty quantizer spec {text!r}")
    name = BLOCK_ALIASES.get(head, head)
    if name in BLOCK_FORMATS:
        block = get_block_format(name)
        rule = ScaleRule.FLOOR
        for opt in options:
            if not block.is_mx:
                raise OptionError(f"{text!r}: {block.name} takes no options")
            rule = ScaleRule.parse(opt)
        return BlockSpec(text, block, rule)
    fmt = get_format(head)
    is_int = isinstance(fmt, IntFormat)
    layout = Layout.TENSOR if is_int else Layout.NONE
    group: int | None = None
    symmetric = not is_int or fmt.signed
    method, percentile = ScaleMethod.ABSMAX, 99.9
    for opt in options:
        if opt in ("tensor", "channel"):
            layout, group = Layout(opt), None
        elif m := _GROUP.fullmatch(opt):
            layout, group = Layout.GROUP, int(m.group(1))
            if group < 1:
                raise OptionError(f"{text!r}: a group size is at least 1")
        elif is_int and opt in ("sym", "asym"):
            symmetric = opt == "sym"
        elif is_int and opt in ("absmax", "mse"):
            method = ScaleMethod(opt)
        elif is_int and (m := _PERCENTILE.fullmatch(opt)):
            method, percentile = ScaleMethod.PERCENTILE, float(m.group(1))
            if not 0 < percentile <= 100:
                raise OptionError(f"{text!r}: a percentile lies in (0, 100], not {percentile:g}")
        else:
            takes = (
                "tensor, channel, gN, sym, asym, absmax, mse or pNN.N"
                if is_int
                else "tensor, channel or gN (the others are for integer formats)"
            )
            raise OptionError(f"{text!r}: unknown option {opt!r}; {fmt.name} takes {takes}")
    if is_int and symmetric and not fmt.signed:
        raise OptionError(f"{text!r}: an unsigned format needs a zero point (asym)")
    return ScaledSpec(text, fmt, layout, group, symmetric, method, percentile)
