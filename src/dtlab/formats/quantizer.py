"""Quantizer descriptors: one frozen record per quantizer, checked once, composing Format
objects as a block format composes its element and scale formats. The spec grammar that
builds them (``int4:g128``, ``mxfp4:rceil``) is ``dtlab.formats.quantizer_spec``.

Channels run along axis 0 and groups and blocks along the last axis unless ``axis`` says
otherwise. No torch and no numpy here: ``dtlab model memory`` counts bytes from a descriptor.

>>> from dtlab.formats import get_format
>>> q = Quantizer(get_format("int4"), Granularity.GROUP, group_size=128)
>>> q.symmetric, q.scale_format.name, q.nbytes((4096, 4096)) * 8 / (4096 * 4096)
(True, 'float32', 4.25)
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass, field
from typing import Any

from dtlab.errors import OptionError
from dtlab.formats.blocks import BLOCK_FORMATS, BlockFormat, ScaleRule
from dtlab.formats.catalog import get_format
from dtlab.formats.descriptor import Format, IntFormat
from dtlab.formats.ggml import GGMLType
from dtlab.formats.report import describe

__all__ = [
    "MAX_INT_BITS",
    "SCALE_BITS",
    "Granularity",
    "Quantizer",
    "ScaleMethod",
    "Symmetry",
    "normalize_axis",
    "packed_bits",
    "packed_size",
]

SCALE_BITS = 32  # a float32 scale per slice (group, channel or tensor)
MAX_INT_BITS = 32  # integer quantization: float32 scales cannot place finer steps anyway


def packed_size(count: int, bits: int) -> int:
    """Bytes that ``count`` codes of ``bits`` bits take packed.

    >>> packed_size(3, 4)
    2
    """
    return (count * bits + 7) // 8


def packed_bits(fmt: Format) -> int:
    """Bits one value of fmt takes in storage: its width below 8 bits (packed), else its
    container's (int12 in 16).

    >>> from dtlab.formats import get_format
    >>> packed_bits(get_format("fp4")), packed_bits(get_format("int12"))
    (4, 16)
    """
    return int(describe(fmt).packed_bytes_per_value * 8)


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


def normalize_axis(axis: object, ndim: int, what: str) -> int:
    """``axis`` (negative counts from the end) as an index in ``0..ndim-1``, or an OptionError
    naming ``what`` needed it: the one axis check of every tensor entry point.

    >>> normalize_axis(-1, 3, "quantize")
    2
    """
    if isinstance(axis, bool) or not isinstance(axis, int) or not -ndim <= axis < ndim:
        raise OptionError(f"{what}: axis {axis!r} is out of range for a {ndim}-d tensor")
    return axis % ndim


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass(frozen=True)
class Quantizer:
    """What a quantizer stores and how it chooses its scales; checked once, here.

    ``format`` is the element format (a Format), a BlockFormat, which brings its own scale
    format and block size, or a GGMLType (a GGUF block type: ``q4_k``), which brings its
    whole block layout. ``axis`` is where channels, groups or blocks run (None: the
    default, 0 for channels and -1 for groups and blocks; negative counts from the end).
    ``text`` is the spec as the user wrote it, when it was parsed.
    """

    format: Format | BlockFormat | GGMLType
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
        if isinstance(self.format, GGMLType):
            self._check_ggml(self.format)
        elif isinstance(self.format, BlockFormat):
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

    def _check_ggml(self, t: GGMLType) -> None:
        if self.granularity is not Granularity.BLOCK or t.kind != "quant":
            raise OptionError(f"{t.name} is a GGML block type: its granularity is block")
        if self.group_size is None:
            object.__setattr__(self, "group_size", t.block_size)
        plain = self.symmetry is Symmetry.SYMMETRIC and self.clipping is ScaleMethod.ABSMAX
        if self.group_size != t.block_size or not plain or self.scale_rule is not None:
            raise OptionError(f"{t.name} has its own fixed layout: blocks of {t.block_size}")

    def _check_elementwise(self, f: Format) -> None:
        g, size = self.granularity, self.group_size
        if g is Granularity.BLOCK:
            raise OptionError(f"{f.name} is not a block format; blocks are {_block_names()}")
        if size is not None and g is not Granularity.GROUP:
            raise OptionError("a group size needs group granularity (gN)")
        if g is Granularity.GROUP and (not _is_int(size) or size is None or size < 1):
            raise OptionError(f"a group size must be an integer >= 1, got {size!r}")
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
    def ggml(self) -> GGMLType | None:
        return self.format if isinstance(self.format, GGMLType) else None

    @property
    def element(self) -> Format | None:
        """The element format (None for a value table, NF4, and for GGML types)."""
        if isinstance(self.format, GGMLType):
            return None
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
        if isinstance(self.format, GGMLType):
            return None if self.format.scale is None else get_format(self.format.scale)
        return get_format("float32") if self.scaled else None

    def resolved_axis(self, ndim: int) -> int | None:
        """The axis scales run along, in ``0..ndim-1``, or None per tensor (or no scale).
        Channels of a tensor of rank < 2 (a bias, a norm) share one scale: per tensor."""
        if self.granularity in (Granularity.NONE, Granularity.TENSOR):
            return None
        default = 0 if self.granularity is Granularity.CHANNEL else -1
        axis = normalize_axis(default if self.axis is None else self.axis, ndim, repr(self.name))
        return None if self.granularity is Granularity.CHANNEL and ndim < 2 else axis

    def applied(self, ndim: int) -> Quantizer:
        """The quantizer as it applies to a tensor of rank ``ndim``: its axis non-negative, and
        channels below rank 2 one scale per tensor.

        >>> from dtlab.formats import get_format
        >>> q = Quantizer(get_format("int8"), Granularity.CHANNEL)
        >>> q.applied(2).axis, q.applied(1).granularity
        (0, <Granularity.TENSOR: 'tensor'>)
        """
        axis = self.resolved_axis(ndim)
        if axis is None and self.granularity is Granularity.CHANNEL:
            return dataclasses.replace(self, granularity=Granularity.TENSOR, axis=None)
        return dataclasses.replace(self, axis=axis)

    def along(self, axis: int | None) -> Quantizer:
        """The same quantizer with channels, groups or blocks along ``axis``."""
        return dataclasses.replace(self, axis=axis)

    # ---- what it stores -------------------------------------------------------------------

    @property
    def stored_bits(self) -> int:
        """Bits per stored value: packed below 8 bits, else the format's container."""
        if isinstance(self.format, BlockFormat):
            return self.format.element_bits
        if isinstance(self.format, GGMLType):  # the nominal width: type_size holds the truth
            return self.format.code_bits
        return packed_bits(self.format)

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
        if isinstance(self.format, GGMLType):
            return self.format.nbytes(shape)
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
        out: dict[str, Any] = {
            "name": self.name,
            "format_name": self.format.name,
            "element_bits": self.stored_bits,
            "layout": self.granularity.value,
            "group_size": self.group_size or 0,
            "scale_bits": self.scale_bits,
            "zero_point_bits": self.zero_point_bits,
            "tensor_scale_bits": self.tensor_scale_bits,
        }
        if isinstance(self.format, GGMLType):  # the exact layout: bytes per block_size values
            out["block_bytes"] = self.format.type_size
        return out


def _block_names() -> str:
    return ", ".join(BLOCK_FORMATS)
