"""Block formats as descriptors: an element format and a scale format, composed as gfloat's
``BlockFormatInfo(etype, stype)`` composes them, with the block size and the scale's kind.

Plain data and exact arithmetic only (no torch): ``dtlab.analysis.blockquant`` quantizes
tensors with these descriptors, ``dtlab.checkpoint.memory`` counts their bytes.

>>> f = get_block_format("mxfp4")
>>> f.element.name, f.scale_format.name, f.block_size, str(f.effective_bits)
('float4_e2m1fn', 'float8_e8m0fnu', 32, '17/4')
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from fractions import Fraction

from dtlab.errors import FormatSpecError, UnknownFormatError
from dtlab.formats.catalog import get_format
from dtlab.formats.descriptor import FloatFormat, Format
from dtlab.modes import parse_enum

__all__ = [
    "BLOCK_FORMATS",
    "NF4_TABLE",
    "BlockFormat",
    "ScaleKind",
    "ScaleRule",
    "effective_bits",
    "get_block_format",
]


class ScaleKind(enum.Enum):
    """What a block's scale is, and how it is stored."""

    E8M0 = "e8m0"  # OCP MX v1.0 §5.4.1: 2^(code-127) in a byte, 0xFF NaN
    UE4M3 = "ue4m3"  # NVFP4: a float8_e4m3fn byte read as unsigned, under a per-tensor fp32 scale
    ABSMAX_FP32 = "absmax-fp32"  # NF4: the block's absmax as float32


# the format each kind of scale is stored in
_SCALE_FORMATS = {
    ScaleKind.E8M0: "float8_e8m0fnu",
    ScaleKind.UE4M3: "float8_e4m3fn",
    ScaleKind.ABSMAX_FP32: "float32",
}


class ScaleRule(enum.Enum):
    """How an MX block's power-of-two scale X follows from its amax (docs/formats.md §3).
    Computed exactly from amax's exponent and mantissa, never through a float log2.

    * ``FLOOR``: X = 2^(floor(log2 amax) - emax_elem). OCP MX v1.0 §6.3; Rouhani et al.,
      arXiv:2310.10537, Alg. 1; torchao's default, microxcaling, gfloat. A block max whose
      mantissa exceeds elem_max/2^emax_elem (1.5 for FP4, 1.75 for E4M3) clips.
    * ``CEIL``: X = 2^(ceil(log2 amax) - emax_elem). torchao ``ScaleCalculationMode.CEIL``.
    * ``EVEN``: amax rounded to the element's mantissa width (half an ulp added, then truncated,
      so a carry raises the exponent), then FLOOR. torchao ``ScaleCalculationMode.EVEN``
      (which does it on fp32 bits; here on the value).
    * ``RCEIL``: X = 2^ceil(log2(amax / elem_max)), the E8M0 value rounded up from
      amax/elem_max. torchao ``RCEIL``, after cuBLAS "1D block quantization" and the PTX
      instruction ``cvt.rp.ue8m0x2.f32``; cuDNN BlockScaling gives the same. Never clips.

    >>> ScaleRule.parse("rceil")
    <ScaleRule.RCEIL: 'rceil'>
    """

    FLOOR = "floor"
    CEIL = "ceil"
    EVEN = "even"
    RCEIL = "rceil"

    @classmethod
    def parse(cls, value: ScaleRule | str) -> ScaleRule:
        return parse_enum(cls, value, "scale rule")


@dataclass(frozen=True)
class BlockFormat:
    """A block format: codes of an ``element`` format (or indices into a value ``table``),
    ``block_size`` of them per scale of kind ``scale``, and, with ``tensor_scale``, a per-tensor
    fp32 scale on top. Every element carries an implicit 2^``element_exp`` (MXINT8: -6, so
    int8 code k means k/64).

    >>> f = get_block_format("mxint8")
    >>> f.element_max, f.element_min, f.emax
    (Fraction(127, 64), Fraction(-2, 1), 0)
    """

    name: str
    block_size: int
    scale: ScaleKind
    element: Format | None = None
    table: tuple[float, ...] = ()
    element_exp: int = 0
    tensor_scale: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.block_size, bool) or not isinstance(self.block_size, int):
            raise FormatSpecError(f"block size must be a positive integer, got {self.block_size}")
        if self.block_size < 1:
            raise FormatSpecError(f"block size must be a positive integer, got {self.block_size}")
        if (self.element is None) == (not self.table):
            raise FormatSpecError("a block format needs an element format or a value table")
        if self.table:
            n = len(self.table)
            if n < 2 or n & (n - 1) or n > 256 or list(self.table) != sorted(set(self.table)):
                raise FormatSpecError("a value table needs 2, 4, ..., 256 increasing values")
            if self.scale is not ScaleKind.ABSMAX_FP32:
                raise FormatSpecError("a value table is scaled by its block's absmax (absmax-fp32)")
        elif self.element is not None and (
            self.element.bits > 8 or self.scale is ScaleKind.ABSMAX_FP32
        ):
            raise FormatSpecError("element codes need 8 bits or fewer, under e8m0/ue4m3 scales")
        if self.tensor_scale != (self.scale is ScaleKind.UE4M3):
            raise FormatSpecError("a per-tensor scale comes with ue4m3 block scales (NVFP4), only")

    @property
    def is_mx(self) -> bool:
        """An OCP MX format: E8M0 block scales, chosen by a ScaleRule."""
        return self.scale is ScaleKind.E8M0

    @property
    def scale_format(self) -> Format:
        """The format each block's scale is stored in."""
        return get_format(_SCALE_FORMATS[self.scale])

    @property
    def element_bits(self) -> int:
        return self.element.bits if self.element is not None else (len(self.table) - 1).bit_length()

    @property
    def scale_bits(self) -> int:
        return self.scale_format.bits

    @property
    def effective_bits(self) -> Fraction:
        """Storage bits per element: element bits + scale bits / block size (see
        ``effective_bits``)."""
        return self.element_bits + Fraction(self.scale_bits, self.block_size)

    @property
    def element_max(self) -> Fraction:
        """The largest element value (scale 1)."""
        if self.element is None:
            return max(abs(Fraction(v)) for v in self.table)
        return Fraction(self.element.max) * Fraction(2) ** self.element_exp

    @property
    def element_min(self) -> Fraction:
        """The lowest element value: -max, or -2 for MXINT8's two's complement."""
        if self.element is None:
            return Fraction(self.table[0])
        return Fraction(self.element.min) * Fraction(2) ** self.element_exp

    @property
    def emax(self) -> int:
        """emax_elem: the exponent of the largest power of two in the element format."""
        m = self.element_max
        e = m.numerator.bit_length() - m.denominator.bit_length()
        return e if m >= Fraction(2) ** e else e - 1

    @property
    def man_bits(self) -> int:
        """Element bits below the one at 2^emax (EVEN's width; int8: 6, under sign and 2^0)."""
        if isinstance(self.element, FloatFormat):
            return self.element.man_bits
        return self.element_bits - 2


# bitsandbytes functional.get_4bit_type("nf4"): exact float32 values (docs/formats.md §5)
NF4_TABLE: tuple[float, ...] = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
)  # fmt: skip

# OCP MX v1.0 §5.2 Table 1: blocks of k = 32 under an E8M0 scale
_MX_ELEMENTS = {
    "mxfp8_e4m3": "float8_e4m3fn",
    "mxfp8_e5m2": "float8_e5m2",
    "mxfp6_e2m3": "float6_e2m3fn",
    "mxfp6_e3m2": "float6_e3m2fn",
    "mxfp4": "float4_e2m1fn",
}


def _catalog() -> dict[str, BlockFormat]:
    mx = {
        name: BlockFormat(name, 32, ScaleKind.E8M0, element=get_format(elem))
        for name, elem in _MX_ELEMENTS.items()
    }
    mxint8 = BlockFormat("mxint8", 32, ScaleKind.E8M0, element=get_format("int8"), element_exp=-6)
    nvfp4 = BlockFormat(
        "nvfp4", 16, ScaleKind.UE4M3, element=get_format("float4_e2m1fn"), tensor_scale=True
    )
    nf4 = BlockFormat("nf4", 64, ScaleKind.ABSMAX_FP32, table=NF4_TABLE)
    return {**mx, "mxint8": mxint8, "nvfp4": nvfp4, "nf4": nf4}


BLOCK_FORMATS: dict[str, BlockFormat] = _catalog()
BLOCK_ALIASES = {"mxfp8": "mxfp8_e4m3", "mxfp6": "mxfp6_e2m3"}


def get_block_format(name: BlockFormat | str) -> BlockFormat:
    """The catalogue block format of a name or alias (case-insensitive), or the format itself.

    >>> get_block_format("NVFP4").block_size
    16
    """
    if isinstance(name, BlockFormat):
        return name
    key = str(name).strip().lower()
    found = BLOCK_FORMATS.get(BLOCK_ALIASES.get(key, key))
    if found is None:
        raise UnknownFormatError(
            f"unknown block format {name!r}; known: {', '.join(BLOCK_FORMATS)}"
        )
    return found


def effective_bits(bfmt: BlockFormat | str) -> Fraction:
    """Storage bits per element: element bits + scale bits / block size.

    NVFP4's per-tensor fp32 scale is one scalar per tensor and is left out. NF4 is counted
    without double quantization; bitsandbytes' default double quantization (8-bit absmax per
    64, an fp32 per 256 blocks) costs about 4 + 8/64 + 32/16384 = 4.127 bits.

    >>> [str(effective_bits(n)) for n in ("mxfp8_e4m3", "mxfp4", "nvfp4", "nf4")]
    ['33/4', '17/4', '9/2', '9/2']
    """
    return get_block_format(bfmt).effective_bits
