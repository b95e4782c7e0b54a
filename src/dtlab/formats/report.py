"""Everything about one format in one frozen record: what ``dtlab info`` shows."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from dtlab.formats.catalog import NUMPY_NAMES, SAFETENSORS_NAMES, TORCH_NAMES, aliases_of
from dtlab.formats.descriptor import Format, IntFormat


@dataclass(frozen=True)
class FormatReport:
    """The defining and derived properties of a format, named as numpy.finfo names them.

    Float-only fields are None for integers. Values are exact Fractions, except
    ``dynamic_range_binades`` (a float: log2 of an exact ratio).
    """

    name: str
    kind: str
    aliases: tuple[str, ...]
    bits: int
    container_bits: int  # storage per value when not packed
    packing: str  # how values narrower than a byte are stored densely
    packed_bytes_per_value: Fraction
    signed: bool
    min: Fraction
    max: Fraction
    finite_values: int
    torch_dtype: str | None
    numpy_dtype: str | None
    safetensors_dtype: str | None
    # floats only
    sign_bits: int | None = None
    exponent_bits: int | None = None
    mantissa_bits: int | None = None
    bias: int | None = None
    has_inf: bool | None = None
    nan_encoding: str | None = None
    has_nan: bool | None = None
    has_negative_zero: bool | None = None
    has_subnormals: bool | None = None
    has_zero: bool | None = None
    smallest_normal: Fraction | None = None
    smallest_subnormal: Fraction | None = None
    eps: Fraction | None = None
    epsneg: Fraction | None = None
    resolution: Fraction | None = None
    precision: int | None = None
    machep: int | None = None
    negep: int | None = None
    minexp: int | None = None
    maxexp: int | None = None
    finite_codes: int | None = None
    nan_codes: int | None = None
    inf_codes: int | None = None
    dynamic_range_binades: float | None = None


def packing_of(bits: int, container_bits: int) -> str:
    """How values are stored densely; only sub-byte formats pack (tf32 keeps a 32-bit slot)."""
    if bits >= 8:
        return "byte-aligned" if bits == container_bits else f"none: {container_bits}-bit slot"
    if 8 % bits == 0:
        return f"{8 // bits} per byte"
    if bits == 6:
        return "4 in 3 bytes"
    return f"dense bitstream: n values in ceil(n×{bits}/8) bytes"


def describe(fmt: Format) -> FormatReport:
    """The full record of a format.

    >>> from dtlab.formats import get_format
    >>> describe(get_format("fp16")).max
    Fraction(65504, 1)
    """
    container = fmt.container_bits
    common = dict(
        name=fmt.name,
        kind=fmt.kind,
        aliases=tuple(aliases_of(fmt)),
        bits=fmt.bits,
        container_bits=container,
        packing=packing_of(fmt.bits, container),
        packed_bytes_per_value=Fraction(fmt.bits if fmt.bits < 8 else container, 8),
        signed=fmt.signed,
        min=Fraction(fmt.min),
        max=Fraction(fmt.max),
        finite_values=fmt.finite_values,
        torch_dtype=_torch(fmt),
        numpy_dtype=NUMPY_NAMES.get(fmt.name),
        safetensors_dtype=SAFETENSORS_NAMES.get(fmt.name),
    )
    if isinstance(fmt, IntFormat):
        return FormatReport(**common)  # type: ignore[arg-type]
    return FormatReport(
        **common,  # type: ignore[arg-type]
        sign_bits=fmt.sign_bits,
        exponent_bits=fmt.exp_bits,
        mantissa_bits=fmt.man_bits,
        bias=fmt.bias,
        has_inf=fmt.has_inf,
        nan_encoding=fmt.nan.value,
        has_nan=fmt.has_nan,
        has_negative_zero=fmt.has_negative_zero,
        has_subnormals=fmt.subnormals and fmt.man_bits > 0,
        has_zero=fmt.has_zero,
        smallest_normal=fmt.smallest_normal,
        smallest_subnormal=fmt.smallest_subnormal,
        eps=fmt.eps,
        epsneg=fmt.epsneg,
        resolution=fmt.resolution,
        precision=fmt.precision,
        machep=fmt.machep,
        negep=fmt.negep,
        minexp=fmt.minexp,
        maxexp=fmt.maxexp,
        finite_codes=fmt.finite_codes,
        nan_codes=fmt.nan_codes,
        inf_codes=fmt.inf_codes,
        dynamic_range_binades=fmt.dynamic_range_binades,
    )


def _torch(fmt: Format) -> str | None:
    name = TORCH_NAMES.get(fmt.name)
    return f"torch.{name}" if name else None
