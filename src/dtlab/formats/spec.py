"""The spec grammar for user-defined formats.

Short form (ml_dtypes naming)::

    int7  uint3  i8  u4                    integers, 1..64 bits
    [floatN_]eXmY[bB][fn|fnuz][u]          floats

* ``eXmY``: X exponent bits, Y mantissa bits; a sign bit unless the trailing ``u``.
* no suffix: IEEE-like, with infinities and NaN at exponent all ones (``e3m4``).
* ``fn``: finite, no infinities. From 8 bits up NaN is the all-ones code (``e4m3fn``);
  below 8 bits there is no NaN at all (the OCP MX fp6/fp4 element formats).
* ``fnuz``: finite, unsigned zero: the -0 code is the only NaN (``e5m2fnuz``).
* ``bB``: bias B; the default is 2**(X-1) - 1, plus one for ``fnuz``.
* Subnormals: yes, except with 0 mantissa bits (``e8m0fnu``: the exponent-0 code is 2**-127).

Long form: a short spec or any catalogue name, then ``:key=value`` overrides::

    e4m3:bias=11:nan=neg-zero     fp8:subnormals=no     e5m2:inf=no:nan=all-ones

Keys: ``bias`` (integer), ``inf`` (yes/no), ``nan`` (ieee, all-ones, neg-zero, none),
``subnormals`` (yes/no), ``signed`` (yes/no). Infinities need ``nan=ieee`` and vice versa;
giving one of the two implies the other where that is unambiguous.
"""

from __future__ import annotations

import dataclasses
import re

from dtlab.errors import FormatSpecError
from dtlab.formats.descriptor import (
    FloatFormat,
    Format,
    IntFormat,
    NanEncoding,
    default_bias,
    style_nan,
)

_INT = re.compile(r"(u?)(?:int|i)(\d{1,3})")
_UINT_SHORT = re.compile(r"u(\d{1,3})")
_FLOAT = re.compile(
    r"(?:(?:float|fp|f)(\d{1,3})_)?e(\d{1,3})m(\d{1,3})(?:b(-?\d{1,5}))?(fnuz|fn)?(u)?"
)
_YES = {
    "yes": True,
    "y": True,
    "true": True,
    "1": True,
    "no": False,
    "n": False,
    "false": False,
    "0": False,
}
_KEYS = ("bias", "inf", "nan", "subnormals", "signed")


def parse_short(text: str) -> Format | None:
    """A format from a short spec, or None if the text is not one."""
    if m := _INT.fullmatch(text):
        return IntFormat(int(m.group(2)), signed=not m.group(1))
    if m := _UINT_SHORT.fullmatch(text):
        return IntFormat(int(m.group(1)), signed=False)
    m = _FLOAT.fullmatch(text)
    if not m:
        return None
    total, e, mant, bias, style, unsigned = m.groups()
    exp_bits, man_bits, signed = int(e), int(mant), not unsigned
    bits = int(signed) + exp_bits + man_bits
    nan = style_nan(style or "", bits)
    try:
        fmt = FloatFormat(
            exp_bits,
            man_bits,
            int(bias) if bias is not None else default_bias(max(exp_bits, 1), nan),
            signed=signed,
            has_inf=nan is NanEncoding.IEEE,
            nan=nan,
            subnormals=man_bits > 0,
        )
    except FormatSpecError as e:
        if style or nan is not NanEncoding.IEEE:
            raise
        try:  # suggest the finite forms only where they are formats themselves (not e0m0)
            parse_short(f"{text}fn")
        except FormatSpecError:
            raise FormatSpecError(f"{text!r}: {e}") from None
        # the plain form means IEEE inf and NaN, which a tiny format cannot hold
        raise FormatSpecError(
            f"{text!r}: {e}, and the plain eXmY form has IEEE inf and NaN; try {text}fn "
            f"(finite: no inf, NaN at all ones) or {text}fnu (the same, unsigned)"
        ) from None
    if total is not None and int(total) != fmt.bits:
        raise FormatSpecError(
            f"{text!r}: e{exp_bits}m{man_bits} takes {fmt.bits} bits, not {total}"
        )
    return fmt


def apply_overrides(base: Format, overrides: list[str], text: str) -> Format:
    """Apply ``key=value`` overrides of the long form to a float format."""
    if isinstance(base, IntFormat):
        raise FormatSpecError(f"{text!r}: integer formats take no :key=value options")
    values: dict[str, str] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip().lower()
        if not sep or key not in _KEYS:
            raise FormatSpecError(
                f"{text!r}: {item!r} is not one of {', '.join(k + '=' for k in _KEYS)}"
            )
        if key in values:
            raise FormatSpecError(f"{text!r}: {key} given twice")
        values[key] = value
    changes: dict[str, object] = {}
    if "bias" in values:
        try:
            changes["bias"] = int(values["bias"])
        except ValueError:
            raise FormatSpecError(f"{text!r}: bias must be an integer") from None
    for key in ("inf", "subnormals", "signed"):
        if key in values:
            if values[key] not in _YES:
                raise FormatSpecError(f"{text!r}: {key} must be yes or no")
            changes["has_inf" if key == "inf" else key] = _YES[values[key]]
    if "nan" in values:
        try:
            changes["nan"] = NanEncoding(values["nan"])
        except ValueError:
            names = ", ".join(n.value for n in NanEncoding)
            raise FormatSpecError(f"{text!r}: nan must be one of {names}") from None
    _infer_inf_nan(base, changes, text)
    return dataclasses.replace(base, name="", container_bits=0, **changes)  # type: ignore[arg-type]


def _infer_inf_nan(base: FloatFormat, changes: dict[str, object], text: str) -> None:
    if "nan" in changes and "has_inf" not in changes:
        changes["has_inf"] = changes["nan"] is NanEncoding.IEEE
    elif "has_inf" in changes and "nan" not in changes:
        if changes["has_inf"]:
            changes["nan"] = NanEncoding.IEEE
        elif base.nan is NanEncoding.IEEE:
            raise FormatSpecError(
                f"{text!r}: with inf=no, say where NaN goes: nan=all-ones, neg-zero or none"
            )
