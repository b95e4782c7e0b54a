"""Rounding modes and overflow policies, shared by the scalar path and the tensor kernels."""

from __future__ import annotations

import enum
from typing import TypeVar

from dtlab.errors import OptionError


class Rounding(enum.Enum):
    """How a value between two representable neighbours is rounded."""

    NEAREST_EVEN = "nearest-even"  # IEEE 754 default: ties to an even last mantissa bit
    NEAREST_AWAY = "nearest-away"  # ties away from zero
    TOWARD_ZERO = "toward-zero"  # truncate
    UP = "up"  # toward +inf
    DOWN = "down"  # toward -inf
    STOCHASTIC = "stochastic"  # up with probability equal to the distance from below (tensors only)

    @classmethod
    def parse(cls, value: str | Rounding) -> Rounding:
        return parse_enum(cls, value, "rounding")


class Overflow(enum.Enum):
    """What a value beyond the format's range becomes.

    * ``SATURATE``: the largest finite value of the same sign (and inf, too, becomes it).
    * ``INF_NAN``: what the format encodes: inf if it has one, else NaN if it has one,
      else the largest finite value (fp6/fp4 have neither). IEEE 754 §7.4: rounding
      toward zero (and toward the other infinity) still gives the largest finite value.
    * ``WRAP``: integers only: keep the low bits, two's complement (what torch's casts and
      integer arithmetic do).

    The default (``None`` in the API) is ``INF_NAN`` for floats and ``SATURATE`` for integers.
    """

    SATURATE = "saturate"
    INF_NAN = "inf-nan"
    WRAP = "wrap"

    @classmethod
    def parse(cls, value: str | Overflow) -> Overflow:
        return parse_enum(cls, value, "overflow")


class Subnormals(enum.Enum):
    """Keep the format's subnormal results, or flush them to zero (sign kept where -0 exists)."""

    KEEP = "keep"
    FLUSH = "flush"

    @classmethod
    def parse(cls, value: str | Subnormals) -> Subnormals:
        return parse_enum(cls, value, "subnormals option")


E = TypeVar("E", bound=enum.Enum)


_ALIASES: dict[type[enum.Enum], dict[str, str]] = {
    Rounding: {
        "rne": "nearest-even",
        "nearest": "nearest-even",
        "rna": "nearest-away",
        "rtz": "toward-zero",
        "truncate": "toward-zero",
        "zero": "toward-zero",
        "ceil": "up",
        "floor": "down",
        "sr": "stochastic",
    },
    Overflow: {"sat": "saturate", "inf": "inf-nan", "nan": "inf-nan", "ieee": "inf-nan"},
}


def parse_enum(cls: type[E], value: object, what: str) -> E:
    """A member of an enum of string values from what a user typed (case, _ or -, aliases),
    or an OptionError naming the choices. Every mode enum of dtlab reads its options here."""
    if isinstance(value, cls):
        return value
    text = str(value).strip().lower().replace("_", "-")
    text = _ALIASES.get(cls, {}).get(text, text)
    for member in cls:
        if member.value == text:
            return member
    choices = ", ".join(str(m.value) for m in cls)
    raise OptionError(f"unknown {what} {value!r}; choose one of {choices}")
