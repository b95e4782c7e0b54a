"""Block-scaled formats: OCP MX (MXFP8/6/4, MXINT8), NVFP4 and NF4, quantized along one axis.

Each run of ``block_size`` elements along ``axis`` shares a scale; an element is a code of a
narrow format (or an index into a value table) and decodes as element value x block scale
(x a per-tensor scale for NVFP4). Facts and sources: FORMATS.md §3-5 and its special-case table.
Where the references disagree, dtlab chooses:

* A tail shorter than a block is zero-padded along the axis (zeros never raise an amax);
  ``codes`` keeps the padded shape, ``dequantize`` drops the padding.
* MX all-zero block: scale code 0x00 = 2^-127, as torchao and gfloat (whose docstring says
  1.0); microxcaling uses 2^max(-126-emax, -127). MX scale exponents clamp to [-127, 127], as
  gfloat; above 127 torchao writes 0xFF, microxcaling NaN (only float64 input gets there).
* NaN or ±inf in a block: the block's scale is NaN (MX 0xFF, NVFP4 0x7F, NF4 absmax NaN), its
  codes are those of +0 and the whole block dequantizes to NaN: torchao's MX rule, applied to
  inf too (microxcaling agrees). gfloat raises on NaN in fp6/fp4/int8 and saturates inf to
  max x 2^127; torchao's NVFP4 clamps an inf block's scale to 448; bitsandbytes keeps inf as
  absmax. NVFP4's per-tensor amax covers the finite elements only.
* An fp32-subnormal amax has its true log2 (microxcaling, gfloat), not torchao's -127 (with
  FLOOR the clamp at -127 makes the two agree).
* Scaled elements beyond the range saturate to ±max, sign kept (OCP MX v1.0 §6.3: RNE, then
  clamp). MXINT8 elements are k/64 for k in -128..127, so -2 is reachable (gfloat);
  microxcaling clamps to ±127/64.
* NVFP4 repeats torchao's float32 steps: pt = amax/(448*6), floored at 2^-126 so that 1/pt is
  finite (an all-zero tensor gets 2^-126; TE uses 1, torchao computes 0/0); block scale
  s = e4m3(clamp(amax_b/6/pt, 2^-6, 448)), whose floor is e4m3's smallest normal as in torchao
  (ModelOpt: 2^-9; TE: none); q = e2m1(clamp(x*((1/pt)/s), ±6)); value q*(pt*s). Other torchao
  versions scale by x/(pt*s) or (x/pt)/s: different only within an fp32 ulp of an e2m1 midpoint.
* NF4 repeats bitsandbytes' default CPU path: r = clamp(x*(1/absmax), -1, 1) in float32 and
  ``torch.bucketize(r, midpoints)`` on the table's float32 midpoints: a value on a midpoint
  takes the lower code, and where a float32 midpoint lies an ulp above the exact one (six do)
  that value takes the lower code though the upper is nearer. absmax 0 gives code 7 (0.0).
* NVFP4 and NF4 round their input to float32 first, as their libraries take no float64.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import torch

from dtlab.analysis.metrics import ErrorMetrics, measure
from dtlab.errors import FormatSpecError, OptionError, UnknownFormatError
from dtlab.formats import FloatFormat, Format, get_format
from dtlab.kernels.api import decode, encode
from dtlab.kernels.checks import FLOAT_DTYPES
from dtlab.modes import Overflow, parse_enum

__all__ = [
    "BLOCK_FORMATS", "NF4_TABLE", "BlockFormat", "BlockQuantized", "BlockReport", "ScaleKind",
    "ScaleRule", "block_metrics", "block_quantize", "effective_bits", "get_block_format",
]  # fmt: skip

_SAT = Overflow.SATURATE
_E4M3_MAX = 448.0
_E4M3_TINY = 2.0**-6  # torchao's E4M3_EPS = finfo(float8_e4m3fn).tiny
_FP32_TINY = 2.0**-126


class ScaleKind(enum.Enum):
    """What a block's scale is, and how it is stored."""

    E8M0 = "e8m0"  # OCP MX §5.4.1: 2^(code-127) in a byte, 0xFF NaN
    UE4M3 = "ue4m3"  # NVFP4: a float8_e4m3fn byte read as unsigned, under a per-tensor fp32 scale
    ABSMAX_FP32 = "absmax-fp32"  # NF4: the block's absmax as float32


class ScaleRule(enum.Enum):
    """How an MX block's power-of-two scale X follows from its amax (FORMATS.md §3).

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
    """A block format: element codes of a dtlab format (``element``) or indices into a value
    ``table``; ``block_size`` elements per scale of kind ``scale``; ``tensor_scale`` when a
    per-tensor fp32 scale sits on top. Every element carries an implicit 2^``element_exp``
    (MXINT8: -6, so int8 code k means k/64).

    >>> f = get_block_format("mxint8")
    >>> f.element_max, f.element_min, f.emax
    (Fraction(127, 64), Fraction(-2, 1), 0)
    """

    name: str
    block_size: int
    scale: ScaleKind
    element: str = ""
    table: tuple[float, ...] = ()
    element_exp: int = 0
    tensor_scale: bool = False

    @property
    def is_mx(self) -> bool:
        """An OCP MX format: E8M0 block scales, chosen by a ScaleRule."""
        return self.scale is ScaleKind.E8M0

    def __post_init__(self) -> None:
        if not isinstance(self.block_size, int) or self.block_size < 1:
            raise FormatSpecError(f"block size must be a positive integer, got {self.block_size}")
        if bool(self.element) == bool(self.table):
            raise FormatSpecError("a block format needs an element format or a value table")
        if self.table:
            n = len(self.table)
            if n < 2 or n & (n - 1) or n > 256 or list(self.table) != sorted(set(self.table)):
                raise FormatSpecError("a value table needs 2, 4, ..., 256 increasing values")
            if self.scale is not ScaleKind.ABSMAX_FP32:
                raise FormatSpecError("a value table is scaled by its block's absmax (absmax-fp32)")
        elif get_format(self.element).bits > 8 or self.scale is ScaleKind.ABSMAX_FP32:
            raise FormatSpecError("element codes need 8 bits or fewer, under e8m0/ue4m3 scales")
        if self.tensor_scale != (self.scale is ScaleKind.UE4M3):
            raise FormatSpecError("a per-tensor scale comes with ue4m3 block scales (NVFP4), only")

    @property
    def element_format(self) -> Format | None:
        return get_format(self.element) if self.element else None

    @property
    def element_bits(self) -> int:
        fmt = self.element_format
        return fmt.bits if fmt is not None else (len(self.table) - 1).bit_length()

    @property
    def scale_bits(self) -> int:
        return 32 if self.scale is ScaleKind.ABSMAX_FP32 else 8

    @property
    def element_max(self) -> Fraction:
        """The largest element value (scale 1)."""
        fmt = self.element_format
        if fmt is None:
            return max(abs(Fraction(v)) for v in self.table)
        return Fraction(fmt.max) * Fraction(2) ** self.element_exp

    @property
    def element_min(self) -> Fraction:
        """The lowest element value: -max, or -2 for MXINT8's two's complement."""
        fmt = self.element_format
        if fmt is None:
            return Fraction(self.table[0])
        return Fraction(fmt.min) * Fraction(2) ** self.element_exp

    @property
    def emax(self) -> int:
        """emax_elem: the exponent of the largest power of two in the element format."""
        m = self.element_max
        e = m.numerator.bit_length() - m.denominator.bit_length()
        return e if m >= Fraction(2) ** e else e - 1

    @property
    def man_bits(self) -> int:
        """Element bits below the one at 2^emax (EVEN's width; int8: 6, under sign and 2^0)."""
        fmt = self.element_format
        return fmt.man_bits if isinstance(fmt, FloatFormat) else self.element_bits - 2


# bitsandbytes functional.get_4bit_type("nf4"); exact float32 values (FORMATS.md §5)
NF4_TABLE: tuple[float, ...] = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
)  # fmt: skip

# OCP MX v1.0 §5.2 Table 1: blocks of k = 32 under an E8M0 scale
_MX_ELEMENTS = {"mxfp8_e4m3": "float8_e4m3fn", "mxfp8_e5m2": "float8_e5m2",
                "mxfp6_e2m3": "float6_e2m3fn", "mxfp6_e3m2": "float6_e3m2fn",
                "mxfp4": "float4_e2m1fn"}  # fmt: skip

BLOCK_FORMATS: dict[str, BlockFormat] = {
    **{n: BlockFormat(n, 32, ScaleKind.E8M0, element=e) for n, e in _MX_ELEMENTS.items()},
    "mxint8": BlockFormat("mxint8", 32, ScaleKind.E8M0, element="int8", element_exp=-6),
    "nvfp4": BlockFormat("nvfp4", 16, ScaleKind.UE4M3, element="float4_e2m1fn", tensor_scale=True),
    "nf4": BlockFormat("nf4", 64, ScaleKind.ABSMAX_FP32, table=NF4_TABLE),
}


def get_block_format(name: BlockFormat | str) -> BlockFormat:
    """The catalogue block format of a name (case-insensitive), or the format itself.

    >>> get_block_format("NVFP4").block_size
    16
    """
    if isinstance(name, BlockFormat):
        return name
    found = BLOCK_FORMATS.get(str(name).strip().lower())
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
    f = get_block_format(bfmt)
    return f.element_bits + Fraction(f.scale_bits, f.block_size)


@dataclass(frozen=True, eq=False)
class BlockQuantized:
    """A tensor in a block format.

    ``codes``: uint8 element codes, one per byte (unpacked), in x's shape padded along ``axis``
    to a multiple of the block size. ``scales``: one per block, x's shape with ``axis`` counting
    blocks: E8M0 codes (uint8) for MX, E4M3 codes (uint8) for NVFP4, float32 absmax for NF4.
    ``tensor_scale``: NVFP4's float32 per-tensor scale (a 0-d tensor), else None.
    """

    format: BlockFormat
    codes: torch.Tensor
    scales: torch.Tensor
    tensor_scale: torch.Tensor | None
    shape: tuple[int, ...]
    axis: int
    dtype: torch.dtype
    scale_rule: ScaleRule | None  # MX formats only

    def dequantize(self) -> torch.Tensor:
        """The values, in the original shape and dtype."""
        f = self.format
        codes = _to_blocks(self.codes, self.axis, f.block_size).long()
        scales = self.scales.movedim(self.axis, -1).unsqueeze(-1)
        if f.scale is ScaleKind.E8M0:  # exact in float64
            scale = decode(scales, "float8_e8m0fnu", dtype=torch.float64)
            values = _values(f, codes.device, torch.float64)[codes] * scale
        elif f.scale is ScaleKind.UE4M3:  # torchao: q * (per_tensor * s), float32
            if self.tensor_scale is None:
                raise OptionError("an NVFP4 tensor needs its per-tensor scale")
            scale = decode(scales & 0x7F, "float8_e4m3fn", dtype=torch.float32)
            values = _values(f, codes.device, torch.float32)[codes] * (self.tensor_scale * scale)
        else:  # bitsandbytes: code value * absmax, float32
            values = _values(f, codes.device, torch.float32)[codes] * scales
        return _from_blocks(values, self.axis, self.shape[self.axis]).to(self.dtype).contiguous()


@dataclass(frozen=True)
class BlockReport:
    """What block quantization did to a tensor. ``clipped`` counts elements of finite blocks
    whose scaled value lay beyond the element range (they saturated); ``measure`` gets it as
    overflow. ``metrics.subnormal`` is not counted (0)."""

    format: str
    scale_rule: ScaleRule | None
    blocks: int
    nonfinite_blocks: int
    clipped: int
    effective_bits: Fraction
    metrics: ErrorMetrics


def block_quantize(
    x: torch.Tensor,
    bfmt: BlockFormat | str,
    *,
    axis: int = -1,
    scale_rule: ScaleRule | str = ScaleRule.FLOOR,
) -> BlockQuantized:
    """Quantize x in blocks along ``axis`` (see the module docstring for every special case).

    ``scale_rule`` applies to the MX formats; NVFP4 and NF4 take only the default.

    >>> import torch
    >>> q = block_quantize(torch.tensor([3.5, 1.0, -0.3]), "mxfp4")
    >>> q.codes.shape, q.scales.tolist(), q.dequantize().tolist()
    (torch.Size([32]), [126], [3.0, 1.0, -0.25])
    """
    return _quantize(x, bfmt, axis, scale_rule)[0]


def block_metrics(
    x: torch.Tensor,
    bfmt: BlockFormat | str,
    *,
    axis: int = -1,
    scale_rule: ScaleRule | str = ScaleRule.FLOOR,
) -> BlockReport:
    """Error metrics of x after block quantization, with the clipped elements as overflow.

    >>> import torch
    >>> r = block_metrics(torch.tensor([3.5, 1.0, -0.3]), "mxfp4")
    >>> r.blocks, r.clipped, r.metrics.overflow, r.metrics.max_abs_error
    (1, 1, 1, 0.5)
    """
    q, clipped, finite = _quantize(x, bfmt, axis, scale_rule)
    n_clipped = int(clipped.sum())
    return BlockReport(
        q.format.name, q.scale_rule, finite.numel(), int((~finite).sum()), n_clipped,
        effective_bits(q.format), measure(x, q.dequantize(), overflow=n_clipped),
    )  # fmt: skip


# ---- shared steps -------------------------------------------------------------------------


def _quantize(
    x: torch.Tensor, bfmt: BlockFormat | str, axis: int, scale_rule: ScaleRule | str
) -> tuple[BlockQuantized, torch.Tensor, torch.Tensor]:
    """The result, the mask of clipped elements and the mask of finite blocks."""
    f = get_block_format(bfmt)
    rule = ScaleRule.parse(scale_rule)
    ax = _check_input(x, axis)
    if f.scale is not ScaleKind.E8M0 and rule is not ScaleRule.FLOOR:
        raise OptionError(f"scale rules apply to MX formats; {f.name} has its own scale")
    blocks = _to_blocks(x, ax, f.block_size)
    finite = blocks.isfinite().all(dim=-1)
    tensor_scale = None
    if f.scale is ScaleKind.E8M0:
        codes, scales, clipped = _quantize_mx(blocks, finite, f, rule)
    elif f.scale is ScaleKind.UE4M3:
        codes, scales, tensor_scale, clipped = _quantize_nvfp4(blocks, finite, f)
    else:
        codes, scales, clipped = _quantize_nf4(blocks, finite, f)
    padded = blocks.shape[-2] * f.block_size
    result = BlockQuantized(
        f, _from_blocks(codes, ax, padded).contiguous(), scales.movedim(-1, ax).contiguous(),
        tensor_scale, tuple(x.shape), ax, x.dtype,
        rule if f.scale is ScaleKind.E8M0 else None,
    )  # fmt: skip
    return result, clipped, finite


def _check_input(x: torch.Tensor, axis: int) -> int:
    if not isinstance(x, torch.Tensor) or x.dtype not in FLOAT_DTYPES:
        got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise OptionError(f"block quantization needs a float tensor (fp32/64/16, bf16), not {got}")
    if x.dim() == 0:
        raise OptionError("block quantization needs a tensor with at least one dimension")
    if not -x.dim() <= axis < x.dim():
        raise OptionError(f"axis {axis} is out of range for a tensor of shape {tuple(x.shape)}")
    return axis % x.dim()


def _to_blocks(x: torch.Tensor, axis: int, size: int) -> torch.Tensor:
    """x with ``axis`` moved last, zero-padded to whole blocks, split as (..., blocks, size)."""
    moved = x.movedim(axis, -1)
    pad = -moved.shape[-1] % size
    if pad:
        moved = torch.nn.functional.pad(moved, (0, pad))
    return moved.reshape(*moved.shape[:-1], moved.shape[-1] // size, size)


def _from_blocks(blocks: torch.Tensor, axis: int, length: int) -> torch.Tensor:
    flat = blocks.reshape(*blocks.shape[:-2], blocks.shape[-2] * blocks.shape[-1])
    return flat[..., :length].movedim(-1, axis)


@lru_cache(maxsize=64)
def _values(f: BlockFormat, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The value of every element code, indexed by code."""
    if f.table:
        return torch.tensor(f.table, dtype=torch.float64).to(device=device, dtype=dtype)
    codes = torch.arange(1 << f.element_bits, device=device)
    return (decode(codes, f.element, dtype=torch.float64) * 2.0**f.element_exp).to(dtype)


# ---- the three scale schemes --------------------------------------------------------------


def _scale_exponent(amax: torch.Tensor, f: BlockFormat, rule: ScaleRule) -> torch.Tensor:
    """log2 X as int64 in [-127, 127], from a finite float64 amax >= 0 (FORMATS.md §3)."""
    mant, exp = torch.frexp(amax)  # amax = mant * 2^exp, mant in [0.5, 1)
    exp = exp.long()
    if rule is ScaleRule.RCEIL:  # amax/elem_max = (mant/m) 2^(exp-e), mant/m in (1/2, 2)
        m, e = math.frexp(float(f.element_max))
        log2_x = exp - e + (mant > m).long()
    else:
        floor_log2 = exp - 1
        if rule is ScaleRule.CEIL:
            floor_log2 = floor_log2 + (mant != 0.5).long()
        elif rule is ScaleRule.EVEN:  # significand >= 2 - 2^-(m+1) carries into the exponent
            floor_log2 = floor_log2 + (mant >= 1 - 2.0 ** -(f.man_bits + 2)).long()
        log2_x = floor_log2 - f.emax
    return torch.where(amax == 0, -127, log2_x).clamp(-127, 127)


def _quantize_mx(
    blocks: torch.Tensor, finite: torch.Tensor, f: BlockFormat, rule: ScaleRule
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    xb = torch.where(finite.unsqueeze(-1), blocks.double(), 0.0)
    log2_x = _scale_exponent(xb.abs().amax(dim=-1), f, rule)
    scaled = xb / torch.exp2(log2_x.double()).unsqueeze(-1)  # exact: a power of two
    clipped = (scaled > float(f.element_max)) | (scaled < float(f.element_min))
    # OCP MX §6.3: RNE, then clamp to the element range (saturating rounding is the same)
    codes = encode(scaled * 2.0**-f.element_exp, f.element, overflow=_SAT)
    scales = torch.where(finite, log2_x + 127, 0xFF).to(torch.uint8)
    return codes, scales, clipped


def _quantize_nvfp4(
    blocks: torch.Tensor, finite: torch.Tensor, f: BlockFormat
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    xb = torch.where(finite.unsqueeze(-1), blocks.float(), 0.0)
    elem_max = float(f.element_max)
    amax_b = xb.abs().amax(dim=-1)
    amax = amax_b.amax() if amax_b.numel() else xb.new_zeros(())
    # torchao per_tensor_amax_to_scale, floored so that 1/pt is finite
    pt = (amax / (_E4M3_MAX * elem_max)).clamp(min=_FP32_TINY)
    s = (amax_b / elem_max / pt).clamp(_E4M3_TINY, _E4M3_MAX)
    s_codes = encode(s, "float8_e4m3fn", overflow=_SAT)
    s_values = decode(s_codes, "float8_e4m3fn", dtype=torch.float32)
    scaled = xb * ((1.0 / pt) / s_values).unsqueeze(-1)
    clipped = scaled.abs() > elem_max
    codes = encode(scaled.clamp(-elem_max, elem_max), f.element, overflow=_SAT)
    return codes, torch.where(finite, s_codes, 0x7F), pt, clipped


def _quantize_nf4(
    blocks: torch.Tensor, finite: torch.Tensor, f: BlockFormat
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    xb = torch.where(finite.unsqueeze(-1), blocks.float(), 0.0)
    absmax = xb.abs().amax(dim=-1)
    # bitsandbytes quantize_4bit: the excess of fp32 rounding over 1 is clamped, not clipping
    r = torch.clamp(xb * (1 / absmax).unsqueeze(-1), -1, 1)
    r = torch.where(absmax.unsqueeze(-1) == 0, 0.0, r)
    table = _values(f, xb.device, torch.float32)
    codes = torch.bucketize(r, (table[1:] + table[:-1]) / 2).to(torch.uint8)
    scales = torch.where(finite, absmax, math.nan)
    return codes, scales, torch.zeros_like(r, dtype=torch.bool)
