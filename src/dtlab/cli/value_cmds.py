"""dtlab show, dtlab decode."""

from __future__ import annotations

import typer
from rich.console import Group, RenderableType
from rich.text import Text

from dtlab.cli.common import JSON_OPTION, emit, emit_json, err_console, guarded, parse_formats
from dtlab.defaults import SHOW_FORMATS, joined
from dtlab.modes import Overflow, Rounding
from dtlab.render.terminal import anatomy_block, code_block
from dtlab.scalar import explain, explain_code
from dtlab.values import parse_bits

ROUNDING_HELP = "nearest-even (default), nearest-away, toward-zero, up, down."
OVERFLOW_HELP = (
    "saturate, inf-nan (floats: what the format encodes; the float default) or wrap "
    "(integers; saturate is their default)."
)


@guarded
def show_cmd(
    value: str = typer.Argument(..., help="0.1, -1e-3, 1/3, 0x1.8p2, 2^-24, inf, nan, -0 (exact)."),
    as_: str = typer.Option(joined(SHOW_FORMATS), "--as", help="Formats, comma-separated."),
    rounding: str = typer.Option(
        Rounding.NEAREST_EVEN.value, "--rounding", "-r", help=ROUNDING_HELP
    ),
    overflow: str = typer.Option(None, "--overflow", help=OVERFLOW_HELP),
    overflow_short: str = typer.Option(None, "-o", hidden=True),  # deprecated: -o is --output
    as_json: bool = JSON_OPTION,
) -> None:
    """What a value becomes in each format: bits, formula, exact stored decimal, error, neighbours.

    The number is read exactly and rounded once, straight into each format
    (1/3 is never first turned into a float64).

    \b
    Examples:
      dtlab show 0.1 --as bf16
      dtlab show 1/3 --as fp64,fp32,fp16,bf16
      dtlab show 1000 --as fp8 --overflow saturate
      dtlab show -5 --as int8,uint8
      dtlab show 300 --as int8 --overflow wrap --rounding toward-zero
    """
    if overflow_short is not None:
        err_console.print(
            "note: -o for --overflow is deprecated (-o means --output in dtlab cast); "
            "write --overflow",
            markup=False,
        )
        overflow = overflow or overflow_short
    mode = Rounding.parse(rounding)
    policy = Overflow.parse(overflow) if overflow else None
    results = [explain(value, f, rounding=mode, overflow=policy) for f in parse_formats(as_)]
    if as_json:
        emit_json("dtlab.show/1", results)
    else:
        emit(Group(*_spaced([anatomy_block(a) for a in results])))


@guarded
def decode_cmd(
    bits: str = typer.Argument(
        ..., help="A bit pattern: 0b0_1111_110, 0x7e (underscores allowed)."
    ),
    as_: str = typer.Option(..., "--as", help="Formats, comma-separated."),
    as_json: bool = JSON_OPTION,
) -> None:
    """What a bit pattern means in a format: fields, formula, exact value, neighbours.

    \b
    Examples:
      dtlab decode 0x7e --as fp8
      dtlab decode 0b0_11110_1111111111 --as fp16
      dtlab decode 0xff --as e4m3fn,e5m2,e8m0,uint8,int8
    """
    fmts = parse_formats(as_)
    results = [explain_code(parse_bits(bits, f.bits, f.name), f) for f in fmts]
    if as_json:
        emit_json("dtlab.decode/1", results)
    else:
        emit(Group(*_spaced([code_block(c) for c in results])))


def _spaced(blocks: list[RenderableType]) -> list[RenderableType]:
    out: list[RenderableType] = []
    for i, block in enumerate(blocks):
        if i:
            out.append(Text(""))
        out.append(block)
    return out
