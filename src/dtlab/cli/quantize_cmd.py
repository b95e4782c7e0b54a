"""dtlab quantize: integer and block quantization of a tensor, with the metrics."""

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
    required_list,
)
from dtlab.cli.html_cmds import HTML_HELP, check_html_path
from dtlab.defaults import QUANTIZERS, joined
from dtlab.modes import Rounding
from dtlab.outputs import check_distinct, check_plot_path, write_text


@guarded
def quantize_cmd(
    source: str = typer.Argument(..., help=SOURCE_HELP),
    as_: str = typer.Option(
        joined(QUANTIZERS),
        "--as",
        help="Quantizers, comma-separated: (u)intN[:tensor|:channel|:gN][:sym|:asym]"
        "[:absmax|:mse|:pNN] (one scale per tensor unless :channel or :gN), or mxfp8, "
        "mxfp8_e5m2, mxfp6, mxfp6_e3m2, mxfp4, mxint8 (with :floor, :ceil, :even or :rceil), "
        "nvfp4, nf4, or the GGML types q8_0, q4_0, q4_1, q5_0, q5_1 (bytes as gguf-py writes "
        "them). The same specs as dtlab model memory --to.",
    ),
    channel_axis: int = typer.Option(0, "--channel-axis", help="Axis of per-channel scales."),
    group_axis: int = typer.Option(
        -1, "--group-axis", help="Axis that groups and blocks run along."
    ),
    shape: str = typer.Option(None, "--shape", help="Reshape the input first, e.g. 1024x1024."),
    rounding: str = typer.Option(
        Rounding.NEAREST_EVEN.value, "--rounding", "-r", help="Element rounding."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for generated inputs."),
    plot: Path = typer.Option(
        None, "--plot", help="Also draw SQNR against bits per value to a .png."
    ),
    html_out: Path = typer.Option(None, "--html", help=HTML_HELP),
    allow_pickle: bool = PICKLE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Quantize a tensor with integer scales (per tensor, channel or group) and with block
    formats (MX, NVFP4, NF4), and compare what each costs in error and in bits per value
    (scales included).

    \b
    Examples:
      dtlab quantize normal:1e6 --shape 1000x1000
      dtlab quantize model.safetensors:NAME --as int4:g128,int4:g128:mse,nf4
      dtlab quantize ./my-model:model.layers.0.mlp.down_proj.weight --as nvfp4
      dtlab quantize student-t:1e6:df=3 --shape 1000x1000 --as int8:channel,mxfp4,mxfp4:rceil
    """
    from dtlab.analysis.comparison import quantize_analysis
    from dtlab.inputs import load_tensor, reshape
    from dtlab.render.quant import quant_table

    if plot is not None:
        check_plot_path(plot)
    check_html_path(html_out)
    check_distinct([plot, html_out])
    loaded = load_tensor(source, seed=seed, allow_pickle=allow_pickle)
    x = reshape(loaded.tensor, shape) if shape else loaded.tensor
    specs = required_list(as_, "--as", "int8,int4:g128")
    result = quantize_analysis(
        x,
        specs,
        channel_axis=channel_axis,
        group_axis=group_axis,
        rounding=Rounding.parse(rounding),
    )
    if plot is not None:
        from dtlab.render.plots import quant_plot

        quant_plot(result, plot, f"{source}")
    if html_out is not None:
        from dtlab.html import report_page

        write_text(html_out, report_page("dtlab.quantize/1", result))
    if as_json:
        emit_json("dtlab.quantize/1", result)
    else:
        emit(quant_table(result, source, tuple(x.shape)))
