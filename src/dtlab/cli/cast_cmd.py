"""dtlab cast: round a tensor into formats and write it."""

from __future__ import annotations

from pathlib import Path

import typer

from dtlab.cli.common import (
    JSON_OPTION,
    PICKLE_OPTION,
    SOURCE_HELP,
    emit,
    emit_json,
    guarded,
    parse_formats,
)
from dtlab.cli.html_cmds import HTML_HELP, check_html_path
from dtlab.cli.value_cmds import OVERFLOW_HELP, ROUNDING_HELP
from dtlab.defaults import CAST_FORMATS, joined
from dtlab.modes import Overflow, Rounding, Subnormals
from dtlab.outputs import check_distinct, check_plot_path, write_text


@guarded
def cast_cmd(
    source: str = typer.Argument(..., help=SOURCE_HELP),
    as_: str = typer.Option(joined(CAST_FORMATS), "--as", help="Formats, comma-separated."),
    rounding: str = typer.Option(
        Rounding.NEAREST_EVEN.value, "--rounding", "-r", help=ROUNDING_HELP + " Also stochastic."
    ),
    overflow: str = typer.Option(None, "--overflow", help=OVERFLOW_HELP),
    subnormals: str = typer.Option(
        Subnormals.KEEP.value, "--subnormals", help="keep, or flush them to zero."
    ),
    seed: int = typer.Option(
        0, "--seed", help="Seed for generated inputs and stochastic rounding."
    ),
    output: Path = typer.Option(
        None,
        "--output",
        "-o",
        help="Write the results: .safetensors (a tensor per format), .npy (one format) or .pt.",
    ),
    plot: Path = typer.Option(
        None, "--plot", help="Also draw the histogram against each format and the SQNR to a .png."
    ),
    html_out: Path = typer.Option(None, "--html", help=HTML_HELP),
    allow_pickle: bool = PICKLE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Round every value of a tensor into each format and measure what it costs: SQNR, absolute
    and relative errors, cosine similarity, and exact counts of overflow, underflow and
    subnormal results, best format first. Optionally write the rounded tensors.

    \b
    Examples:
      dtlab cast normal:1e6 --as bf16,fp16,fp8,fp4 --plot cast.png
      dtlab cast weights.npy --as fp8 --overflow saturate -o weights_fp8.npy
      dtlab cast model.safetensors:encoder.layer.0.attention.self.query.weight --as e5m2
      dtlab cast ./sharded-model:lm_head.weight --as fp8,nvfp4
      dtlab cast student-t:1e6:df=2 --as fp8 --rounding stochastic --seed 3
    """
    from dtlab.cast import cast_tensor
    from dtlab.inputs import load_tensor
    from dtlab.modes import Subnormals
    from dtlab.render.cast import cast_table

    fmts = parse_formats(as_)
    if plot is not None:
        check_plot_path(plot)
    check_html_path(html_out)
    check_distinct([output, plot, html_out])
    mode = Rounding.parse(rounding)
    policy = Overflow.parse(overflow) if overflow else None
    loaded = load_tensor(source, seed=seed, allow_pickle=allow_pickle)
    flush = Subnormals.parse(subnormals)
    report = cast_tensor(
        loaded, fmts, rounding=mode, overflow=policy, subnormals=flush, seed=seed, output=output
    )
    if plot is not None:
        from dtlab.render.plots import analysis_plot

        analysis_plot(report.analysis, loaded.tensor, plot, f"{source} in {as_}")
    if html_out is not None:
        from dtlab.html import report_page

        write_text(html_out, report_page("dtlab.cast/1", report))
    if as_json:
        emit_json("dtlab.cast/1", report)
    else:
        emit(cast_table(report))
