"""Block quantization of tensors: OCP MX (MXFP8/6/4, MXINT8), NVFP4 and NF4, along one axis.

Each run of ``block_size`` elements along ``axis`` shares a scale; an element is a code of a
narrow format (or an index into a value table) and decodes as element value x block scale
(x a per-tensor scale for NVFP4). The formats are descriptors of ``dtlab.formats.blocks``;
facts and sources are in docs/formats.md §3-5 and its list of pitfalls.
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

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import torch

from dtlab.analysis.groups import from_groups, to_groups
from dtlab.analysis.metrics import ErrorMetrics, Partial, measure, measure_partial
from dtlab.errors import OptionError
from dtlab.formats.blocks import BlockFormat, ScaleKind, ScaleRule, get_block_format
from dtlab.formats.descriptor import Format
from dtlab.formats.quantizer import Quantizer
from dtlab.formats.quantizer_spec import block_quantizer, parse_quantizer
from dtlab.kernels.api import decode, encode
from dtlab.kernels.checks import check_float_tensor
from dtlab.modes import Overflow

__all__ = ["BlockQuantized", "BlockReport", "block_metrics", "block_quantize"]

_SAT = Overflow.SATURATE
_E4M3_MAX = 448.0
_E4M3_TINY = 2.0**-6  # torchao's E4M3_EPS = finfo(float8_e4m3fn).tiny
_FP32_TINY = 2.0**-126


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
        codes = to_groups(self.codes, self.axis, f.block_size, fill=0).long()
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
        return from_groups(values, self.axis, self.shape[self.axis]).to(self.dtype).contiguous()


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


def block_quantize(x: torch.Tensor, quantizer: Quantizer | BlockFormat | str) -> BlockQuantized:
    """Quantize x in blocks (see the module docstring for every special case): blocks run
    along the quantizer's axis (default: the last), MX scales follow its scale rule.

    >>> import torch
    >>> q = block_quantize(torch.tensor([3.5, 1.0, -0.3]), "mxfp4")
    >>> q.codes.shape, q.scales.tolist(), q.dequantize().tolist()
    (torch.Size([32]), [126], [3.0, 1.0, -0.25])
    """
    return _quantize(x, quantizer)[0]


def block_metrics(x: torch.Tensor, quantizer: Quantizer | BlockFormat | str) -> BlockReport:
    """Error metrics of x after block quantization, with the clipped elements as overflow.

    >>> import torch
    >>> r = block_metrics(torch.tensor([3.5, 1.0, -0.3]), "mxfp4")
    >>> r.blocks, r.clipped, r.metrics.overflow, r.metrics.max_abs_error
    (1, 1, 1, 0.5)
    """
    q, clipped, finite = _quantize(x, quantizer)
    n_clipped = int(clipped.sum())
    return BlockReport(
        format=q.format.name,
        scale_rule=q.scale_rule,
        blocks=finite.numel(),
        nonfinite_blocks=int((~finite).sum()),
        clipped=n_clipped,
        effective_bits=q.format.effective_bits,
        metrics=measure(x, q.dequantize(), overflow=n_clipped),
    )


def block_partial(
    x: torch.Tensor, quantizer: Quantizer | BlockFormat | str, *, tensor_amax: float | None = None
) -> Partial:
    """The sums of ``block_metrics`` for x, to merge with those of other parts of a tensor
    (each part holding whole blocks). NVFP4's per-tensor scale comes from ``tensor_amax``
    when given: the largest |x| of the whole tensor's finite blocks."""
    q, clipped, _ = _quantize(x, quantizer, tensor_amax)
    p = measure_partial(x, q.dequantize())
    return dataclasses.replace(p, overflow=p.overflow + int(clipped.sum()))


# ---- shared steps -------------------------------------------------------------------------


def _as_block_quantizer(quantizer: Quantizer | BlockFormat | str) -> Quantizer:
    """A block quantizer from itself, a block format, or a spec such as ``mxfp4:rceil``."""
    if isinstance(quantizer, BlockFormat):
        return block_quantizer(quantizer)
    q = parse_quantizer(quantizer) if isinstance(quantizer, str) else quantizer
    if not isinstance(q, Quantizer) or q.block is None:
        get_block_format(str(quantizer))  # names the known block formats
        raise OptionError(f"{quantizer!r} is not a block format")
    return q


def _quantize(
    x: torch.Tensor, quantizer: Quantizer | BlockFormat | str, tensor_amax: float | None = None
) -> tuple[BlockQuantized, torch.Tensor, torch.Tensor]:
    """The result, the mask of clipped elements and the mask of finite blocks."""
    q = _as_block_quantizer(quantizer)
    f = q.block
    assert f is not None
    check_float_tensor(x, "block quantization", min_dim=1)
    ax = q.resolved_axis(x.dim())
    assert ax is not None  # blocks always run along an axis
    blocks = to_groups(x, ax, f.block_size, fill=0.0)
    finite = blocks.isfinite().all(dim=-1)
    tensor_scale = None
    if f.scale is ScaleKind.E8M0:
        codes, scales, clipped = _quantize_mx(blocks, finite, f, q.scale_rule or ScaleRule.FLOOR)
    elif f.scale is ScaleKind.UE4M3:
        codes, scales, tensor_scale, clipped = _quantize_nvfp4(blocks, finite, f, tensor_amax)
    else:
        codes, scales, clipped = _quantize_nf4(blocks, finite, f)
    result = BlockQuantized(
        format=f,
        codes=from_groups(codes, ax, blocks.shape[-2] * f.block_size).contiguous(),
        scales=scales.movedim(-1, ax).contiguous(),
        tensor_scale=tensor_scale,
        shape=tuple(x.shape),
        axis=ax,
        dtype=x.dtype,
        scale_rule=q.scale_rule,
    )
    return result, clipped, finite


def _element(f: BlockFormat) -> Format:
    assert f.element is not None  # only NF4 has a table, and it takes neither path
    return f.element


@lru_cache(maxsize=64)
def _values(f: BlockFormat, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The value of every element code, indexed by code."""
    if f.table:
        return torch.tensor(f.table, dtype=torch.float64).to(device=device, dtype=dtype)
    codes = torch.arange(1 << f.element_bits, device=device)
    return (decode(codes, _element(f), dtype=torch.float64) * 2.0**f.element_exp).to(dtype)


# ---- the three scale schemes --------------------------------------------------------------


def _scale_exponent(amax: torch.Tensor, f: BlockFormat, rule: ScaleRule) -> torch.Tensor:
    """log2 X as int64 in [-127, 127], from a finite float64 amax >= 0 (docs/formats.md §3)."""
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
    codes = encode(scaled * 2.0**-f.element_exp, _element(f), overflow=_SAT)
    scales = torch.where(finite, log2_x + 127, 0xFF).to(torch.uint8)
    return codes, scales, clipped


def _quantize_nvfp4(
    blocks: torch.Tensor, finite: torch.Tensor, f: BlockFormat, tensor_amax: float | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    xb = torch.where(finite.unsqueeze(-1), blocks.float(), 0.0)
    elem_max = float(f.element_max)
    amax_b = xb.abs().amax(dim=-1)
    amax = amax_b.amax() if amax_b.numel() else xb.new_zeros(())
    if tensor_amax is not None:
        amax = xb.new_tensor(tensor_amax)
    # torchao per_tensor_amax_to_scale, floored so that 1/pt is finite
    pt = (amax / (_E4M3_MAX * elem_max)).clamp(min=_FP32_TINY)
    s = (amax_b / elem_max / pt).clamp(_E4M3_TINY, _E4M3_MAX)
    s_codes = encode(s, "float8_e4m3fn", overflow=_SAT)
    s_values = decode(s_codes, "float8_e4m3fn", dtype=torch.float32)
    scaled = xb * ((1.0 / pt) / s_values).unsqueeze(-1)
    clipped = scaled.abs() > elem_max
    codes = encode(scaled.clamp(-elem_max, elem_max), _element(f), overflow=_SAT)
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
