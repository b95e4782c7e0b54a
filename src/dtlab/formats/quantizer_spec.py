"""Quantizer specs: the text that names a quantizer, parsed once into a descriptor
(``dtlab.formats.quantizer.Quantizer``).

The grammar of ``dtlab quantize --as`` and ``dtlab model memory --to``, ``NAME[:OPTION...]``,
case-insensitive:

* an integer format ``intN`` or ``uintN``: linear quantization with fp32 scales, **one per
  tensor** unless an option says otherwise: ``channel`` (one per index along the channel
  axis), ``gN`` (groups of N along the group axis), ``tensor``; ``sym`` (the default for
  signed formats) or ``asym`` (a zero point; unsigned formats always have one); the clipping
  range by ``absmax`` (the default), ``mse`` or ``pNN.N`` (a percentile of |x|).
* a block format (``mxfp8_e4m3`` or ``mxfp8``, ``mxfp8_e5m2``, ``mxfp6_e2m3`` or ``mxfp6``,
  ``mxfp6_e3m2``, ``mxfp4``, ``mxint8``, ``nvfp4``, ``nf4``); MX formats take a scale rule,
  ``floor`` (the default, OCP MX v1.0), ``ceil``, ``even`` or ``rceil``.
* a GGML block type of GGUF files (``q8_0``, ``q4_0``, ``q4_1``, ``q5_0``, ``q5_1``, ``q2_k``
  .. ``q6_k``, ``iq4_xs``, ...: ``dtlab.formats.ggml.GGML_TARGETS``), which takes no options.
* any other format (``fp16``, ``fp8``, ``e3m4``, ...): a plain cast, no scale; ``tensor``,
  ``channel`` or ``gN`` give it fp32 scales too (a scaled fp8, say).

>>> q = parse_quantizer("int4:g128")
>>> q.format.name, q.granularity, q.group_size, q.symmetric
('int4', <Granularity.GROUP: 'group'>, 128, True)
>>> parse_quantizer("mxfp4:rceil").scale_rule
<ScaleRule.RCEIL: 'rceil'>
"""

from __future__ import annotations

import re

from dtlab.errors import DtlabError, OptionError
from dtlab.formats.blocks import (
    BLOCK_ALIASES,
    BLOCK_FORMATS,
    BlockFormat,
    ScaleRule,
    get_block_format,
)
from dtlab.formats.catalog import get_format
from dtlab.formats.descriptor import Format, IntFormat
from dtlab.formats.ggml import GGML_QUANTIZERS, GGML_TARGETS
from dtlab.formats.quantizer import Granularity, Quantizer, ScaleMethod, Symmetry
from dtlab.modes import parse_enum

__all__ = ["block_quantizer", "int_quantizer", "parse_quantizer"]

_GROUP = re.compile(r"g(?:roup)?([0-9]+)")
_PERCENTILE = re.compile(r"p(\d+(?:\.\d+)?)")


def int_quantizer(
    fmt: IntFormat | str | object,
    *,
    symmetric: bool | Symmetry = True,
    axis: int | None = None,
    group_size: int | None = None,
    method: ScaleMethod | str = ScaleMethod.ABSMAX,
    percentile: float = 99.9,
) -> Quantizer:
    """An integer quantizer from keywords: ``axis`` alone gives per-channel scales along it,
    ``group_size`` groups along ``axis`` (default: the last), neither one scale per tensor.

    >>> int_quantizer("int4", group_size=128) == parse_quantizer("int4:g128")
    True
    """
    f = fmt if isinstance(fmt, IntFormat) else get_format(fmt)
    if not isinstance(f, IntFormat):
        raise OptionError(f"integer quantization needs an integer format, not {f}")
    if not isinstance(symmetric, (bool, Symmetry)):
        raise OptionError(f"symmetric must be a bool or a Symmetry, not {symmetric!r}")
    sym = (
        symmetric
        if isinstance(symmetric, Symmetry)
        else Symmetry("symmetric" if symmetric else "asymmetric")
    )
    if group_size is not None:
        gran = Granularity.GROUP
    else:
        gran = Granularity.TENSOR if axis is None else Granularity.CHANNEL
    return Quantizer(
        f,
        gran,
        group_size=group_size,
        axis=axis,
        symmetry=sym,
        clipping=parse_enum(ScaleMethod, method, "scale method"),
        percentile=percentile,
    )


def block_quantizer(
    bfmt: BlockFormat | str,
    *,
    axis: int | None = None,
    scale_rule: ScaleRule | str | None = None,
) -> Quantizer:
    """A block quantizer from keywords: blocks along ``axis`` (default: the last), an MX
    format's ``scale_rule`` (default FLOOR).

    >>> block_quantizer("mxfp4", scale_rule="rceil") == parse_quantizer("mxfp4:rceil")
    True
    """
    b = get_block_format(bfmt)
    rule = None if scale_rule is None else ScaleRule.parse(scale_rule)
    return Quantizer(b, Granularity.BLOCK, axis=axis, scale_rule=rule)


def parse_quantizer(text: str | Quantizer) -> Quantizer:
    """Parse one spec (see the module notes); errors name the spec and what it accepts."""
    if isinstance(text, Quantizer):
        return text
    head, *options = [t.strip().lower() for t in str(text).strip().split(":")]
    if not head:
        raise OptionError(f"empty quantizer spec {text!r}")
    name = BLOCK_ALIASES.get(head, head)
    try:
        if name in BLOCK_FORMATS:
            return _parse_block(text, BLOCK_FORMATS[name], options)
        if name in GGML_TARGETS:
            if options:
                raise OptionError(f"{text!r}: {name} takes no options (its layout is fixed)")
            return Quantizer(GGML_TARGETS[name], Granularity.BLOCK, text=text)
        return _parse_elementwise(text, get_format(head), options)
    except OptionError as exc:
        msg = str(exc)
        raise OptionError(msg if msg.startswith(repr(text)) else f"{text!r}: {msg}") from None


def _parse_block(text: str, block: BlockFormat, options: list[str]) -> Quantizer:
    rule = None
    for opt in options:
        if not block.is_mx:
            raise OptionError(f"{text!r}: {block.name} takes no options")
        rule = ScaleRule.parse(opt)
    return Quantizer(block, Granularity.BLOCK, scale_rule=rule, text=text)


def _parse_elementwise(text: str, fmt: Format, options: list[str]) -> Quantizer:
    is_int = isinstance(fmt, IntFormat)
    gran = Granularity.TENSOR if is_int else Granularity.NONE
    group: int | None = None
    sym = not is_int or fmt.signed
    method, percentile = ScaleMethod.ABSMAX, 99.9
    for opt in options:
        if opt in ("tensor", "channel"):
            gran, group = Granularity(opt), None
        elif m := _GROUP.fullmatch(opt):
            gran, group = Granularity.GROUP, int(m.group(1))
        elif is_int and opt in ("sym", "asym"):
            sym = opt == "sym"
        elif is_int and opt in ("absmax", "mse"):
            method = ScaleMethod(opt)
        elif is_int and (m := _PERCENTILE.fullmatch(opt)):
            method, percentile = ScaleMethod.PERCENTILE, float(m.group(1))
        else:
            takes = (
                "tensor, channel, gN, sym, asym, absmax, mse or pNN.N"
                if is_int
                else "tensor, channel or gN (the others are for integer formats)"
            )
            raise OptionError(f"{text!r}: unknown option {opt!r}; {fmt.name} takes {takes}")
    return Quantizer(
        fmt,
        gran,
        group_size=group,
        symmetry=Symmetry.SYMMETRIC if sym else Symmetry.ASYMMETRIC,
        clipping=method,
        percentile=percentile,
        text=text,
    )


Target = Format | Quantizer  # what model scan --to takes


def parse_target(text: str) -> Target:
    """A format where the text names a plain cast, else a quantizer.

    >>> [type(parse_target(t)).__name__ for t in ("fp8", "e4m3:bias=5", "int8", "mxfp4")]
    ['FloatFormat', 'FloatFormat', 'Quantizer', 'Quantizer']
    """
    try:
        q = parse_quantizer(text)
    except OptionError:
        try:
            return get_format(text)  # a spec with options of its own: e4m3:bias=5
        except DtlabError:
            pass
        raise  # what the quantizer grammar said
    if q.ggml is not None and q.ggml.name.lower() not in GGML_QUANTIZERS:
        raise OptionError(
            f"{text!r}: {q.ggml.name} counts in model memory --to; the GGML types dtlab "
            f"quantizes are {', '.join(GGML_QUANTIZERS)}"
        )
    if q.granularity is Granularity.NONE:
        assert isinstance(q.format, Format)  # block formats always have blocks
        return q.format
    if q.block is None and q.ggml is None and not q.is_int:
        raise OptionError(
            f"{text!r}: scaled targets are integer formats (int8, int4:g128, ...) or block "
            f"formats ({', '.join(BLOCK_FORMATS)}); {q.format.name} alone is a plain cast"
        )
    return q
