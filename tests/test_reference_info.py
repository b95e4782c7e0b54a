"""Derived format properties against torch.finfo/iinfo, numpy/ml_dtypes finfo/iinfo and gfloat.

Every field a reference exposes is compared exactly (as a Fraction). Where a reference is wrong
the disagreement is a row of ``KNOWN_ERRORS``: the test asserts the reference still reports the
wrong value and dtlab the true one, so a fix upstream makes the test fail and the row goes away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import gfloat
import gfloat.formats
import ml_dtypes
import numpy as np
import pytest
import torch

from dtlab.formats import NUMPY_NAMES, TORCH_NAMES, FloatFormat, IntFormat, formats, get_format
from dtlab.modes import Rounding
from dtlab.scalar import decode, encode
from dtlab.values import ExactValue
from references import GFLOAT_INFO as SHARED_GFLOAT_INFO
from references import numpy_type

# finfo field -> FloatFormat attribute holding the true value
FINFO_FIELDS = {
    "bits": "bits",
    "eps": "eps",
    "epsneg": "epsneg",
    "max": "max",
    "min": "min",
    "tiny": "smallest_normal",
    "smallest_normal": "smallest_normal",
    "smallest_subnormal": "smallest_subnormal",
    "resolution": "resolution",
    "machep": "machep",
    "negep": "negep",
    "minexp": "minexp",
    "maxexp": "maxexp",
    "precision": "precision",
    "nexp": "exp_bits",
    "nmant": "man_bits",
    "iexp": "exp_bits",
}

# gfloat.FormatInfo field -> FloatFormat attribute
GFLOAT_FIELDS = {
    "bits": "bits",
    "eps": "eps",
    "epsneg": "epsneg",
    "machep": "machep",
    "max": "max",
    "min": "min",
    "maxexp": "maxexp",
    "emax": "emax",
    "smallest_normal": "smallest_normal",
    "smallest_subnormal": "smallest_subnormal",
    "smallest": "smallest_positive",
    "iexp": "exp_bits",
    "num_nans": "nan_codes",
    "num_infs": "inf_codes",
    "has_zero": "has_zero",
    "has_nz": "has_negative_zero",
    "code_of_max": "max_code",
}

# gfloat 0.5.2 ships these; the catalogue formats it lacks get a FormatInfo built here
# from the FORMATS.md table (tf32: CUDA __nv_tf32, 19 bits; the rest: ml_dtypes README).
_GF = gfloat.formats
_FINITE, _EXT = gfloat.Domain.Finite, gfloat.Domain.Extended


def _built(name: str, k: int, p: int, bias: int, domain: gfloat.Domain, nz: bool, nans: int):
    return gfloat.FormatInfo(
        name,
        k,
        p,
        bias=bias,
        is_signed=True,
        domain=domain,
        has_nz=nz,
        num_high_nans=nans,
        has_subnormals=True,
        is_twos_complement=False,
    )


GFLOAT_INFO = {
    **SHARED_GFLOAT_INFO,  # float16, bfloat16 and the OCP formats
    "float64": _GF.format_info_binary64,
    "float32": _GF.format_info_binary32,
    "tfloat32": _built("tf32", 19, 11, 127, _EXT, True, 2**10 - 1),
    "float8_e4m3fnuz": _built("e4m3fnuz", 8, 4, 8, _FINITE, False, 0),
    "float8_e4m3b11fnuz": _built("e4m3b11fnuz", 8, 4, 11, _FINITE, False, 0),
    "float8_e5m2fnuz": _built("e5m2fnuz", 8, 3, 16, _FINITE, False, 0),
    "float8_e4m3": _built("e4m3", 8, 4, 7, _EXT, True, 7),
    "float8_e3m4": _built("e3m4", 8, 5, 3, _EXT, True, 15),
}


@dataclass(frozen=True)
class Raises:
    """A reference field that raises instead of answering."""

    error: type[BaseException]


@dataclass(frozen=True)
class KnownError:
    library: str
    format: str
    field: str
    reference: object  # what the reference reports (Fraction, int, bool or Raises)
    true: object  # the true value, which dtlab must give (None: dtlab has no such field)
    reason: str


_ML_FP8_PRECISION = (
    "ml_dtypes hard-codes precision=1 for its float8 types; numpy defines "
    "precision = int(-log10(eps)) = 0 here (ml_dtypes computes 0 for fp6/fp4 itself)"
)
_ML_FP8_RESOLUTION = "follows the wrong precision: the format's value nearest 10**-1, not 10**0"

KNOWN_ERRORS: tuple[KnownError, ...] = (
    KnownError(
        "torch",
        "float8_e5m2fnuz",
        "eps",
        Fraction(1, 8),
        Fraction(1, 4),
        "torch reports 2**-3, the value for 3 mantissa bits; e5m2fnuz has 2 (FORMATS.md)",
    ),
    *(
        row
        for name, res in (
            ("float8_e4m3fn", Fraction(13, 128)),  # 0.1015625 = e4m3(0.1)
            ("float8_e4m3fnuz", Fraction(13, 128)),
            ("float8_e4m3b11fnuz", Fraction(13, 128)),
            ("float8_e4m3", Fraction(13, 128)),
            ("float8_e5m2", Fraction(3, 32)),  # 0.09375 = e5m2(0.1)
            ("float8_e5m2fnuz", Fraction(3, 32)),
            ("float8_e8m0fnu", Fraction(1, 8)),  # 2**-3 = e8m0(0.1), ties up
        )
        for row in (
            KnownError("ml_dtypes", name, "precision", 1, 0, _ML_FP8_PRECISION),
            KnownError("ml_dtypes", name, "resolution", res, Fraction(1), _ML_FP8_RESOLUTION),
        )
    ),
    KnownError(
        "gfloat",
        "float6_e2m3fn",
        "epsneg",
        Fraction(1, 16),
        Fraction(1, 8),
        "gfloat takes epsneg = eps/2, but 1 is e2m3's smallest normal: below it lie "
        "subnormals spaced 2**-3",
    ),
    KnownError(
        "gfloat",
        "float4_e2m1fn",
        "epsneg",
        Fraction(1, 4),
        Fraction(1, 2),
        "as for e2m3: the value below 1 is the subnormal 0.5",
    ),
    KnownError(
        "gfloat",
        "float64",
        "emax",
        1024,
        1023,
        "gfloat computes floor(math.log2(max)); log2 of the largest double rounds to 1024.0",
    ),
    KnownError("gfloat", "float64", "maxexp", 1025, 1024, "emax + 1, from the wrong emax"),
    KnownError(
        "gfloat",
        "float8_e8m0fnu",
        "smallest_subnormal",
        Raises(AssertionError),
        Fraction(2) ** -127,
        "gfloat asserts has_subnormals ('not implemented'); numpy reports the smallest "
        "positive value, 2**-127, as ml_dtypes does",
    ),
    # torch has only the packed pair dtype; its finfo says 8 bits and cannot answer the rest.
    KnownError(
        "torch",
        "float4_e2m1fn",
        "bits",
        8,
        4,
        "torch.float4_e2m1fn_x2 packs two elements in a byte",
    ),
    *(
        KnownError(
            "torch",
            "float4_e2m1fn",
            f,
            Raises(NotImplementedError),
            true,
            "torch's float4_e2m1fn_x2 has no numeric_limits (NotImplementedError)",
        )
        for f, true in (
            ("eps", Fraction(1, 2)),
            ("max", Fraction(6)),
            ("min", Fraction(-6)),
            ("tiny", Fraction(1)),
            ("smallest_normal", Fraction(1)),
            ("resolution", Fraction(1)),
        )
    ),
    # torch.int1..int7 / uint1..uint7 are shell dtypes: storage only, no iinfo.
    *(
        KnownError(
            "torch",
            f"{u}int{b}",
            f,
            Raises(TypeError),
            None,
            "torch.iinfo() requires an integer input type: the sub-byte dtypes are shells",
        )
        for u in ("", "u")
        for b in range(1, 8)
        for f in ("bits", "min", "max")
    ),
)

_KNOWN = {(k.library, k.format, k.field): k for k in KNOWN_ERRORS}


def _exact(value: object) -> object:
    """A reference field as an exact number: ints and bools stay, floats become Fractions."""
    if isinstance(value, (bool, int, np.integer)):
        return int(value) if not isinstance(value, bool) else value
    f = float(value)  # type: ignore[arg-type]
    assert math.isfinite(f), value
    return Fraction(f)


def _read(obj_factory, field: str) -> object:
    try:
        return _exact(getattr(obj_factory(), field))
    except (NotImplementedError, TypeError, AssertionError) as err:
        return Raises(type(err))


def _reported_resolution(true: Fraction, fmt: FloatFormat, library: str) -> Fraction:
    """10**-precision as the reference can hold it: a value of the format itself
    (numpy and ml_dtypes return a scalar of the dtype), a Python float for torch."""
    if library == "torch":
        return Fraction(float(true))
    enc = encode(ExactValue.of(true), fmt, rounding=Rounding.NEAREST_EVEN)
    return decode(enc.code, fmt).fraction


def _cases() -> list[tuple[str, str]]:
    out = []
    for fmt in formats():
        if fmt.bits > 64:
            continue
        if fmt.name in TORCH_NAMES:
            out.append(("torch", fmt.name))
        if fmt.name in NUMPY_NAMES:
            out.append(
                ("numpy" if NUMPY_NAMES[fmt.name].startswith("numpy.") else "ml_dtypes", fmt.name)
            )
        if fmt.name in GFLOAT_INFO:
            out.append(("gfloat", fmt.name))
    return out


CASES = _cases()


def _reference(library: str, name: str):
    """A zero-argument factory for the reference info object (it may raise on access)."""
    fmt = get_format(name)
    if library == "gfloat":
        return lambda: GFLOAT_INFO[name]
    if library == "torch":
        dtype = getattr(torch, TORCH_NAMES[name])
        return (lambda: torch.finfo(dtype)) if fmt.kind == "float" else (lambda: torch.iinfo(dtype))
    scalar = numpy_type(name)
    lib = np if library == "numpy" else ml_dtypes
    return (lambda: lib.finfo(scalar)) if fmt.kind == "float" else (lambda: lib.iinfo(scalar))


def _fields(library: str, fmt: IntFormat | FloatFormat) -> dict[str, str]:
    if isinstance(fmt, IntFormat):
        return {"bits": "bits", "min": "min", "max": "max"}
    if library == "gfloat":
        return GFLOAT_FIELDS
    if library == "torch":  # torch.finfo exposes only these
        keys = ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution")
        return {k: FINFO_FIELDS[k] for k in keys}
    return FINFO_FIELDS


@pytest.mark.parametrize(("library", "name"), CASES, ids=[f"{lib}-{n}" for lib, n in CASES])
def test_reference_info_matches(library: str, name: str) -> None:
    fmt = get_format(name)
    factory = _reference(library, name)
    got: dict[str, object] = {}
    want: dict[str, object] = {}
    for field, attr in _fields(library, fmt).items():
        got[field] = _read(factory, field)
        true = getattr(fmt, attr)
        known = _KNOWN.get((library, name, field))
        if known is not None:
            # the reference is still wrong in the documented way, and dtlab is right
            want[field] = known.reference
            if known.true is not None:
                assert true == known.true, (field, true, known)
        elif field == "resolution":
            assert isinstance(fmt, FloatFormat)
            want[field] = _reported_resolution(true, fmt, library)
        else:
            want[field] = true
    assert got == want


def test_known_errors_are_all_checked() -> None:
    """Every row names a (library, format, field) that the comparison above reads."""
    cases = set(CASES)
    for k in KNOWN_ERRORS:
        assert (k.library, k.format) in cases, k
        assert k.field in _fields(k.library, get_format(k.format)), k
    assert len(_KNOWN) == len(KNOWN_ERRORS)  # no row listed twice


def test_every_reference_format_is_covered() -> None:
    """The catalogue maps every torch / numpy / ml_dtypes numeric type we know of."""
    torch_formats = {n for lib, n in CASES if lib == "torch"}
    assert {"float8_e4m3fn", "float8_e5m2fnuz", "float8_e8m0fnu", "uint16"} <= torch_formats
    ml_formats = {n for lib, n in CASES if lib == "ml_dtypes"}
    wanted = {
        n
        for n in dir(ml_dtypes)
        if n.startswith(("float", "int", "uint", "bfloat"))
        and isinstance(getattr(ml_dtypes, n), type)
    }
    assert wanted <= ml_formats | {"float64", "float32", "float16"} | {
        f"{u}int{b}" for u in ("", "u") for b in (8, 16, 32, 64)
    }


def test_torch_e8m0_min_is_the_smallest_value() -> None:
    """Not an error: for an unsigned format finfo.min is the lowest value, +2**-127 here
    (FORMATS.md notes it is not -max). dtlab and ml_dtypes agree."""
    assert Fraction(torch.finfo(torch.float8_e8m0fnu).min) == Fraction(2) ** -127
    assert Fraction(float(ml_dtypes.finfo(ml_dtypes.float8_e8m0fnu).min)) == Fraction(2) ** -127
    assert get_format("float8_e8m0fnu").min == Fraction(2) ** -127


def test_resolution_rounding_is_visible() -> None:
    """The resolution rule above is needed: the references hold 10**-p rounded."""
    assert Fraction(float(ml_dtypes.finfo(ml_dtypes.bfloat16).resolution)) == Fraction(41, 4096)
    assert Fraction(float(np.finfo(np.float16).resolution)) != Fraction(1, 1000)
    assert get_format("bfloat16").resolution == Fraction(1, 100)
