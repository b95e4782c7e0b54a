"""Pure-torch quantize: branch-free, device-agnostic (CPU and CUDA), and bit-identical to the
C kernel. It works on the float64 bit pattern of |x| read as an int64, exactly as the C kernel's
64-bit lanes do (see _kernel.h for the method)."""

from __future__ import annotations

import torch

from dtlab.kernels.params import KernelParams, LowRegion, RoundingCode

RNE, RNA, RTZ, UP, DOWN, SR = (int(code) for code in RoundingCode)
_MB, _EB, _SUB = 52, 1023, 1074
_M64 = (1 << 64) - 1


def as_int64(u: int) -> int:
    """A bit pattern of up to 64 bits (an unsigned constant) as the signed int64 torch stores."""
    return u - (1 << 64) if u >= 1 << 63 else u


def _srl(z: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 values (torch's >> is arithmetic)."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def rand32(seed: int, n: int, device: torch.device, offset: int = 0) -> torch.Tensor:
    """32 random bits per element: splitmix64 of (seed, index), as the C kernel draws them."""
    i = torch.arange(offset + 1, offset + n + 1, dtype=torch.int64, device=device)
    z = i * as_int64(0x9E3779B97F4A7C15) + as_int64(seed & _M64)
    z = (z ^ _srl(z, 30)) * as_int64(0xBF58476D1CE4E5B9)
    z = (z ^ _srl(z, 27)) * as_int64(0x94D049BB133111EB)
    z = z ^ _srl(z, 31)
    return _srl(z, 32)


def _f64(v: float, like: torch.Tensor) -> torch.Tensor:
    """A float64 scalar tensor: torch.where of two Python floats would make float32."""
    return torch.tensor(v, dtype=torch.float64, device=like.device)


def _pow2(q: torch.Tensor) -> torch.Tensor:
    """2^q as float64 for integer q in [-1074, 1023], built from its bits."""
    normal = (q + _EB).clamp(min=0) << _MB
    sub = torch.ones_like(q) << (q + _SUB).clamp(0, 62)
    return torch.where(q >= 1 - _EB, normal, sub).view(torch.float64)


CHUNK = 1 << 20  # elements per pass: bounds the temporaries (about 100 bytes an element)


def quantize_into(x: torch.Tensor, p: KernelParams, seed: int, out: torch.Tensor) -> torch.Tensor:
    """Fake-quantize x into out (same shape), a chunk at a time so memory stays bounded."""
    flat_x = x.reshape(-1)
    flat_out = out.view(-1) if out.is_contiguous() else None
    if flat_out is None or flat_x.numel() <= CHUNK:
        out.copy_(quantize_reference(x, p, seed))
        return out
    for start in range(0, flat_x.numel(), CHUNK):
        part = flat_x[start : start + CHUNK]
        flat_out[start : start + CHUNK] = quantize_reference(part, p, seed, offset=start)
    return out


def quantize_reference(
    x: torch.Tensor, p: KernelParams, seed: int = 0, offset: int = 0
) -> torch.Tensor:
    """Fake-quantize x (any float dtype) with parameters p; returns float64. ``offset`` is the
    flat index of x's first element (stochastic rounding draws per global index)."""
    xd = x.detach().to(torch.float64).reshape(-1)
    bits = xd.view(torch.int64)
    neg = bits < 0
    abits = bits & as_int64((1 << 63) - 1)
    a = abits.view(torch.float64)
    fd = abits >> _MB
    man = abits & ((1 << _MB) - 1)
    is_nan = (fd == 2047) & (man != 0)
    is_inf = (fd == 2047) & (man == 0)
    mode = int(p.rounding)
    if mode in (UP, DOWN):  # directed modes act on magnitudes: toward or away from zero
        away = ~neg if mode == UP else neg
        mode_t = torch.where(away, UP, RTZ)
    else:
        mode_t = torch.full_like(fd, mode)

    big_l = fd - _EB
    q = torch.zeros_like(fd) if p.is_int else big_l.clamp(min=p.emin) - p.man_bits
    d = torch.where(fd != 0, _MB - (big_l - q), q + _SUB).clamp(min=0)
    small = d > _MB
    dc = torch.where(small, 0, d)
    kept = abits >> dc
    rem = abits & ((torch.ones_like(dc) << dc) - 1)
    half = (torch.ones_like(dc) << dc) >> 1
    odd = torch.where((dc == _MB) & (fd != 0), 1, kept & 1)
    pq = _pow2(q)
    hq = _pow2((q - 1).clamp(min=-_SUB))
    v1 = p.v1
    if mode == SR:
        r = rand32(seed, xd.numel(), xd.device, offset)
        t = torch.where(dc <= 32, rem << (32 - dc).clamp(min=0), rem >> (dc - 32).clamp(min=0))
        t = torch.where(dc == 0, 0, t)
        c1 = (32 - q).clamp(max=1000)
        ts = (a * _pow2(c1) * _pow2(32 - q - c1)).to(torch.int64)
        up, sup = r < t, r < ts
        lup = r < (a * 4294967296.0 / v1).to(torch.int64)
    else:
        is_rne, is_rna, is_up = mode_t == RNE, mode_t == RNA, mode_t == UP
        up_rne = (rem > half) | ((rem == half) & (rem != 0) & (odd == 1))
        up = (is_rne & up_rne) | (is_rna & (rem >= half) & (rem != 0)) | (is_up & (rem != 0))
        sup = (is_rne & (a > hq)) | (is_rna & (a >= hq)) | (is_up & (a > 0))
        lup = (is_rne & (a + a > v1)) | (is_rna & (a + a >= v1)) | (is_up & (a > 0))

    mag = ((kept + up.to(torch.int64)) << dc).view(torch.float64)
    mag = torch.where(small, torch.where(sup, pq, 0.0), mag)
    if p.low_region:
        low = torch.where(lup | (p.low_region == LowRegion.V1_ONLY), _f64(v1, a), 0.0)
        mag = torch.where(a < v1, low, mag)
    if p.flush:
        mag = torch.where(mag < p.tiny, 0.0, mag)
    toward_zero = mode_t == RTZ
    ovf = torch.where(toward_zero | p.saturate, _f64(p.max_value, a), p.overflow_value)
    mag = torch.where(mag > p.max_value, ovf, mag)
    flip = neg & ((mag != 0) | p.neg_zero) & ~mag.isnan() & (p.is_int or p.signed)
    out = torch.where(flip, -mag, mag)
    if p.is_int:
        out = out.clamp(p.int_min, p.int_max)
        out = torch.where(out == 0, 0.0, out)
        if p.wrap:
            out = _wrap(out, p)
    elif not p.signed:
        out = torch.where(neg & (xd != 0), p.neg_out, out)
    out = torch.where(is_nan, p.nan_out, out)
    out = torch.where(is_inf, torch.where(neg, _f64(p.neg_inf_out, a), p.pos_inf_out), out)
    return out.reshape(x.shape)


def _wrap(v: torch.Tensor, p: KernelParams) -> torch.Tensor:
    """Keep the low int_bits bits of integer-valued v (two's complement), exactly."""
    m = v.abs()
    # below 2^63 the magnitude converts exactly; above, it is sig * 2^shift with shift >= 11
    bits64 = m.view(torch.int64)
    shift = (bits64 >> _MB) - _EB - _MB
    sig = (bits64 & ((1 << _MB) - 1)) | (1 << _MB)
    wide = torch.where(shift >= 64, 0, sig << shift.clamp(0, 63))
    small = m.clamp(max=2.0**62).to(torch.int64)
    iv = torch.where(m >= 2.0**62, wide, small)
    iv = torch.where(m.isnan() | m.isinf(), 0, iv)
    iv = torch.where(v < 0, -iv, iv)
    bits = p.int_bits
    if bits < 64:
        iv = iv & ((1 << bits) - 1)
        if p.signed:
            iv = torch.where(iv >= (1 << (bits - 1)), iv - (1 << bits), iv)
    elif not p.signed:
        return torch.where(iv < 0, iv.to(torch.float64) + 2.0**64, iv.to(torch.float64))
    return iv.to(torch.float64)
