"""The lesson's dot product, generalised: operations on inputs rounded to a format, with the
accumulation done in float64, float32, or the format itself (sequentially or pairwise, since
hardware accumulates both ways), against float64 references.

Accumulating "in the format" rounds every partial sum into the format exactly once: the
product of two values of the format is exact in float64, and each addition is made exact
(TwoSum) and rounded to odd before the single rounding into the format, which then equals
rounding the exact sum (Boldo and Melquiond, "Emulation of FMA and correctly rounded sums:
proved algorithms using rounding to odd", IEEE TC 2008). Formats of more than 51
significant bits (float64) accumulate in plain float64.

"format" adds the products in order: s = Q(s + a[i] * b[i]) from s = 0. "pairwise" adds
neighbours level by level, a level of odd length (one term included) padded with a zero,
until one sum is left; each sum rounded into the format once. Either way the result is a
value of the format, whatever the length: the sum of no terms is Q(0).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass

import torch

from dtlab.errors import OptionError
from dtlab.formats import FloatFormat, Format
from dtlab.formats.quantizer import packed_bits, packed_size
from dtlab.kernels import has_c_kernel, quantize
from dtlab.kernels.native import DotAccumulation, dot_sequential
from dtlab.kernels.params import as_format, prepare
from dtlab.modes import Overflow, Rounding, parse_enum

MAX_SEQUENTIAL_TORCH = 1 << 16  # without the C kernel a sequential sum is a Python loop
MAX_TERMS = 1 << 26  # products held at once (float64, a few copies): about 2 GiB at the cap
FLOAT64_DIGITS = 53 * math.log10(2)


class Accumulate(enum.Enum):
    FLOAT64 = "float64"
    FLOAT32 = "float32"  # sequential fused multiply-add in float32
    FORMAT = "format"  # sequential, each partial sum rounded into the format
    PAIRWISE = "pairwise"  # a binary tree of sums, each rounded into the format

    @classmethod
    def parse(cls, value: str | Accumulate) -> Accumulate:
        return parse_enum(cls, value, "accumulation")


@dataclass(frozen=True)
class OpResult:
    """One low-precision operation against float64 references (relative errors are of the
    whole result: |got - ref| / |ref| for a dot product, Frobenius norms for a matmul)."""

    format: Format
    accumulate: Accumulate
    shape: tuple[int, ...]  # (n,) for dot, (m, k, n) for matmul
    value: float | None  # the dot product; None for a matmul
    exact: float | None  # float64 dot of the original inputs
    rounded_inputs: float | None  # float64 dot of the rounded inputs
    rel_error: float  # against the original inputs
    rel_error_rounding: float  # against the rounded inputs: what accumulation alone costs
    correct_digits: float  # -log10(rel_error); inf when exact
    digits_lost: float  # float64's 15.95 digits minus correct_digits
    operand_bytes: int  # memory the two operands take in this format, each packed to whole bytes


def _rel(got: torch.Tensor | float, ref: torch.Tensor | float) -> float:
    g = torch.as_tensor(got, dtype=torch.float64)
    r = torch.as_tensor(ref, dtype=torch.float64)
    num, den = float(torch.linalg.vector_norm(g - r)), float(torch.linalg.vector_norm(r))
    if math.isnan(num):
        return math.nan
    return num / den if den else (0.0 if num == 0 else math.inf)


def _digits(rel: float) -> float:
    if math.isnan(rel):
        return math.nan
    return math.inf if rel == 0 else -math.log10(rel)


def add_round_to_odd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a + b in float64, rounded to odd (the C kernel's add_round_to_odd, elementwise)."""
    s = a + b
    bb = s - a
    err = (a - (s - bb)) + (b - bb)
    bits = s.view(torch.int64)
    step = (err != 0) & ((err > 0) != (s > 0)) & s.isfinite()
    bits = torch.where(step, bits - 1, bits)
    bits = torch.where((err != 0) & s.isfinite(), bits | 1, bits)
    return bits.view(torch.float64)


@dataclass(frozen=True)
class _Operands:
    """An operation's options parsed and its inputs in float64, as given and rounded."""

    a: torch.Tensor
    b: torch.Tensor
    qa: torch.Tensor
    qb: torch.Tensor
    mode: Rounding
    policy: Overflow | None
    acc: Accumulate

    @classmethod
    def of(
        cls,
        a: torch.Tensor,
        b: torch.Tensor,
        fmt: Format,
        rounding: Rounding | str,
        overflow: Overflow | str | None,
        accumulate: Accumulate | str,
    ) -> _Operands:
        mode = Rounding.parse(rounding)
        policy = Overflow.parse(overflow) if overflow is not None else None
        ad, bd = a.double(), b.double()
        qa = quantize(ad, fmt, rounding=mode, overflow=policy)
        qb = quantize(bd, fmt, rounding=mode, overflow=policy)
        return cls(ad, bd, qa, qb, mode, policy, Accumulate.parse(accumulate))


def _sum_in_format(
    a: torch.Tensor,
    b: torch.Tensor,
    fmt: Format,
    acc: Accumulate,
    mode: Rounding,
    policy: Overflow | None,
) -> float:
    """a·b (vectors of fmt's values) accumulated as asked."""
    if acc is Accumulate.FLOAT64:
        return float(torch.dot(a, b))
    prep = prepare(fmt, mode, policy, "keep")
    if acc in (Accumulate.FLOAT32, Accumulate.FORMAT) and has_c_kernel():
        if acc is Accumulate.FLOAT32:
            kind = DotAccumulation.FLOAT32_FMA
        else:
            kind = DotAccumulation.FLOAT64_FMA if _wide(fmt) else DotAccumulation.FORMAT
        return dot_sequential(a, b, prep, kind)
    if acc is Accumulate.FLOAT32:
        return float(torch.dot(a.float(), b.float()))  # torch's own order, documented
    v = a * b  # products of two values of the format: exact in float64
    if acc is Accumulate.FORMAT:
        if v.numel() > MAX_SEQUENTIAL_TORCH:
            raise OptionError(f"a sequential sum of {v.numel():,} terms needs the C kernel")
        s = torch.zeros((), dtype=torch.float64)
        for term in v:
            s = _round(add_round_to_odd(s, term), fmt, mode, policy)
        return float(s if v.numel() else _round(s, fmt, mode, policy))
    return float(_pairwise(v, fmt, mode, policy))


def _pairwise(
    terms: torch.Tensor, fmt: Format, mode: Rounding, policy: Overflow | None
) -> torch.Tensor:
    """The pairwise tree over the first dimension of terms (see the module docstring): every
    level, the first (a single term, or none) included, is reduced at least once, so every
    result is a sum rounded into the format."""
    level = terms
    while True:
        pad = 2 if level.shape[0] == 0 else level.shape[0] % 2
        if pad:
            level = torch.cat([level, level.new_zeros(pad, *level.shape[1:])])
        level = _round(add_round_to_odd(level[0::2], level[1::2]), fmt, mode, policy)
        if level.shape[0] == 1:
            return level[0]


def _wide(fmt: Format) -> bool:
    return (isinstance(fmt, FloatFormat) and fmt.man_bits > 50) or fmt.bits > 50


def _round(t: torch.Tensor, fmt: Format, mode: Rounding, policy: Overflow | None) -> torch.Tensor:
    if _wide(fmt):
        return t
    return quantize(t, fmt, rounding=mode, overflow=policy)


def dot(
    a: torch.Tensor,
    b: torch.Tensor,
    fmt: Format | str,
    *,
    accumulate: Accumulate | str = Accumulate.FLOAT32,
    rounding: Rounding | str = Rounding.NEAREST_EVEN,
    overflow: Overflow | str | None = None,
) -> OpResult:
    """a·b with a and b rounded into fmt, accumulated as asked.

    >>> import torch
    >>> x = torch.tensor([0.1, 0.2, 0.3])
    >>> r = dot(x, x, "bf16", accumulate="format")
    >>> r.value, round(r.rel_error, 6)
    (0.140625, 0.004464)
    """
    f = as_format(fmt)
    _check_vectors(a, b)
    return _dot(_Operands.of(a, b, f, rounding, overflow, accumulate), f)


def _packed_bytes(count: int, fmt: Format) -> int:
    """Bytes of ``count`` values of fmt, packed below 8 bits, rounded up to whole bytes."""
    return packed_size(count, packed_bits(fmt))


def _check_vectors(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.dim() != 1 or b.dim() != 1:
        raise OptionError(f"dot needs two vectors, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape != b.shape:
        raise OptionError(
            f"dot needs two vectors of one length; these differ in length: {a.numel()} and "
            f"{b.numel()}"
        )
    if a.numel() > MAX_TERMS:
        raise OptionError(
            f"dot of {a.numel():,} values is more than {MAX_TERMS:,}: the experiment holds "
            "several float64 copies; use a sample of the vectors"
        )


def _dot(op: _Operands, f: Format) -> OpResult:
    exact = float(torch.dot(op.a, op.b))
    rounded = float(torch.dot(op.qa, op.qb))
    value = _sum_in_format(op.qa, op.qb, f, op.acc, op.mode, op.policy)
    rel = _rel(value, exact)
    n = op.a.numel()
    return OpResult(
        format=f,
        accumulate=op.acc,
        shape=(n,),
        value=value,
        exact=exact,
        rounded_inputs=rounded,
        rel_error=rel,
        rel_error_rounding=_rel(value, rounded),
        correct_digits=_digits(rel),
        digits_lost=FLOAT64_DIGITS - _digits(rel),
        operand_bytes=2 * _packed_bytes(n, f),
    )


def matmul(
    a: torch.Tensor,
    b: torch.Tensor,
    fmt: Format | str,
    *,
    accumulate: Accumulate | str = Accumulate.FLOAT32,
    rounding: Rounding | str = Rounding.NEAREST_EVEN,
    overflow: Overflow | str | None = None,
) -> OpResult:
    """A @ B with A and B rounded into fmt; errors are relative Frobenius norms."""
    f = as_format(fmt)
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[0]:
        raise OptionError(
            f"matmul needs (m, k) and (k, n) matrices, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    terms = a.shape[0] * a.shape[1] * b.shape[1]
    if terms > MAX_TERMS:
        raise OptionError(f"matmul of {terms:,} products is more than {MAX_TERMS:,}")
    op = _Operands.of(a, b, f, rounding, overflow, accumulate)
    qa, qb, mode, policy, acc = op.qa, op.qb, op.mode, op.policy, op.acc
    exact, rounded = op.a @ op.b, qa @ qb
    got = _accumulate_matmul(qa, qb, f, acc, mode, policy)
    rel = _rel(got, exact)
    size = _packed_bytes(a.numel(), f) + _packed_bytes(b.numel(), f)
    return OpResult(
        format=f,
        accumulate=acc,
        shape=(a.shape[0], a.shape[1], b.shape[1]),
        value=None,
        exact=None,
        rounded_inputs=None,
        rel_error=rel,
        rel_error_rounding=_rel(got, rounded),
        correct_digits=_digits(rel),
        digits_lost=FLOAT64_DIGITS - _digits(rel),
        operand_bytes=size,
    )


def _accumulate_matmul(
    qa: torch.Tensor,
    qb: torch.Tensor,
    f: Format,
    acc: Accumulate,
    mode: Rounding,
    policy: Overflow | None,
) -> torch.Tensor:
    """qa @ qb (float64 matrices of f's values) accumulated as asked, in float64."""
    if acc is Accumulate.FLOAT64:
        return qa @ qb
    if acc is Accumulate.FLOAT32:
        return (qa.float() @ qb.float()).double()
    if acc is Accumulate.PAIRWISE:
        return _pairwise(qa.T[:, :, None] * qb[:, None, :], f, mode, policy)  # (k, m, n)
    got = torch.zeros(qa.shape[0], qb.shape[1], dtype=torch.float64)
    for k in range(qa.shape[1]):
        got = _round(add_round_to_odd(got, qa[:, k, None] * qb[None, k, :]), f, mode, policy)
    return got if qa.shape[1] else _round(got, f, mode, policy)


@dataclass(frozen=True)
class DotExperiment:
    """The lesson's experiment: one pair of vectors, several formats and accumulations."""

    source: str
    n: int
    exact: float  # float64 dot product of the original inputs
    results: tuple[OpResult, ...]


def dot_experiment(
    source: str,
    a: torch.Tensor,
    b: torch.Tensor,
    fmts: list[Format],
    accumulations: list[Accumulate],
    *,
    rounding: Rounding = Rounding.NEAREST_EVEN,
    overflow: Overflow | None = None,
) -> DotExperiment:
    a1, b1 = a.reshape(-1), b.reshape(-1)
    _check_vectors(a1, b1)
    results = []
    for f in fmts:  # each format rounds the inputs once, for every accumulation
        op = _Operands.of(a1, b1, f, rounding, overflow, Accumulate.FLOAT64)
        results += [_dot(dataclasses.replace(op, acc=acc), f) for acc in accumulations]
    exact = float(torch.dot(a1.double(), b1.double()))
    return DotExperiment(source, a1.numel(), exact, tuple(results))
