"""dtlab dot: the lesson's dot-product experiment for any formats and length."""

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
    required_list,
)
from dtlab.cli.value_cmds import OVERFLOW_HELP, ROUNDING_HELP
from dtlab.defaults import DOT_ACCUMULATE, DOT_FORMATS, DOT_SOURCE, joined
from dtlab.modes import Overflow, Rounding
from dtlab.outputs import check_plot_path


@guarded
def dot_cmd(
    source: str = typer.Argument(DOT_SOURCE, help="Vector a, flattened: " + SOURCE_HELP),
    with_: str = typer.Option(
        None, "--with", help="Vector b, from the same kinds of source; default: a itself."
    ),
    as_: str = typer.Option(joined(DOT_FORMATS), "--as", help="Formats, comma-separated."),
    accumulate: str = typer.Option(
        joined(DOT_ACCUMULATE),
        "--accumulate",
        "-a",
        help="Comma-separated: float64, float32 (sequential FMA), format (each partial sum "
        "rounded into the format), pairwise (a tree of sums in the format).",
    ),
    rounding: str = typer.Option(
        Rounding.NEAREST_EVEN.value, "--rounding", "-r", help=ROUNDING_HELP
    ),
    overflow: str = typer.Option(None, "--overflow", help=OVERFLOW_HELP),
    seed: int = typer.Option(0, "--seed", help="Seed for generated vectors."),
    plot: Path = typer.Option(None, "--plot", help="Also draw the relative errors to a .png."),
    allow_pickle: bool = PICKLE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Dot product of vectors rounded to each format, against float64: the lesson's
    experiment (torch.rand(1000) dotted with itself in fp32 and bf16), for any formats,
    lengths and ways of accumulating.

    \b
    Examples:
      dtlab dot
      dtlab dot uniform:1e5 --as bf16,fp8 --accumulate float32,format,pairwise
      dtlab dot normal:4096 --with normal:4096 --seed 1 --as fp16 -a format
    """
    from dtlab.analysis.ops import MAX_TERMS, Accumulate, dot_experiment
    from dtlab.inputs import load_tensor
    from dtlab.render.ops import dot_table

    if plot is not None:
        check_plot_path(plot)
    cap = MAX_TERMS  # checked as declared, before the vectors are made or read
    a = load_tensor(source, seed=seed, allow_pickle=allow_pickle, max_values=cap)
    b = load_tensor(with_, seed=seed + 1, allow_pickle=allow_pickle, max_values=cap) if with_ else a
    accs = [
        Accumulate.parse(t) for t in required_list(accumulate, "--accumulate", "float32,format")
    ]
    policy = Overflow.parse(overflow) if overflow else None
    label = source if not with_ else f"{source} · {with_}"
    result = dot_experiment(
        label,
        a.tensor,
        b.tensor,
        parse_formats(as_),
        accs,
        rounding=Rounding.parse(rounding),
        overflow=policy,
    )
    if plot is not None:
        from dtlab.render.plots import dot_plot

        dot_plot(result, plot)
    if as_json:
        emit_json("dtlab.dot/1", result)
    else:
        emit(dot_table(result))
