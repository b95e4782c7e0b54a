"""Quantizer descriptors: one frozen record per quantizer, parsed once from its spec, checked
once, composing Format objects as a block format composes its element and scale formats.

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
* any other format (``fp16``, ``fp8``, ``e3m4``, ...): a plain cast, no scale; ``tensor``,
  ``channel`` or ``gN`` give it fp32 scales too (a scaled fp8, say).

Channels run along axis 0 and groups and blocks along the last axis unless ``axis`` says
otherwise. No torch and no numpy here: ``dtlab model memory`` counts bytes from a descriptor.

>>> q = parse_quantizer("int4:g128")
>>> q.format.name, q.granularity, q.group_size, q.symmetric
('int4', <Granularity.GROUP: 'group'>, 128, True)
>>> parse_quantizer("mxfp4:rceil").scale_rule
<ScaleRule.RCEIL: 'rceil'>
>>> parse_quantizer("int4:g128").nbytes((4096, 4096)) * 8 / (4096 * 4096)
4.25
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from dataclasses import dataclass, field
from typing import Any

from dtlab.errors import OptionError
from dtlab.formats.blocks import (
    BLOCK_ALIASES,
    BLOCK_FORMATS,
    BlockFormat,
    ScaleRule,
    get_block_format,
)
from dtlab.formats.catalog import get_format
from dtlab.formats.descriptor import Format, IntFormat
from dtlab.formats.report import describe
from dtlab.modes import parse_enum

__all__ = [
    "DEFAULT_QUANTIZER",
    "MAX_INT_BITS",
    "SCALE_BITS",
    "Granularity",
    "Quantizer",
    "ScaleMethod",
    "Symmetry",
    "block_quantizer",
    "int_quantizer",
    "packed_size",
    "parse_quantizer",
]

SCALE_BITS = 32  # a float32 scale per slice (group, channel or tensor)
MAX_INT_BITS = 32  # integer quantization: float32 scales cannot place finer steps anyway
DEFAULT_QUANTIZER = "int8"
_GROUP = re.compile(r"g(?:roup)?([0-9]+)")
_PERCENTILE = re.compile(r"p(\d+(?:\.\d+)?)")


def packed_size(count: int, bits: int) -> int:
    """Bytes that ``count`` codes of ``bits`` bits take packed.

    >>> packed_size(3, 4)
    2
    """
    return (count * bits + 7) // 8


class Granularity(enum.Enum):
    """Which values share a scale."""

    NONE = "none"  # a plain cast: no scale
    TENSOR = "tensor"
    CHANNEL = "channel"  # one scale per index along the channel axis
    GROUP = "group"  # group_size values along the group axis
    BLOCK = "block"  # a block format's blocks along the group axis


class Symmetry(enum.Enum):
    """Whether the codes are centred on 0 (no zero point) or shifted by a zero point."""

    SYMMETRIC = "symmetric"
    ASYMMETRIC = "asymmetric"


class ScaleMethod(enum.Enum):
    """How each slice's clipping range is chosen.

    * ``ABSMAX``: the full range of the finite values (``amax``, or ``min`` and ``max``).
    * ``PERCENTILE``: the p-th percentile of ``|x|`` (symmetric), or the (100 - p)-th and
      p-th percentiles of x (asymmetric), per slice, interpolated linearly between the two
      nearest ranks as ``numpy.percentile`` does by default.
    * ``MSE``: the range ``alpha * absmax-range`` for ``alpha = k / 100, k = 1..100`` that
      gives the least squared error of the slice's finite values after the round trip in
      the requested rounding (nearest-even stands in for stochastic). The grid holds
      ``alpha = 1``, and ties keep the larger alpha, so MSE is never worse than ABSMAX.
      It costs 100 quantizations of the tensor.
    """

    ABSMAX = "absmax"
    PERCENTILE = "percentile"
    MSE = "mse"


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass(frozen=True)
class Quantizer:
    """What a quantizer stores and how it chooses its scales; checked once, here.

    ``format`` is the element format (a Format) or a BlockFormat, which brings its own scale
    format and block size. ``axis`` is where channels, groups or blocks run (None: the
    default, 0 for channels and -1 for groups and blocks; negative counts from the end).
    ``text`` is the spec as the user wrote it, when it was parsed.
    """

    format: Format | BlockFormat
    granularity: Granularity
    group_size: int | None = None
    axis: int | None = None
    symmetry: Symmetry = Symmetry.SYMMETRIC
    clipping: ScaleMethod = ScaleMethod.ABSMAX
    percentile: float = 99.9
    scale_rule: ScaleRule | None = None
    text: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.axis is not None and not _is_int(self.axis):
            raise OptionError(f"axis {self.axis!r} is out of range: an axis is an integer")
        if isinstance(self.format, BlockFormat):
            self._check_block(self.format)
        else:
            self._check_elementwise(self.format)

    def _check_block(self, b: BlockFormat) -> None:
        if self.granularity is not Granularity.BLOCK:
            raise OptionError(f"{b.name} is a block format: its granularity is block")
        if self.group_size is None:
            object.__setattr__(self, "group_size", b.block_size)
        if self.group_size != b.block_size:
            raise OptionError(f"{b.name} has blocks of {b.block_size}, not {self.group_size}")
        if self.symmetry is not Symmetry.SYMMETRIC or self.clipping is not ScaleMethod.ABSMAX:
            raise OptionError(f"{b.name} sets its own scales: no zero point or clipping method")
        if b.is_mx and self.scale_rule is None:
            object.__setattr__(self, "scale_rule", ScaleRule.FLOOR)
        if not b.is_mx and self.scale_rule not in (None, ScaleRule.FLOOR):
            raise OptionError(f"scale rules apply to MX formats; {b.name} has its own scale")
        if not b.is_mx:
            object.__setattr__(self, "scale_rule", None)

    def _check_elementwise(self, f: Format) -> None:
        g, size = self.granularity, self.group_size
        if g is Granularity.BLOCK:
            raise OptionError(f"{f.name} is not a block format; blocks are {_block_names()}")
        if size is not None and g is not Granularity.GROUP:
            raise OptionError("a group size needs group granularity (gN)")
        if g is Granularity.GROUP and (not _is_int(size) or size is None or size < 1):
            raise OptionError(f"a group size (group_size) must be an integer >= 1, got {size!r}")
        if self.scale_rule is not None:
            raise OptionError(f"scale rules apply to MX formats, not {f.name}")
        p = self.percentile
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 100:
            raise OptionError(f"a percentile lies in (0, 100], not {p!r}")
        if not isinstance(f, IntFormat):
            if self.symmetry is not Symmetry.SYMMETRIC or self.clipping is not ScaleMethod.ABSMAX:
                raise OptionError(
                    f"zero points and clipping methods are for integer formats, not {f.name}"
                )
            return
        if f.bits > MAX_INT_BITS:
            raise OptionError(
                f"integer quantization supports formats up to {MAX_INT_BITS} bits, not {f}"
            )
        if g is Granularity.NONE:
            raise OptionError(f"{f.name} quantization has scales: per tensor, channel or gN")
        if self.symmetry is Symmetry.SYMMETRIC and (not f.signed or f.max == 0):
            why = "an unsigned format" if not f.signed else f"{f.name}, with no positive code,"
            raise OptionError(
                f"{f} cannot be quantized symmetrically: {why} needs a zero point (asym)"
            )

    # ---- what it is -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The spec as written, or the format's name."""
        return self.text.strip() or self.format.name

    @property
    def block(self) -> BlockFormat | None:
        return self.format if isinstance(self.format, BlockFormat) else None

    @property
    def element(self) -> Format | None:
        """The element format (None for a value table, NF4)."""
        return self.format.element if isinstance(self.format, BlockFormat) else self.format

    @property
    def is_int(self) -> bool:
        return isinstance(self.format, IntFormat)

    @property
    def symmetric(self) -> bool:
        return self.symmetry is Symmetry.SYMMETRIC

    @property
    def scaled(self) -> bool:
        return self.granularity is not Granularity.NONE

    @property
    def scale_format(self) -> Format | None:
        """The format scales are stored in: float32, a block format's own, or None."""
        if isinstance(self.format, BlockFormat):
            return self.format.scale_format
        return get_format("float32") if self.scaled else None

    def resolved_axis(self, ndim: int) -> int | None:
        """The axis scales run along, in ``0..ndim-1``, or None per tensor (or no scale)."""
        if self.granularity in (Granularity.NONE, Granularity.TENSOR):
            return None
        default = 0 if self.granularity is Granularity.CHANNEL else -1
        a = default if self.axis is None else self.axis
        if ndim == 0 or not -ndim <= a < ndim:
            raise OptionError(f"{self.name!r}: axis {a} is out of range for a {ndim}-d tensor")
        return a % ndim

    def along(self, axis: int | None) -> Quantizer:
        """The same quantizer with channels, groups or blocks along ``axis``."""
        return dataclasses.replace(self, axis=axis)

    # ---- what it stores -------------------------------------------------------------------

    @property
    def stored_bits(self) -> int:
        """Bits per stored value: packed below 8 bits, else the format's container."""
        if isinstance(self.format, BlockFormat):
            return self.format.element_bits
        return int(describe(self.format).packed_bytes_per_value * 8)

    @property
    def scale_bits(self) -> int:
        fmt = self.scale_format
        return 0 if fmt is None else fmt.bits

    @property
    def zero_point_bits(self) -> int:
        """A zero point per scale, of the format's width, for asymmetric integers."""
        f = self.format
        return f.bits if isinstance(f, IntFormat) and not self.symmetric and self.scaled else 0

    @property
    def tensor_scale_bits(self) -> int:
        """NVFP4's per-tensor fp32 scale."""
        b = self.block
        return SCALE_BITS if b is not None and b.tensor_scale else 0

    def scale_count(self, shape: tuple[int, ...]) -> int:
        """How many scales (and zero points) a tensor of this shape needs; channels of a
        tensor of rank < 2 share one scale."""
        numel = math.prod(shape)
        g = self.granularity
        if numel == 0 or g is Granularity.NONE:
            return 0
        if g is Granularity.TENSOR or len(shape) == 0:
            return 1
        if g is Granularity.CHANNEL and len(shape) < 2:
            return 1
        a = self.resolved_axis(len(shape))
        assert a is not None  # channels, groups and blocks have an axis
        if g is Granularity.CHANNEL:
            return shape[a]
        size = self.group_size or 1
        return numel // shape[a] * -(-shape[a] // size)

    def nbytes(self, shape: tuple[int, ...]) -> int:
        """Bytes of a tensor of this shape: codes, scales and zero points, each packed and
        rounded up to whole bytes, and a per-tensor scale."""
        numel, n = math.prod(shape), self.scale_count(shape)
        if numel == 0:
            return 0
        return (
            packed_size(numel, self.stored_bits)
            + packed_size(n, self.scale_bits)
            + packed_size(n, self.zero_point_bits)
            + packed_size(1, self.tensor_scale_bits)
        )

    def json_form(self) -> dict[str, Any]:
        """The fields ``--json`` outputs show (docs/json.md)."""
        return {
            "name": self.name,
            "format_name": self.format.name,
            "element_bits": self.stored_bits,
            "layout": self.granularity.value,
            "group_size": self.group_size or 0,
            "scale_bits": self.scale_bits,
            "zero_point_bits": self.zero_point_bits,
            "tensor_scale_bits": self.tensor_scale_bits,
        }


def _block_names() -> str:
    return ", ".join(BLOCK_FORMATS)


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
