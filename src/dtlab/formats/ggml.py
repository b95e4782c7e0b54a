"""GGML tensor types (the ``type`` of a GGUF tensor) as plain data: each type's block of
``block_size`` values stored in ``type_size`` bytes, composed from the fields of its C struct,
so bits per weight follow exactly. docs/gguf.md cites ``ggml-common.h`` for every layout;
``tests/test_gguf.py`` holds the sizes equal to gguf-py's ``GGML_QUANT_SIZES``.

No torch and no numpy (``dtlab model memory`` of a GGUF counts bytes from this table).

>>> t = get_ggml_type("q4_k")
>>> t.type_id, t.block_size, t.type_size, str(t.bits_per_weight)
(12, 256, 144, '9/2')
>>> get_ggml_type("Q4_1").nbytes((576, 1536))  # 576 rows of 48 blocks of 20 bytes
552960
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from dtlab.errors import UnknownFormatError

__all__ = [
    "GGML_QUANTIZERS",
    "GGML_TARGETS",
    "GGML_TYPES",
    "GGMLType",
    "describe_ggml",
    "get_ggml_type",
    "ggml_type_by_id",
]

_QK_K = 256  # ggml-common.h QK_K: the super-block of the k-quants and i-quants


@dataclass(frozen=True)
class GGMLType:
    """One GGML type: ``fields`` are its block struct's members as (name, bytes), in order;
    ``code_bits`` the nominal width of one value's code; ``scale`` the format of the block
    scale ``d`` (float16, float32, e8m0 or ue4m3), or None for plain types."""

    name: str  # as ggml.h spells it: Q4_0, Q4_K, F16
    type_id: int  # enum ggml_type
    block_size: int
    fields: tuple[tuple[str, int], ...]
    code_bits: int
    kind: str  # "float", "int" or "quant"
    scale: str | None = None

    @property
    def type_size(self) -> int:
        """Bytes of one block."""
        return sum(n for _, n in self.fields)

    @property
    def bits_per_weight(self) -> Fraction:
        """Exact storage bits per value: type_size * 8 / block_size."""
        return Fraction(self.type_size * 8, self.block_size)

    @property
    def is_float(self) -> bool:
        """Whether its values are real numbers (floats and quantized weights)."""
        return self.kind != "int"

    def nbytes(self, shape: tuple[int, ...]) -> int:
        """Bytes of a tensor of this shape, numpy order (rows along the last axis). A row whose
        length is not a multiple of the block is counted padded to whole blocks (llama.cpp
        itself stores only whole blocks and picks another type for such a tensor)."""
        if not shape:  # a scalar: one block
            return self.type_size
        rows = math.prod(shape[:-1])
        if rows == 0 or shape[-1] == 0:
            return 0
        return rows * -(-shape[-1] // self.block_size) * self.type_size


def _t(
    name: str, tid: int, block: int, fields: str, code_bits: int, scale: str | None = "float16"
) -> GGMLType:
    parts = tuple((f.split(":")[0], int(f.split(":")[1])) for f in fields.split())
    return GGMLType(name, tid, block, parts, code_bits, "quant", scale)


def _plain(name: str, tid: int, nbytes: int, kind: str) -> GGMLType:
    return GGMLType(name, tid, 1, (("value", nbytes),), nbytes * 8, kind, None)


K = _QK_K
# ggml.h enum ggml_type ids; fields in bytes from ggml-common.h's block_* structs (docs/gguf.md)
_TYPES = (
    _plain("F32", 0, 4, "float"),
    _plain("F16", 1, 2, "float"),
    _t("Q4_0", 2, 32, "d:2 qs:16", 4),
    _t("Q4_1", 3, 32, "d:2 m:2 qs:16", 4),
    _t("Q5_0", 6, 32, "d:2 qh:4 qs:16", 5),
    _t("Q5_1", 7, 32, "d:2 m:2 qh:4 qs:16", 5),
    _t("Q8_0", 8, 32, "d:2 qs:32", 8),
    _t("Q8_1", 9, 32, "d:4 s:4 qs:32", 8, "float32"),  # gguf-py's sizes: see docs/gguf.md
    _t("Q2_K", 10, K, f"scales:{K // 16} qs:{K // 4} d:2 dmin:2", 2),
    _t("Q3_K", 11, K, f"hmask:{K // 8} qs:{K // 4} scales:12 d:2", 3),
    _t("Q4_K", 12, K, f"d:2 dmin:2 scales:12 qs:{K // 2}", 4),
    _t("Q5_K", 13, K, f"d:2 dmin:2 scales:12 qh:{K // 8} qs:{K // 2}", 5),
    _t("Q6_K", 14, K, f"ql:{K // 2} qh:{K // 4} scales:{K // 16} d:2", 6),
    _t("Q8_K", 15, K, f"d:4 qs:{K} bsums:{K // 8}", 8, "float32"),
    _t("IQ2_XXS", 16, K, f"d:2 qs:{K // 4}", 2),
    _t("IQ2_XS", 17, K, f"d:2 qs:{K // 4} scales:{K // 32}", 2),
    _t("IQ3_XXS", 18, K, f"d:2 qs:{3 * K // 8}", 3),
    _t("IQ1_S", 19, K, f"d:2 qs:{K // 8} qh:{K // 16}", 1),
    _t("IQ4_NL", 20, 32, "d:2 qs:16", 4),
    _t("IQ3_S", 21, K, f"d:2 qs:{K // 4} qh:{K // 32} signs:{K // 8} scales:{K // 64}", 3),
    _t("IQ2_S", 22, K, f"d:2 qs:{K // 4} qh:{K // 32} scales:{K // 32}", 2),
    _t("IQ4_XS", 23, K, f"d:2 scales_h:2 scales_l:{K // 64} qs:{K // 2}", 4),
    _plain("I8", 24, 1, "int"),
    _plain("I16", 25, 2, "int"),
    _plain("I32", 26, 4, "int"),
    _plain("I64", 27, 8, "int"),
    _plain("F64", 28, 8, "float"),
    _t("IQ1_M", 29, K, f"qs:{K // 8} qh:{K // 16} scales:{K // 32}", 1),
    _plain("BF16", 30, 2, "float"),
    _t("TQ1_0", 34, K, f"qs:{(K - 4 * K // 64) // 5} qh:{K // 64} d:2", 2),
    _t("TQ2_0", 35, K, f"qs:{K // 4} d:2", 2),
    _t("MXFP4", 39, 32, "e:1 qs:16", 4, "float8_e8m0fnu"),
    _t("NVFP4", 40, 64, "d:4 qs:32", 4, "float8_e4m3fn"),
    _t("Q1_0", 41, 128, "d:2 qs:16", 1),
)

GGML_TYPES: dict[str, GGMLType] = {t.name: t for t in _TYPES}
_BY_ID = {t.type_id: t for t in _TYPES}
# what dtlab quantizes on tensors, bit-exact with gguf-py's quants.quantize
GGML_QUANTIZERS = ("q8_0", "q4_0", "q4_1", "q5_0", "q5_1")
# valid `--to`/`--as` names: every stored quantized type but the intermediates of dot products
# (Q8_1, Q8_K) and MXFP4/NVFP4, which dtlab's own mxfp4 and nvfp4 already name
GGML_TARGETS: dict[str, GGMLType] = {
    t.name.lower(): t
    for t in _TYPES
    if t.kind == "quant" and t.name not in ("Q8_1", "Q8_K", "MXFP4", "NVFP4")
}


def get_ggml_type(name: str | GGMLType) -> GGMLType:
    """The GGML type of a name (case-insensitive), or the type itself."""
    if isinstance(name, GGMLType):
        return name
    found = GGML_TYPES.get(str(name).strip().upper())
    if found is None:
        raise UnknownFormatError(f"unknown GGML type {name!r}; known: {', '.join(GGML_TYPES)}")
    return found


def ggml_type_by_id(type_id: int) -> GGMLType | None:
    """The type of an ``enum ggml_type`` value, or None for an id no ggml release defines."""
    return _BY_ID.get(type_id)


def describe_ggml(t: GGMLType, name: str | None = None) -> str:
    """One line for memory tables.

    >>> describe_ggml(get_ggml_type("q8_0"))
    'q8_0: GGML Q8_0, blocks of 32 values in 34 bytes (d:2 qs:32), 8.5 bits per value'
    """
    layout = " ".join(f"{f}:{n}" for f, n in t.fields)
    bits = t.bits_per_weight
    shown = str(bits.numerator) if bits.denominator == 1 else f"{float(bits):g}"
    return (
        f"{name or t.name.lower()}: GGML {t.name}, blocks of {t.block_size} values in "
        f"{t.type_size} bytes ({layout}), {shown} bits per value"
    )
