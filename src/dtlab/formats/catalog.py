"""The catalogue of named formats, their aliases, and lookup by any name a user may type.

Everything here is plain data. Values are derived by the descriptors, never typed in.
"""

from __future__ import annotations

import difflib
from functools import lru_cache

from dtlab.errors import FormatSpecError, UnknownFormatError
from dtlab.formats.descriptor import FloatFormat, Format, IntFormat, NanEncoding
from dtlab.formats.spec import apply_overrides, parse_short

_IEEE, _ONES, _NZ, _NONE = (
    NanEncoding.IEEE,
    NanEncoding.ALL_ONES,
    NanEncoding.NEG_ZERO,
    NanEncoding.NONE,
)

# name: (exp_bits, man_bits, bias, signed, nan, subnormals, container_bits)
_FLOATS: dict[str, tuple[int, int, int, bool, NanEncoding, bool, int]] = {
    "float64": (11, 52, 1023, True, _IEEE, True, 0),
    "float32": (8, 23, 127, True, _IEEE, True, 0),
    "tfloat32": (8, 10, 127, True, _IEEE, True, 32),  # 19 bits in a 32-bit slot (CUDA __nv_tf32)
    "float16": (5, 10, 15, True, _IEEE, True, 0),
    "bfloat16": (8, 7, 127, True, _IEEE, True, 0),
    "float8_e4m3fn": (4, 3, 7, True, _ONES, True, 0),  # OCP FP8 E4M3, max 448
    "float8_e4m3fnuz": (4, 3, 8, True, _NZ, True, 0),
    "float8_e4m3b11fnuz": (4, 3, 11, True, _NZ, True, 0),
    "float8_e4m3": (4, 3, 7, True, _IEEE, True, 0),  # IEEE-like, max 240 (ml_dtypes)
    "float8_e5m2": (5, 2, 15, True, _IEEE, True, 0),
    "float8_e5m2fnuz": (5, 2, 16, True, _NZ, True, 0),
    "float8_e3m4": (3, 4, 3, True, _IEEE, True, 0),
    "float8_e8m0fnu": (8, 0, 127, False, _ONES, False, 0),  # OCP MX E8M0 scale
    "float6_e2m3fn": (2, 3, 1, True, _NONE, True, 0),  # OCP MX FP6
    "float6_e3m2fn": (3, 2, 3, True, _NONE, True, 0),
    "float4_e2m1fn": (2, 1, 1, True, _NONE, True, 0),  # OCP MX FP4
}

_ALIASES: dict[str, str] = {
    # short names
    "fp64": "float64", "f64": "float64", "double": "float64",
    "fp32": "float32", "f32": "float32", "float": "float32", "single": "float32",
    "tf32": "tfloat32",
    "fp16": "float16", "f16": "float16", "half": "float16",
    "bf16": "bfloat16",
    "fp8": "float8_e4m3fn", "float8": "float8_e4m3fn", "e4m3": "float8_e4m3fn",
    "e4m3fn": "float8_e4m3fn", "fp8_e4m3": "float8_e4m3fn", "fp8_e4m3fn": "float8_e4m3fn",
    "e4m3fnuz": "float8_e4m3fnuz", "fp8_e4m3fnuz": "float8_e4m3fnuz",
    "e4m3b11fnuz": "float8_e4m3b11fnuz", "fp8_e4m3b11fnuz": "float8_e4m3b11fnuz",
    "e5m2": "float8_e5m2", "fp8_e5m2": "float8_e5m2", "bf8": "float8_e5m2",
    "e5m2fnuz": "float8_e5m2fnuz", "fp8_e5m2fnuz": "float8_e5m2fnuz",
    "fp8_e3m4": "float8_e3m4",
    "e8m0": "float8_e8m0fnu", "e8m0fnu": "float8_e8m0fnu", "ue8m0": "float8_e8m0fnu",
    "fp8_e8m0": "float8_e8m0fnu",
    "fp6": "float6_e2m3fn", "e2m3": "float6_e2m3fn", "e2m3fn": "float6_e2m3fn",
    "fp6_e2m3": "float6_e2m3fn",
    "e3m2": "float6_e3m2fn", "e3m2fn": "float6_e3m2fn", "fp6_e3m2": "float6_e3m2fn",
    "fp4": "float4_e2m1fn", "e2m1": "float4_e2m1fn", "e2m1fn": "float4_e2m1fn",
    "fp4_e2m1": "float4_e2m1fn", "float4_e2m1fn_x2": "float4_e2m1fn",
    # C / torch spellings of integer types
    "int": "int32", "long": "int64", "short": "int16", "byte": "uint8",
    # safetensors dtype strings (lower-cased; lookup is case-insensitive)
    "f8_e4m3": "float8_e4m3fn", "f8_e5m2": "float8_e5m2", "f8_e8m0": "float8_e8m0fnu",
    "f6_e2m3": "float6_e2m3fn", "f6_e3m2": "float6_e3m2fn", "f4": "float4_e2m1fn",
}  # fmt: skip

# The torch dtype (attribute of the torch module) holding each format, where one exists.
# torch's int1..int7/uint1..uint7 are shell dtypes (no casts, no iinfo); fp4 is only packed.
TORCH_NAMES: dict[str, str] = {
    **{
        n: n
        for n in (
            "float64",
            "float32",
            "float16",
            "bfloat16",
            "float8_e4m3fn",
            "float8_e4m3fnuz",
            "float8_e5m2",
            "float8_e5m2fnuz",
            "float8_e8m0fnu",
        )
    },
    "float4_e2m1fn": "float4_e2m1fn_x2",
    **{f"int{b}": f"int{b}" for b in (1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64)},
    **{f"uint{b}": f"uint{b}" for b in (1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64)},
}

# The numpy / ml_dtypes scalar type of each format, as "module.name".
NUMPY_NAMES: dict[str, str] = {
    **{n: f"numpy.{n}" for n in ("float64", "float32", "float16")},
    **{
        n: f"ml_dtypes.{n}"
        for n in (
            "bfloat16",
            "float8_e4m3fn",
            "float8_e4m3fnuz",
            "float8_e4m3b11fnuz",
            "float8_e4m3",
            "float8_e5m2",
            "float8_e5m2fnuz",
            "float8_e3m4",
            "float8_e8m0fnu",
            "float6_e2m3fn",
            "float6_e3m2fn",
            "float4_e2m1fn",
            "int1",
            "int2",
            "int4",
            "uint1",
            "uint2",
            "uint4",
        )
    },
    **{f"int{b}": f"numpy.int{b}" for b in (8, 16, 32, 64)},
    **{f"uint{b}": f"numpy.uint{b}" for b in (8, 16, 32, 64)},
}

# safetensors header dtype strings (safetensors "Dtype" enum).
SAFETENSORS_NAMES: dict[str, str] = {
    "float64": "F64",
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2",
    "float8_e8m0fnu": "F8_E8M0",
    "float8_e4m3fnuz": "F8_E4M3FNUZ",
    "float8_e5m2fnuz": "F8_E5M2FNUZ",
    "float6_e2m3fn": "F6_E2M3",
    "float6_e3m2fn": "F6_E3M2",
    "float4_e2m1fn": "F4",
    "int8": "I8",
    "int16": "I16",
    "int32": "I32",
    "int64": "I64",
    "uint8": "U8",
    "uint16": "U16",
    "uint32": "U32",
    "uint64": "U64",
}


def _build() -> dict[str, Format]:
    named: dict[str, Format] = {}
    for name, (e, m, bias, signed, nan, sub, container) in _FLOATS.items():
        named[name] = FloatFormat(
            exp_bits=e,
            man_bits=m,
            bias=bias,
            signed=signed,
            has_inf=nan is _IEEE,
            nan=nan,
            subnormals=sub,
            name=name,
            container_bits=container,
        )
    for bits in range(1, 65):
        named[f"int{bits}"] = IntFormat(bits, signed=True)
        named[f"uint{bits}"] = IntFormat(bits, signed=False)
    return named


CATALOG: dict[str, Format] = _build()
FLOAT_NAMES: tuple[str, ...] = tuple(_FLOATS)
_BY_FIELDS: dict[Format, Format] = {}
for _fmt in CATALOG.values():
    _BY_FIELDS.setdefault(_fmt, _fmt)  # float8_e4m3fn wins over a user spec equal to it
_LOOKUP: dict[str, Format] = {
    **{k.lower(): v for k, v in CATALOG.items()},
    **{alias: CATALOG[target] for alias, target in _ALIASES.items()},
    **{st.lower(): CATALOG[name] for name, st in SAFETENSORS_NAMES.items()},
}


def formats(kind: str | None = None) -> list[Format]:
    """Every catalogue format (floats first, widest first), optionally only ``int`` or ``float``."""
    out = [CATALOG[n] for n in FLOAT_NAMES]
    out += [CATALOG[f"{s}int{b}"] for s in ("", "u") for b in range(1, 65)]
    if kind is not None and kind not in ("int", "float"):
        raise FormatSpecError(f"kind must be 'int' or 'float', got {kind!r}")
    return [f for f in out if kind is None or f.kind == kind]


def get_format(obj: object) -> Format:
    """The one format instance for a name, alias, spec, torch/numpy/ml_dtypes dtype or format.

    >>> get_format("bf16") is get_format("bfloat16")
    True
    >>> get_format("e4m3fn").max
    Fraction(448, 1)
    """
    if isinstance(obj, (IntFormat, FloatFormat)):
        return _BY_FIELDS.get(obj, obj)
    if isinstance(obj, str):
        return _from_text(obj)
    return _from_text(_dtype_name(obj))


def _dtype_name(obj: object) -> str:
    text = str(obj)
    if text.startswith("torch."):  # torch.dtype prints as torch.float16
        return text
    name = getattr(obj, "name", None)  # numpy.dtype
    if isinstance(name, str):
        return name
    name = getattr(obj, "__name__", None)  # numpy / ml_dtypes scalar types
    if isinstance(name, str):
        return name
    raise UnknownFormatError(f"cannot read a format from {type(obj).__name__} {text!r}")


@lru_cache(maxsize=1024)
def _from_text(text: str) -> Format:
    raw = text
    key = text.strip().lower()
    for prefix in ("torch.", "numpy.", "np.", "ml_dtypes."):
        key = key.removeprefix(prefix)
    if not key:
        raise UnknownFormatError("empty format name")
    head, *overrides = key.split(":")
    base = _LOOKUP.get(head) or parse_short(head)
    if base is None:
        raise UnknownFormatError(_unknown_message(raw, head))
    fmt = apply_overrides(base, overrides, raw) if overrides else base
    return _BY_FIELDS.get(fmt, fmt)


def _unknown_message(raw: str, key: str) -> str:
    close = difflib.get_close_matches(key, list(_LOOKUP), n=4, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return (
        f"unknown format {raw.strip()!r}{hint} (dtlab formats lists them; specs like e4m3fn, int7)"
    )


def lookup_names() -> dict[str, str]:
    """Every name a lookup accepts (lower-cased, before any spec grammar) and the canonical
    name it resolves to: the table the HTML explorer reads formats with."""
    return {key: fmt.name for key, fmt in _LOOKUP.items()}


def aliases_of(fmt: Format) -> list[str]:
    """The short names that resolve to this catalogue format."""
    st = SAFETENSORS_NAMES.get(fmt.name)
    out = [a for a, t in _ALIASES.items() if CATALOG[t] is fmt and a != (st or "").lower()]
    return out + ([st] if st else [])
