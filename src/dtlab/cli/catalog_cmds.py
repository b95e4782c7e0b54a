"""dtlab formats, dtlab info."""

from __future__ import annotations

import typer

from dtlab.cli.common import JSON_OPTION, emit, emit_json, guarded, parse_formats
from dtlab.formats import formats as list_formats
from dtlab.formats.report import describe
from dtlab.render.terminal import formats_table, info_table

COMMON_INT_WIDTHS = {1, 2, 4, 8, 16, 32, 64}


@guarded
def formats_cmd(
    kind: str = typer.Option(None, "--kind", help="Only 'int' or only 'float' formats."),
    all_widths: bool = typer.Option(
        False, "--all", help="Every integer width 1..64, not just the usual."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """The catalogue: bits, range, eps, smallest subnormal, finite values, inf/NaN, torch dtype.

    \b
    Examples:
      dtlab formats
      dtlab formats --kind float
      dtlab formats --kind int --all --json
    """
    fmts = list_formats(kind)
    if not all_widths:
        fmts = [f for f in fmts if f.kind == "float" or f.bits in COMMON_INT_WIDTHS]
    reports = [describe(f) for f in fmts]
    if as_json:
        emit_json("dtlab.formats/1", reports)
    else:
        emit(formats_table(reports))


@guarded
def info_cmd(
    names: list[str] = typer.Argument(
        ..., help="Formats: names, aliases, specs (e4m3fn, int7, e3m4:bias=5)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Everything about one or more formats, side by side (exact values).

    \b
    Examples:
      dtlab info fp32 fp16 bf16
      dtlab info fp8 e4m3fnuz e4m3b11fnuz float8_e4m3
      dtlab info "e5m2:inf=no:nan=all-ones" int4
    """
    reports = [describe(f) for f in parse_formats(",".join(names))]
    if as_json:
        emit_json("dtlab.info/1", reports)
    else:
        emit(info_table(reports))
