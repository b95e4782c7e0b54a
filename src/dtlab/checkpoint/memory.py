"""How much memory a checkpoint's weights take in other formats, from its header alone.

A *target* is a quantizer (``dtlab.formats.quantizer``), written ``NAME[:OPTION...]`` in the
grammar of ``dtlab quantize --as``:

* a dtlab format (``fp32``, ``bf16``, ``fp8``, ``int8``, ``float6_e2m3fn``, ...). Floats are
  plain casts (no scale); integers have one fp32 scale per tensor, symmetric, unless an
  option says otherwise.
* options: ``gN`` (groups of N along the last dimension, one fp32 scale each), ``channel``
  (one fp32 scale per index of dim 0; tensors of rank < 2 get one), ``tensor`` (one fp32
  scale), ``asym`` (a zero point of the format's width per scale; unsigned integers always
  have one), ``sym``.
* a block format of ``dtlab.formats.blocks`` (``mxfp4``, ``mxfp8_e4m3``, ``nvfp4``, ``nf4``,
  ...): blocks along the last dimension, scale bits as ``effective_bits`` counts them, plus
  NVFP4's one fp32 per tensor.

Conventions (``analysis.intquant``, ``analysis.blockquant``): int4:g128 symmetric is 4 + 32/128
bits per value. A row whose length is not a multiple of the group size ends in a shorter group
with a scale of its own, so a tensor of shape (..., L) has rows x ceil(L / G) scales. A tensor
stores its codes, its scales and its zero points as three packed arrays, each rounded up to
whole bytes.

Policy: quantizing targets (integer or block formats, any scaled format, floats under 16 bits)
leave alone the tensors usually kept in high precision: rank <= 1 (biases, norms, scalars) and
names matching ``keep_high_precision`` (embeddings, norms, biases, lm_head by default). These
keep their *stored* dtype (an fp32 norm stays fp32, not bf16: what a quantizer that skips a
module leaves). Plain casts to floats of 16 bits or more (fp32, bf16, fp16) convert every
floating-point tensor, as ``model.to(dtype)`` does. Integer and bool tensors (position ids,
already-packed codes) keep their stored dtype in every target. Tied tensors count once.


>>> parse_quantizer("int4:g128").nbytes((1, 130))  # 65 bytes of codes, 2 fp32 scales
73
>>> describe_target(parse_quantizer("int8"))
'int8: int8, 8 bits per value, one fp32 scale per tensor'
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

from dtlab.checkpoint.handle import Checkpoint
from dtlab.checkpoint.header import TensorEntry, is_float_dtype
from dtlab.checkpoint.prequant.layout import PackedWeight, PrequantSummary, layout_of
from dtlab.checkpoint.prequant.notes import layout_notes
from dtlab.defaults import MEMORY_TARGETS
from dtlab.errors import OptionError
from dtlab.formats.blocks import ScaleKind
from dtlab.formats.ggml import GGML_TYPES, describe_ggml
from dtlab.formats.quantizer import Granularity, Quantizer
from dtlab.formats.quantizer_spec import parse_quantizer
from dtlab.numtext import counted

__all__ = [
    "DEFAULT_PATTERNS",
    "DEFAULT_TARGETS",
    "MemoryTable",
    "TargetTotal",
    "TensorMemory",
    "describe_target",
    "memory_table",
]

DEFAULT_TARGETS = MEMORY_TARGETS
# Globs are matched case-insensitively against the full name; "re:..." is a regex (re.search).
DEFAULT_PATTERNS = ("*embed*", "*.wte.*", "*.wpe.*", "*norm*", "*bias", "*lm_head*")


def describe_target(t: Quantizer) -> str:
    """One line for the assumptions under the table."""
    if t.ggml is not None:
        return (
            f"{describe_ggml(t.ggml, t.name)}, along the last dimension; a row that is not "
            "whole blocks is counted padded (llama.cpp stores such a tensor in another type)"
        )
    b = t.block
    if b is not None:
        extra = " plus one fp32 scale per tensor" if t.tensor_scale_bits else ""
        scale = {
            ScaleKind.E8M0: "an E8M0",
            ScaleKind.UE4M3: "an E4M3",
            ScaleKind.ABSMAX_FP32: "an fp32 absmax",
        }[b.scale]
        nf4 = (
            "; no double quantization (bitsandbytes' default one costs about 4.127 bits)"
            if b.name == "nf4"
            else ""
        )
        return (
            f"{t.name}: blocks of {b.block_size} along the last dimension with {scale} "
            f"scale ({_show_bits(b.effective_bits)} bits per value){extra}{nf4}"
        )
    text = f"{t.name}: {t.format.name}, {t.stored_bits} bits per value"
    zp = f" and a {t.zero_point_bits}-bit zero point" if t.zero_point_bits else ""
    if t.granularity is Granularity.NONE:
        return f"{text}, no scale"
    if t.granularity is Granularity.TENSOR:
        return f"{text}, one fp32 scale{zp} per tensor"
    if t.granularity is Granularity.CHANNEL:
        return f"{text}, one fp32 scale{zp} per index of dim 0 (per tensor below rank 2)"
    per = Fraction(t.scale_bits + t.zero_point_bits, t.group_size or 1)
    return (
        f"{text}, groups of {t.group_size} along the last dimension with one fp32 "
        f"scale{zp} each ({_show_bits(t.stored_bits + per)} bits per value; a row's "
        "shorter last group has its own)"
    )


def _show_bits(bits: Fraction | int) -> str:
    return str(int(bits)) if Fraction(bits).denominator == 1 else f"{float(bits):g}"


def quantizes(t: Quantizer) -> bool:
    """Whether the keep-in-high-precision policy applies (everything but 16+-bit casts)."""
    return t.scaled or t.stored_bits < 16


@dataclass(frozen=True)
class TensorMemory:
    """One tensor's row of the breakdown: ``nbytes`` has one entry per target, in order."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    numel: int
    stored_bytes: int
    kept: str | None  # why quantizing targets leave it alone, or None
    tied_to: str | None  # counted under that name instead (bytes 0 here)
    nbytes: tuple[int, ...]
    stored_as: str | None = None  # a pre-quantized weight's layout ("gptq int4 g128")


@dataclass(frozen=True)
class TargetTotal:
    """A target's total: bytes, and how many parameters it converts or keeps as stored."""

    target: str
    nbytes: int
    converted_params: int
    kept_params: int
    json_extra: ClassVar[tuple[str, ...]] = ("bits_per_param",)  # read by render.jsonable

    @property
    def bits_per_param(self) -> float:
        total = self.converted_params + self.kept_params
        return self.nbytes * 8 / total if total else 0.0


@dataclass(frozen=True)
class MemoryTable:
    """Weights memory per target, with the assumptions that produced it."""

    source: str
    targets: tuple[Quantizer, ...]
    params_by_dtype: tuple[tuple[str, int], ...]  # tied tensors once, largest first
    total_params: int
    stored_bytes: int
    totals: tuple[TargetTotal, ...]
    tensors: tuple[TensorMemory, ...]
    assumptions: tuple[str, ...]
    layout: PrequantSummary | None = None  # a pre-quantized checkpoint's layout


def memory_table(
    ckpt: Checkpoint,
    targets: tuple[str, ...] | list[str] = DEFAULT_TARGETS,
    *,
    keep_high_precision: tuple[str, ...] | list[str] = DEFAULT_PATTERNS,
    keep_1d: bool = True,
) -> MemoryTable:
    """The memory of the checkpoint's weights in each target, from the header alone.

    ``keep_high_precision``: name patterns (globs, case-insensitive; ``re:`` for a regex)
    that quantizing targets leave at their stored dtype; ``keep_1d``: tensors of rank <= 1 too.
    """
    parsed = tuple(parse_quantizer(t) for t in targets)
    patterns = tuple(keep_high_precision)
    matchers = [_matcher(p) for p in patterns]
    rows: list[TensorMemory] = []
    by_dtype: dict[str, int] = {}
    layout = layout_of(ckpt)  # a packed weight stands in for its parts, at its logical shape
    for e in layout.entries(ckpt.tensors):
        tied = ckpt.tied_to(e.name)
        kept = _kept(e, matchers, patterns, keep_1d)
        stored_as = e.label if isinstance(e, PackedWeight) else None
        if tied is None:
            key = stored_as or e.dtype
            by_dtype[key] = by_dtype.get(key, 0) + e.numel
        sizes = tuple(0 if tied else _size(e, t, kept) for t in parsed)
        rows.append(
            TensorMemory(
                name=e.name,
                shape=e.shape,
                dtype=e.dtype,
                numel=e.numel,
                stored_bytes=0 if tied else e.nbytes,
                kept=kept,
                tied_to=tied,
                nbytes=sizes,
                stored_as=stored_as,
            )
        )
    live = [r for r in rows if r.tied_to is None]  # tied tensors count once
    totals = tuple(_total(i, t, live) for i, t in enumerate(parsed))
    return MemoryTable(
        source=ckpt.label,
        targets=parsed,
        params_by_dtype=tuple(sorted(by_dtype.items(), key=lambda kv: (-kv[1], kv[0]))),
        total_params=sum(by_dtype.values()),
        stored_bytes=sum(r.stored_bytes for r in rows),
        totals=totals,
        tensors=tuple(rows),
        assumptions=layout_notes(layout) + _assumptions(ckpt, parsed, patterns, keep_1d, live),
        layout=layout.summary() if layout.weights or not layout.recognised else None,
    )


def _matcher(pattern: str) -> Callable[[str], bool]:
    if pattern.startswith("re:"):
        try:
            regex = re.compile(pattern[3:])
        except re.error as exc:
            raise OptionError(f"bad name pattern {pattern!r}: {exc}") from None
        return lambda name: regex.search(name) is not None
    glob = re.compile(fnmatch.translate(pattern.lower()))
    return lambda name: glob.match(name.lower()) is not None


def _kept(
    e: TensorEntry, matchers: list[Callable[[str], bool]], patterns: tuple[str, ...], keep_1d: bool
) -> str | None:
    if not is_float_dtype(e.dtype):
        return f"{e.dtype} is not a floating-point dtype"
    if keep_1d and len(e.shape) <= 1:
        return "rank <= 1 (bias, norm or scalar)"
    for pattern, matches in zip(patterns, matchers, strict=True):
        if matches(e.name):
            return f"name matches {pattern!r}"
    return None


def _converts(dtype: str, kept: str | None, t: Quantizer) -> bool:
    """Whether target t stores a tensor anew; otherwise it keeps its stored bytes."""
    return is_float_dtype(dtype) and (kept is None or not quantizes(t))


def _size(e: TensorEntry, t: Quantizer, kept: str | None) -> int:
    return t.nbytes(e.shape) if _converts(e.dtype, kept, t) else e.nbytes


def _total(i: int, t: Quantizer, live: list[TensorMemory]) -> TargetTotal:
    kept = [r for r in live if not _converts(r.dtype, r.kept, t)]
    return TargetTotal(
        t.name,
        sum(r.nbytes[i] for r in live),
        sum(r.numel for r in live) - sum(r.numel for r in kept),
        sum(r.numel for r in kept),
    )


def _assumptions(
    ckpt: Checkpoint,
    targets: tuple[Quantizer, ...],
    patterns: tuple[str, ...],
    keep_1d: bool,
    live: list[TensorMemory],
) -> tuple[str, ...]:
    kept = [r for r in live if is_float_dtype(r.dtype) and r.kept is not None]
    rules = ["rank <= 1 (biases, norms)"] if keep_1d else []
    rules += [f"names matching {', '.join(patterns)}"] if patterns else []
    keep = (
        f"Quantizing targets (integer, block, scaled or sub-16-bit formats) keep at the stored "
        f"dtype: {' and '.join(rules)} ({counted(len(kept), 'tensor')}, "
        f"{counted(sum(r.numel for r in kept), 'parameter')})."
        if rules
        else "Quantizing targets convert every floating-point tensor."
    )
    out = [
        "Weights only, from the header: no activations, KV cache, optimizer state or runtime "
        "overhead.",
        keep,
        "Casts to floats of 16 bits or more convert every floating-point tensor.",
    ]
    others = [r for r in live if not is_float_dtype(r.dtype)]
    if others:
        n = sum(r.numel for r in others)
        out.append(
            "Integer/bool tensors keep their stored dtype in every target "
            f"({counted(len(others), 'tensor')}, {counted(n, 'value')})."
        )
    if ckpt.tied:
        out.append(
            "Tied tensors (one storage, several names) count once: "
            f"{counted(len(ckpt.tied), 'group')}."
        )
    out.append("Codes, scales and zero points of a tensor are each rounded up to whole bytes.")
    stored = sorted({r.dtype for r in live if r.dtype in GGML_TYPES})
    out += [
        describe_ggml(GGML_TYPES[d], f"stored {d}") for d in stored if GGML_TYPES[d].block_size > 1
    ]
    out += [describe_target(t) for t in targets]
    return tuple(out)
