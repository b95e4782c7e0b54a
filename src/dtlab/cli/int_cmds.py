"""dtlab int add|sub|mul: integer arithmetic inside a format, bit by bit."""

from __future__ import annotations

import typer

from dtlab.cli.common import JSON_OPTION, NUMBER_ARGS, emit, emit_json, guarded
from dtlab.defaults import INT_FORMAT
from dtlab.formats import get_format
from dtlab.render.terminal import int_op_block
from dtlab.scalar import IntOp, int_op

int_app = typer.Typer(
    help="Integer arithmetic in a format: the exact result, what wraps (torch) and what saturates.",
    no_args_is_help=True,
)


def _register(op: IntOp) -> None:
    @int_app.command(op.value, context_settings=NUMBER_ARGS)
    @guarded
    def command(
        a: str = typer.Argument(..., help="First operand (an integer in range)."),
        b: str = typer.Argument(..., help="Second operand."),
        as_: str = typer.Option(
            INT_FORMAT, "--as", help="Integer format: int8, uint8, int4, int12, ..."
        ),
        as_json: bool = JSON_OPTION,
    ) -> None:
        result = int_op(op, a, b, get_format(as_))
        if as_json:
            emit_json("dtlab.int/1", result)
        else:
            emit(int_op_block(result))

    command.__doc__ = (
        f"a {op.symbol} b in an integer format, bit by bit.\n\n"
        f"\b\nExamples:\n  dtlab int {op.value} 127 1 --as int8\n"
        f"  dtlab int {op.value} 2 -2 --as int8\n  dtlab int {op.value} 7 1 --as int4 --json"
    )


for _op in IntOp:
    _register(_op)
