"""dtlab model compare|activations: models run in several formats."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from dtlab.cli.common import (
    JSON_OPTION,
    console,
    emit,
    emit_json,
    err_console,
    guarded,
    path_argument,
    split_list,
)
from dtlab.outputs import check_distinct, check_plot_path, check_writable, write_text

COMPARE_FORMATS = "fp32,bf16,fp16,fp8,int8,int4:g128,nf4,mxfp4"
ACTIVATION_TARGETS = "fp16,bf16,fp8"

MODEL_ARG = typer.Argument(
    None, help="minilm (the default, embedded), smollm2, or a Hugging Face model folder."
)
TEXT_OPTION = typer.Option(
    None, "--text", help="A UTF-8 text file to evaluate on (default: CPython's pydoc topics)."
)
REMOTE_OPTION = typer.Option(
    False, "--trust-remote-code", help="Let a model folder run its own code (auto_map)."
)
KEEP_OPTION = typer.Option(
    None,
    "--keep",
    help="Layer name patterns left in high precision (globs; re: for a regex); default as "
    "dtlab model memory: *embed*, *.wte.*, *.wpe.*, *norm*, *bias, *lm_head*.",
)


@contextmanager
def _progress(show: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    if not show:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def update(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done, total=total)

        yield update


def _check_outputs(csv_out: Path | None, md_out: Path | None, plot: Path | None) -> None:
    for out in (csv_out, md_out):
        if out is not None:
            check_writable(out)
    if plot is not None:
        check_plot_path(plot)
    check_distinct([csv_out, md_out, plot])


def _verdict(broken: list[str]) -> None:
    """Exit status 1 when a --fail-on rule broke (2 is kept for bad input)."""
    if broken:
        said = broken[0] if len(broken) == 1 else f"{len(broken)} verdicts, first: {broken[0]}"
        err_console.print(f"--fail-on: {said}", markup=False)
        raise typer.Exit(1)


@guarded
def compare_cmd(
    model: str = MODEL_ARG,
    formats: str = typer.Option(
        COMPARE_FORMATS,
        "--as",
        help="Formats, comma-separated: fp32, bf16, fp16 run natively; others (fp8, int8, "
        "int4:g128, nf4, mxfp4, nvfp4, ...) fake-quantize the weights, in the grammar of "
        "dtlab quantize --as.",
    ),
    activations: str = typer.Option(
        None, "--activations", help="Also fake-quantize the inputs of quantized layers to FMT."
    ),
    keep: str = KEEP_OPTION,
    text: Path = TEXT_OPTION,
    sequences: int = typer.Option(
        None, "--sequences", help="Chunks to score (default 4), or passages for encoders (64)."
    ),
    seq_len: int = typer.Option(128, "--seq-len", help="Tokens per chunk (most per passage)."),
    batch_size: int = typer.Option(
        None, "--batch-size", help="Sequences per forward call (default 4, encoders 16)."
    ),
    trust_remote_code: bool = REMOTE_OPTION,
    fail_on: str = typer.Option(
        None,
        "--fail-on",
        help="Exit with status 1 on: kld>X, top1<PCT, ppl-ratio>R, cos<C (comma-separated).",
    ),
    csv_out: Path = typer.Option(None, "--csv", help="Write one row per format and layer."),
    md_out: Path = typer.Option(None, "--markdown", help="Write a Markdown report."),
    plot: Path = typer.Option(None, "--plot", help="Draw per-layer SQNR and KLD (.png)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run a model in fp32 and in each format on the same real text, and compare what it
    outputs: for language models llama.cpp's KL-divergence statistics (KLD, same top-1, Δp,
    PPL and its ratio, with uncertainties); for encoders embedding cosines and retrieval
    agreement; for every model the largest output difference, the worst layers, and memory.

    \b
    Examples:
      dtlab model compare
      dtlab model compare smollm2 --as bf16,fp16,int8,nf4,mxfp4
      dtlab model compare ./my-model --as int4:g128 --activations fp8 --json
    """
    from dtlab.checkpoint.memory import DEFAULT_PATTERNS
    from dtlab.cli.common import required_list
    from dtlab.models.compare import compare_model
    from dtlab.models.verdicts import COMPARE_RULES, compare_failures, parse_rules
    from dtlab.render.compare import compare_csv, compare_markdown, compare_view
    from dtlab.render.model_plots import compare_plot

    model = path_argument(model)
    specs = required_list(formats, "--as", "bf16,int8")
    rules = split_list(fail_on)
    parse_rules(rules, COMPARE_RULES)  # bad rules fail before the runs, not after
    _check_outputs(csv_out, md_out, plot)
    with _progress(not as_json and console.is_terminal) as tell:
        report = compare_model(
            model,
            specs,
            activations=activations,
            keep=DEFAULT_PATTERNS if keep is None else tuple(split_list(keep)),
            text_path=str(text) if text is not None else None,
            sequences=sequences,
            seq_len=seq_len,
            batch_size=batch_size,
            trust_remote_code=trust_remote_code,
            progress=tell,
        )
    if csv_out is not None:
        write_text(csv_out, compare_csv(report))
    if md_out is not None:
        write_text(md_out, compare_markdown(report))
    if plot is not None:
        compare_plot(report, plot)
    if as_json:
        emit_json("dtlab.model-compare/1", report)
    else:
        emit(compare_view(report))
    _verdict(compare_failures(report, rules))


@guarded
def activations_cmd(
    model: str = MODEL_ARG,
    to: str = typer.Option(ACTIVATION_TARGETS, "--to", help="Target formats, comma-separated."),
    run_in: str = typer.Option(
        None, "--run-in", help="Also run natively in fp16 or bf16 and name the first inf/NaN."
    ),
    text: Path = TEXT_OPTION,
    sequences: int = typer.Option(
        None, "--sequences", help="Chunks (default 2), or passages for encoders (16)."
    ),
    seq_len: int = typer.Option(128, "--seq-len", help="Tokens per chunk (most per passage)."),
    batch_size: int = typer.Option(
        None, "--batch-size", help="Sequences per forward call (default 4, encoders 16)."
    ),
    show_all: bool = typer.Option(False, "--all", help="List every module, not the 15 worst."),
    trust_remote_code: bool = REMOTE_OPTION,
    fail_on: str = typer.Option(
        None,
        "--fail-on",
        help="Exit with status 1 on: overflow, nan, headroom<BINADES (comma-separated).",
    ),
    csv_out: Path = typer.Option(None, "--csv", help="Write one row per module."),
    md_out: Path = typer.Option(None, "--markdown", help="Write a Markdown report."),
    plot: Path = typer.Option(None, "--plot", help="Draw each module's headroom (.png)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """One fp32 forward pass with hooks on every module: each output's largest magnitude,
    NaN/inf and binades, and per target format the headroom below its max, the shares that
    would turn subnormal or flush to zero, and the first module (in execution order) that
    would overflow. --run-in fp16 runs natively too and names where inf/NaN first appears.

    \b
    Examples:
      dtlab model activations
      dtlab model activations smollm2 --to fp16,fp8 --run-in fp16
      dtlab model activations ./my-model --json
    """
    from dtlab.cli.common import required_list
    from dtlab.models.activations import scan_activations
    from dtlab.models.verdicts import ACTIVATION_RULES, activation_failures, parse_rules
    from dtlab.render.activations import activations_csv, activations_markdown, activations_view
    from dtlab.render.model_plots import activations_plot

    model = path_argument(model)
    targets = required_list(to, "--to", "fp16,bf16")
    rules = split_list(fail_on)
    parse_rules(rules, ACTIVATION_RULES)
    _check_outputs(csv_out, md_out, plot)
    with _progress(not as_json and console.is_terminal) as tell:
        report = scan_activations(
            model,
            targets,
            run_in=run_in,
            text_path=str(text) if text is not None else None,
            sequences=sequences,
            seq_len=seq_len,
            batch_size=batch_size,
            trust_remote_code=trust_remote_code,
            progress=tell,
        )
    if csv_out is not None:
        write_text(csv_out, activations_csv(report))
    if md_out is not None:
        write_text(md_out, activations_markdown(report))
    if plot is not None:
        activations_plot(report, plot)
    if as_json:
        emit_json("dtlab.model-activations/1", report)
    else:
        emit(activations_view(report, show_all))
    _verdict(activation_failures(report, rules))
