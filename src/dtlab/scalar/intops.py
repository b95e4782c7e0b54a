"""Integer arithmetic inside a format, with wrap-around (what torch does) and with saturation."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from dtlab.errors import OptionError, ParseError
from dtlab.formats.descriptor import Format, IntFormat
from dtlab.scalar.anatomy import CodeAnatomy, explain_code
from dtlab.values import int_digits, parse_value


class IntOp(enum.Enum):
    ADD = "add"
    SUB = "sub"
    MUL = "mul"

    @property
    def symbol(self) -> str:
        return {"add": "+", "sub": "−", "mul": "×"}[self.value]


@dataclass(frozen=True)
class IntOpResult:
    """a OP b in an integer format: the exact result, and what wrap-around and saturation keep."""

    op: IntOp
    a: CodeAnatomy
    b: CodeAnatomy
    exact: int
    wrapped: CodeAnatomy  # low bits kept: torch's int8 tensors give this
    saturated: CodeAnatomy  # clamped to [min, max]
    overflowed: bool


def int_op(op: IntOp, a: int | str, b: int | str, fmt: Format) -> IntOpResult:
    """Compute a OP b in an integer format.

    >>> from dtlab.formats import get_format
    >>> r = int_op(IntOp.ADD, 127, 1, get_format("int8"))
    >>> int(r.wrapped.value.fraction), int(r.saturated.value.fraction)
    (-128, 127)
    """
    if not isinstance(fmt, IntFormat):
        raise OptionError(f"integer arithmetic needs an integer format, not {fmt.name}")
    x, y = _operand(a, fmt), _operand(b, fmt)
    exact = {IntOp.ADD: x + y, IntOp.SUB: x - y, IntOp.MUL: x * y}[op]
    mask = (1 << fmt.bits) - 1
    clamped = min(max(exact, fmt.min), fmt.max)
    return IntOpResult(
        op=op,
        a=explain_code(x & mask, fmt),
        b=explain_code(y & mask, fmt),
        exact=exact,
        wrapped=explain_code(exact & mask, fmt),
        saturated=explain_code(clamped & mask, fmt),
        overflowed=exact != clamped,
    )


def _operand(v: int | str, fmt: IntFormat) -> int:
    value = parse_value(v) if isinstance(v, str) else None
    if value is not None:
        if not value.is_finite or value.fraction.denominator != 1:
            raise ParseError(f"{str(v).strip()!r} is not an integer")
        n = int(value.fraction)
    else:
        n = int(v)
    if not fmt.min <= n <= fmt.max:
        shown = int_digits(n)
        if len(shown) > 40:  # a line, not a page: say how long the number is
            shown = f"{shown[:12]}... ({len(shown.lstrip('-'))} digits)"
        raise ParseError(f"{shown} is outside {fmt.name} [{fmt.min}, {fmt.max}]")
    return n
