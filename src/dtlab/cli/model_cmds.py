"""dtlab model memory|scan: checkpoints, from the header alone or streamed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from dtlab.cli.common import (
    JSON_OPTION,
    PICKLE_OPTION,
    console,
    emit,
    emit_json,
    err_console,
    fail,
    guarded,
    path_argument,
    required_list,
    split_list,
)
from dtlab.cli.html_cmds import HTML_HELP, check_html_path
from dtlab.defaults import MEMORY_TARGETS, SCAN_BUDGET_BYTES, SCAN_FORMATS, SCAN_SQNR_DB, joined
from dtlab.outputs import check_distinct, check_plot_path, check_writable, write_text

if TYPE_CHECKING:
    from dtlab.checkpoint.scan import Progress as ScanProgress
    from dtlab.checkpoint.scan import ScanReport
    from dtlab.formats.quantizer_spec import Target

model_app = typer.Typer(
    help="Checkpoints: memory tables from the header, and a streaming pre-cast scan. "
    "With no PATH, the embedded all-MiniLM-L6-v2.",
    no_args_is_help=True,
)

PATH_ARG = typer.Argument(
    None, help="A .safetensors file, a folder of shards with an index, or a model folder."
)
MEMORY_PATH_ARG = typer.Argument(
    None,
    help="A .safetensors file, a folder of shards with an index, a model folder, or a Hub "
    "model ORG/NAME[@REVISION] (hf://ORG/NAME: the Hub only), read from its headers alone.",
)


@model_app.command("memory")
@guarded
def memory_cmd(
    path: str = MEMORY_PATH_ARG,
    targets: str = typer.Option(
        joined(MEMORY_TARGETS),
        "--to",
        help="Targets, comma-separated, in the grammar of dtlab quantize --as: a format (floats "
        "are plain casts; intN has one fp32 scale per tensor) with :channel, :gN, :asym, or a "
        "block format (mxfp4, mxfp8, nvfp4, nf4, ...), or a GGML type (q8_0, q4_0, q4_k, "
        "q6_k, ...).",
    ),
    keep: str = typer.Option(
        None, "--keep", help="Name patterns kept in high precision (globs; re: for a regex)."
    ),
    allow_pickle: bool = PICKLE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Weights memory in each target format, from the header alone (no tensor data read),
    with the overhead of scales and zero points, tied weights counted once, and the tensors
    usually kept in high precision (embeddings, norms, biases, lm_head) kept.

    \b
    Examples:
      dtlab model memory
      dtlab model memory ./my-model --to bf16,fp8,int4:g64,nvfp4
      dtlab model memory Qwen/Qwen2.5-7B-Instruct@main --to bf16,int4:g128
      dtlab model memory model.safetensors --keep "*norm*,*bias" --json
    """
    from dtlab.checkpoint import DEFAULT_PATTERNS, embedded_model, memory_table
    from dtlab.checkpoint.hub import open_named
    from dtlab.render.memory import EMBEDDED, memory_view

    path = path_argument(path)
    to = required_list(targets, "--to", "bf16,int4:g128")
    opened = open_named(path or str(embedded_model()), allow_pickle=allow_pickle)
    if opened.note is not None:
        err_console.print(f"note: {opened.note}", markup=False)
    ckpt = opened.checkpoint
    patterns = split_list(keep) if keep is not None else list(DEFAULT_PATTERNS)
    table = memory_table(ckpt, to, keep_high_precision=patterns)
    if as_json:
        emit_json("dtlab.memory/1", table)
    else:
        emit(memory_view(table, None if path else EMBEDDED))


@model_app.command("scan")
@guarded
def scan_cmd(
    path: str = PATH_ARG,
    to: str = typer.Option(
        joined(SCAN_FORMATS),
        "--to",
        help="Targets, comma-separated, in the grammar of model memory --to: a format is a plain "
        "cast (fp16, fp8, e4m3:bias=5); intN (one fp32 scale per tensor) with :channel, :gN, "
        ":asym, or a block format (mxfp4, nvfp4, nf4, ...) are quantized with their scales.",
    ),
    sqnr: float = typer.Option(
        SCAN_SQNR_DB, "--sqnr", help="Below this SQNR (dB) a cast is 'lossy'."
    ),
    fail_on: str = typer.Option(
        None,
        "--fail-on",
        help="Exit with status 1 on: overflow, nan, sqnr<DB (comma-separated); 2 is bad input.",
    ),
    workers: int = typer.Option(1, "--workers", help="Scan tensors in N processes."),
    dask: str = typer.Option(
        None,
        "--dask",
        help="Scan on a dask.distributed cluster: a scheduler address (tcp://host:8786; every "
        "worker must see PATH), or local:N for N local worker processes.",
    ),
    budget: int = typer.Option(
        SCAN_BUDGET_BYTES >> 20, "--memory-budget", help="MiB a worker may hold (chunking)."
    ),
    show_all: bool = typer.Option(False, "--all", help="List every tensor, safe ones too."),
    csv_out: Path = typer.Option(None, "--csv", help="Write one row per tensor and format."),
    md_out: Path = typer.Option(None, "--markdown", help="Write a Markdown report."),
    html_out: Path = typer.Option(None, "--html", help=HTML_HELP),
    plot_tensor: str = typer.Option(
        None, "--plot-tensor", help="A tensor to draw against the formats (with --plot)."
    ),
    plot: Path = typer.Option(None, "--plot", help="Where to draw --plot-tensor (.png)."),
    allow_pickle: bool = PICKLE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Stream every tensor and say, per tensor and target format, whether the cast is safe:
    overflow counts, NaN/inf present, SQNR; the worst tensors; a summary per format.
    Memory stays under the budget whatever the checkpoint's size.

    \b
    Examples:
      dtlab model scan
      dtlab model scan ./my-model --to fp16,fp8,e5m2 --fail-on overflow,nan
      dtlab model scan model.safetensors --workers 2 --csv scan.csv --markdown scan.md
      dtlab model scan ./my-model --dask local:4
      dtlab model scan --plot-tensor encoder.layer.0.output.dense.weight --plot w.png
    """
    from dtlab.checkpoint import embedded_model
    from dtlab.checkpoint.handle import input_files
    from dtlab.checkpoint.hub import refuse_remote_scan
    from dtlab.checkpoint.scan import failures, parse_fail_rules
    from dtlab.formats.quantizer_spec import parse_target
    from dtlab.html import report_page
    from dtlab.render.memory import EMBEDDED
    from dtlab.render.model import scan_csv, scan_markdown, scan_view

    path = path_argument(path)
    refuse_remote_scan(path)
    fmts = [parse_target(t) for t in required_list(to, "--to", "fp16,int4:g128")]
    # bad options fail before the scan, not after it
    rules = parse_fail_rules(split_list(fail_on))
    if (plot_tensor is None) != (plot is None):
        raise fail("--plot-tensor and --plot go together")
    if dask is not None and workers != 1:
        raise fail("--workers and --dask: choose one (--dask local:N for N local processes)")
    inputs = input_files(path or embedded_model())
    if plot is not None:
        check_plot_path(plot, inputs=inputs)
    for out in (csv_out, md_out):
        if out is not None:
            check_writable(out, inputs=inputs)
    check_html_path(html_out, inputs)
    check_distinct([plot, csv_out, md_out, html_out])
    show_progress = not as_json and console.is_terminal
    report = _run(path, fmts, sqnr, budget, workers, allow_pickle, show_progress, dask)
    if report.workers < workers:
        note = f"note: --workers {workers} capped at {report.workers}, this machine's cores"
        err_console.print(note, markup=False)
    if plot_tensor is not None and plot is not None:
        _plot(report.source, plot_tensor, fmts, plot, allow_pickle)
    if csv_out is not None:
        write_text(csv_out, scan_csv(report))
    if md_out is not None:
        write_text(md_out, scan_markdown(report))
    if html_out is not None:
        write_text(html_out, report_page("dtlab.scan/1", report))
    if as_json:
        emit_json("dtlab.scan/1", report)
    else:
        emit(scan_view(report, show_all, None if path else EMBEDDED))
    broken = failures(report, rules)
    if broken:  # exit status 1: the check failed (2 is kept for bad input)
        said = broken[0] if len(broken) == 1 else f"{len(broken)} verdicts, first: {broken[0]}"
        err_console.print(f"--fail-on: {said}", markup=False)
        raise typer.Exit(1)


def _run(
    path: str | None,
    fmts: list[Target],
    sqnr: float,
    budget: int,
    workers: int,
    allow_pickle: bool,
    show: bool,
    dask: str | None = None,
) -> ScanReport:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from dtlab.checkpoint.scan import scan_checkpoint

    def scan(progress: Callable[[ScanProgress], None] | None = None) -> ScanReport:
        return scan_checkpoint(
            path,
            fmts,
            sqnr_threshold_db=sqnr,
            memory_budget=budget << 20,
            workers=workers,
            allow_pickle=allow_pickle,
            progress=progress,
            dask=dask,
        )

    if not show:
        return scan()
    columns = (
        TextColumn("scanning"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("scan", total=None, info="")

        def update(p: ScanProgress) -> None:
            rate = p.params_done / p.seconds / 1e6 if p.seconds else 0.0
            info = (
                f"{p.tensors_done}/{p.tensors_total} tensors, {p.bytes_done / 1e6:,.0f}/"
                f"{p.bytes_total / 1e6:,.0f} MB, {rate:,.1f} M params/s"
            )
            bar.update(task, total=p.bytes_total, completed=p.bytes_done, info=info)

        return scan(update)


def _plot(source: str, name: str, targets: list[Target], path: Path, allow_pickle: bool) -> None:
    from dtlab.analysis.format_fit import analyze
    from dtlab.checkpoint import open_checkpoint, read_tensor
    from dtlab.formats import Format
    from dtlab.render.plots import analysis_plot

    fmts = [f for f in targets if isinstance(f, Format)]
    if not fmts:
        raise fail("--plot draws the ranges of the --to formats; quantizers have no fixed range")
    ckpt = open_checkpoint(source, allow_pickle=allow_pickle)
    x = read_tensor(ckpt, name)
    if not x.dtype.is_floating_point:
        raise fail(f"{name} holds {x.dtype}: nothing to plot")
    analysis_plot(analyze(x, fmts), x, path, name)
