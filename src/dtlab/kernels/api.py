"""quantize, encode, decode and to_dtype on torch tensors, for every format in the catalogue.

The fused C kernel serves CPU float32/float64 tensors when it was built; everything else
(CUDA, float16/bfloat16 through a float32 buffer, machines without a compiler) runs the
pure-torch path. Both give identical bits; the tests hold them to it.
"""

from __future__ import annotations

import torch

from dtlab.errors import OptionError
from dtlab.formats import TORCH_NAMES, FloatFormat, Format, IntFormat, NanEncoding
from dtlab.kernels.checks import check_float_tensor
from dtlab.kernels.native import has_c_kernel, quantize_buffer
from dtlab.kernels.params import Prepared, as_format, prepare, seed_for
from dtlab.kernels.reference import as_int64, quantize_into
from dtlab.modes import Overflow, Rounding, Subnormals

# as_format, prepare and seed_for live in dtlab.kernels.params; named here for older callers
__all__ = [
    "as_format",
    "code_dtype",
    "decode",
    "encode",
    "has_c_kernel",
    "prepare",
    "quantize",
    "seed_for",
    "to_dtype",
]


def quantize(
    x: torch.Tensor,
    fmt: Format | str | torch.dtype,
    *,
    rounding: Rounding | str = Rounding.NEAREST_EVEN,
    overflow: Overflow | str | None = None,
    subnormals: Subnormals | str = Subnormals.KEEP,
    generator: torch.Generator | None = None,
    out: torch.Tensor | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Round every element of x to fmt and return the values in x's dtype (fake quantization).

    ``out`` may be a preallocated tensor of x's shape and dtype, or x itself (in place).
    ``overflow=None`` means inf-nan for floats and saturate for integers. ``backend`` is
    "auto", "c" or "torch" (for testing that both agree).

    >>> import torch
    >>> quantize(torch.tensor([0.1, 1000.0, -3.3]), "fp8", overflow="saturate").tolist()
    [0.1015625, 448.0, -3.25]
    """
    prep = prepare(fmt, rounding, overflow, subnormals)
    check_float_tensor(x, "quantize")
    if out is not None and (out.shape != x.shape or out.dtype != x.dtype or out.device != x.device):
        raise OptionError("out must have x's shape, dtype and device")
    p = prep.params
    seed = seed_for(p.rounding, generator)
    c_built = has_c_kernel()
    use_c = backend == "c" or (backend == "auto" and c_built)
    if backend not in ("auto", "c", "torch"):
        raise OptionError(f"unknown backend {backend!r}; choose auto, c or torch")
    if use_c and c_built and x.is_cpu:
        return _quantize_c(x, prep, seed, out)
    if backend == "c":
        raise OptionError("the C kernel is not available here (not built, or not a CPU tensor)")
    target = out if out is not None else torch.empty_like(x)
    return quantize_into(x.contiguous(), p, seed, target)


def _quantize_c(
    x: torch.Tensor, prep: Prepared, seed: int, out: torch.Tensor | None
) -> torch.Tensor:
    narrow = prep.params.fits_float32 and x.dtype != torch.float64
    lanes = torch.float32 if narrow else torch.float64
    src = x if x.is_contiguous() else x.contiguous()
    if src.dtype == lanes:
        target = out if out is not None and out.is_contiguous() else torch.empty_like(src)
        quantize_buffer(src, target, prep, seed)
        if out is not None and target is not out:
            out.copy_(target)
            return out
        return target
    buf = src.to(lanes)  # float16/bfloat16 (or a format wider than float32): one buffer
    quantize_buffer(buf, buf, prep, seed)
    if out is None:
        return buf.to(x.dtype)
    out.copy_(buf)
    return out


# ---- codes --------------------------------------------------------------------------------


def code_dtype(fmt: Format) -> torch.dtype:
    """Codes live in uint8 (<= 8 bits), int16, int32 or int64, holding the bit pattern."""
    if fmt.bits <= 8:
        return torch.uint8
    return {16: torch.int16, 32: torch.int32}.get(
        max(16, 1 << (fmt.bits - 1).bit_length()), torch.int64
    )


def _to_code_dtype(codes64: torch.Tensor, fmt: Format) -> torch.Tensor:
    dt = code_dtype(fmt)
    if dt == torch.uint8:
        return codes64.to(torch.uint8)
    width = torch.iinfo(dt).bits
    if width == 64:
        return codes64  # already the pattern, read as a signed int64
    signed = torch.where(codes64 >= (1 << (width - 1)), codes64 - (1 << width), codes64)
    return signed.to(dt)


def encode(
    x: torch.Tensor,
    fmt: Format | str | torch.dtype,
    *,
    rounding: Rounding | str = Rounding.NEAREST_EVEN,
    overflow: Overflow | str | None = None,
    subnormals: Subnormals | str = Subnormals.KEEP,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The bit patterns x rounds to in fmt, in the container dtype of ``code_dtype(fmt)``.

    Integers wider than 53 bits pass through float64 values: saturated ends are exact
    (int64's 2^63 - 1, uint64's 2^64 - 1), but a wrapped result above 2^53 is the float64
    nearest to it (use the exact scalar path, ``dtlab.scalar``, for those).

    >>> import torch
    >>> encode(torch.tensor([448.0, -0.0, 1.0]), "fp8")
    tensor([126, 128,  56], dtype=torch.uint8)
    """
    f = as_format(fmt)
    # float64 lanes give the same results (stochastic ones included) for narrower inputs
    values = quantize(
        x.to(torch.float64),
        f,
        rounding=rounding,
        overflow=overflow,
        subnormals=subnormals,
        generator=generator,
    )
    return _to_code_dtype(values_to_codes(values, f), f)


def values_to_codes(v: torch.Tensor, fmt: Format) -> torch.Tensor:
    """Codes (int64) of values already representable in fmt."""
    v = v.to(torch.float64)
    if isinstance(fmt, IntFormat):
        clamped = v.clamp(-(2.0**63), 2.0**64 - 2.0**11)
        big = clamped >= 2.0**63
        iv = torch.where(big, (clamped - 2.0**64), clamped).to(torch.int64)
        if fmt.bits == 64:  # float64 rounds the top value, 2^63 - 1 or 2^64 - 1, up to a power
            top = torch.iinfo(torch.int64).max if fmt.signed else -1  # of two: saturate
            return torch.where(v >= (2.0**63 if fmt.signed else 2.0**64), top, iv)
        return iv & ((1 << fmt.bits) - 1)
    man = fmt.man_bits
    neg = torch.signbit(v)
    a = v.abs()
    _, exp = torch.frexp(a)  # a = mant * 2^exp, mant in [0.5, 1)
    big_l = exp.to(torch.int64) - 1
    field = big_l + fmt.bias
    subnormal = (big_l < fmt.emin) if fmt.subnormals else torch.zeros_like(neg)
    q = torch.where(subnormal, fmt.emin - man, big_l - man)
    scaled = torch.ldexp(a, (-q).to(torch.float64)).to(torch.int64)
    normal_code = (field.clamp(min=0) << man) | (scaled - (1 << man))
    code = torch.where(subnormal, scaled, normal_code)
    code = torch.where(a == 0, 0, code)
    if fmt.signed:
        sign = as_int64(fmt.sign_mask)
        code = code | torch.where(neg & ((a != 0) | fmt.has_negative_zero), sign, 0)
    if fmt.has_inf and fmt.inf_code is not None:
        sign = as_int64(fmt.sign_mask)
        code = torch.where(a.isinf(), fmt.inf_code | torch.where(neg, sign, 0), code)
    if fmt.nan_code is not None:
        code = torch.where(v.isnan(), fmt.nan_code, code)
    return code


_TABLES: dict[tuple[Format, torch.device, torch.dtype], torch.Tensor] = {}


def _table(fmt: Format, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    key = (fmt, device, dtype)
    if key not in _TABLES:
        from dtlab.scalar.codec import decode as decode_scalar

        values = [float(decode_scalar(c, fmt)) for c in range(1 << fmt.bits)]
        _TABLES[key] = torch.tensor(values, dtype=torch.float64).to(device=device, dtype=dtype)
    return _TABLES[key]


def decode(
    codes: torch.Tensor, fmt: Format | str | torch.dtype, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The values of bit patterns (any integer dtype; bits above the format's width are ignored).

    >>> import torch
    >>> decode(torch.tensor([126, 128, 127], dtype=torch.uint8), "fp8")
    tensor([448.,  -0.,  nan])
    """
    f = as_format(fmt)
    if codes.dtype.is_floating_point or codes.dtype == torch.bool:
        raise OptionError(f"decode needs integer codes, not {codes.dtype}")
    if f.bits <= 16:  # the low bits index a table (int32 indices: half the memory of int64)
        return _table(f, codes.device, dtype)[codes.to(torch.int32) & ((1 << f.bits) - 1)]
    c = codes.to(torch.int64)
    c = c & ((1 << f.bits) - 1) if f.bits < 64 else c
    if isinstance(f, IntFormat):
        if f.signed and f.bits < 64:
            c = torch.where(c >= (1 << (f.bits - 1)), c - (1 << f.bits), c)
        if not f.signed and f.bits == 64:  # patterns >= 2^63 are held as negative int64
            return torch.where(c < 0, c.double() + 2.0**64, c.double()).to(dtype)
        return c.to(dtype)
    return _decode_wide(c, f).to(dtype)


def _decode_wide(c: torch.Tensor, f: FloatFormat) -> torch.Tensor:
    sign = (c >> (f.bits - 1)) & 1 if f.signed else torch.zeros_like(c)
    mag_code = c & ((1 << (f.bits - 1)) - 1) if f.signed else c
    field = mag_code >> f.man_bits
    man = (mag_code & f.man_max_field).to(torch.float64)
    sub = (field == 0) & f.subnormals
    e = torch.where(sub, f.emin, field - f.bias).to(torch.float64)
    sig = torch.where(sub, man, man + 2.0**f.man_bits)
    v = torch.ldexp(sig, e - f.man_bits)
    if f.has_inf:
        v = torch.where((field == f.exp_max_field) & (man == 0), float("inf"), v)
    if f.nan is NanEncoding.IEEE:
        nan_mask = (field == f.exp_max_field) & (man != 0)
    elif f.nan is NanEncoding.ALL_ONES:
        nan_mask = mag_code == ((f.exp_max_field << f.man_bits) | f.man_max_field)
    else:  # NEG_ZERO, or NONE (no code matches)
        nan_mask = (c == as_int64(f.sign_mask)) & (f.nan is NanEncoding.NEG_ZERO)
    v = torch.where(sign == 1, -v, v)
    return torch.where(nan_mask, float("nan"), v)


# ---- native dtypes ------------------------------------------------------------------------


def to_dtype(
    x: torch.Tensor,
    fmt: Format | str | torch.dtype,
    *,
    rounding: Rounding | str = Rounding.NEAREST_EVEN,
    overflow: Overflow | str | None = None,
    subnormals: Subnormals | str = Subnormals.KEEP,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A real tensor of torch's native dtype for fmt, with dtlab's rounding and overflow rules
    (fp4 comes back packed as float4_e2m1fn_x2, element 0 in the low nibble).

    >>> import torch
    >>> to_dtype(torch.tensor([1000.0]), "fp8", overflow="saturate")
    tensor([448.], dtype=torch.float8_e4m3fn)
    """
    f = as_format(fmt)
    name = TORCH_NAMES.get(f.name)
    native = getattr(torch, name, None) if name else None
    if native is None or (isinstance(f, IntFormat) and f.bits not in (8, 16, 32, 64)):
        raise OptionError(f"torch has no usable dtype for {f.name}; use quantize or encode")
    if name == "float4_e2m1fn_x2":
        from dtlab.kernels.packing import pack

        codes = encode(
            x, f, rounding=rounding, overflow=overflow, subnormals=subnormals, generator=generator
        )
        if codes.numel() % 2 or x.dim() == 0:
            raise OptionError("float4_e2m1fn_x2 packs pairs: the last dimension must be even")
        packed = pack(codes.reshape(-1), 4).reshape(*x.shape[:-1], x.shape[-1] // 2)
        return packed.view(native)
    values = quantize(
        x.to(torch.float64) if f.bits > 24 else x,
        f,
        rounding=rounding,
        overflow=overflow,
        subnormals=subnormals,
        generator=generator,
    )
    if isinstance(f, IntFormat) and f.bits == 64:  # a cast of float64 2^63 would wrap
        return values_to_codes(values, f).view(native)
    return values.to(native)
