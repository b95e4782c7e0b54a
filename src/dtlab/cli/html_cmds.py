"""dtlab explore, dtlab report: the self-contained HTML pages."""

from __future__ import annotations

from pathlib import Path

import typer

from dtlab.cli.common import JSON_OPTION, console, emit_json, guarded, parse_formats
from dtlab.outputs import check_output_path, write_text

HTML_HELP = "Also write the results as a self-contained HTML report (.html)."


def check_html_path(path: Path | None, inputs: list[Path] | tuple[Path, ...] = ()) -> None:
    """An --html output, checked before any work."""
    if path is not None:
        check_output_path(path, (".html", ".htm"), "reports are written as .html", inputs=inputs)


@guarded
def explore_cmd(
    output: Path = typer.Option(Path("explorer.html"), "--output", "-o", help="The page to write."),
    formats: str = typer.Option(
        None, "--formats", help="Formats to list first, comma-separated (specs too: e5m3, int7)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Write the format explorer: one HTML file that opens from disk, with no network.

    Pick a format or type a spec, click bits, type a value as dtlab reads it (0.1, 1/3,
    0x1.8p2, 2^-24), choose the rounding and overflow; see the exact stored value, the
    error, the neighbours, several formats side by side and, for 8 bits or fewer, every value.

    \b
    Examples:
      dtlab explore
      dtlab explore -o fp8.html --formats e4m3fn,e5m2,e4m3:bias=5,e5m3,int7
    """
    from dtlab.html import explorer_page

    fmts = parse_formats(formats, "--formats") if formats is not None else None
    check_output_path(output, (".html", ".htm"), "the explorer is written as .html")
    write_text(output, explorer_page(fmts))
    _said(output, "explorer", as_json)


@guarded
def report_cmd(
    result: Path = typer.Argument(..., help="A result file: dtlab ... --json > RESULT.json"),
    output: Path = typer.Option(..., "--output", "-o", help="The report to write (.html)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Write a self-contained HTML report of a dtlab result: a summary per format, the plots,
    the run's parameters and a sortable, filterable table of every row.

    \b
    Results it reads: model scan, cast and quantize (--json output).
    Examples:
      dtlab model scan --json > scan.json && dtlab report scan.json -o scan.html
      dtlab cast normal:1e6 --as bf16,fp8 --json > cast.json && dtlab report cast.json -o cast.html
    """
    from dtlab.html import report_file

    check_output_path(output, (".html", ".htm"), "reports are written as .html", inputs=[result])
    schema, page = report_file(result)
    write_text(output, page)
    _said(output, schema, as_json)


def _said(output: Path, kind: str, as_json: bool) -> None:
    from dtlab.html.page import written

    if as_json:
        emit_json("dtlab.page/1", written(output, kind))
    else:
        console.print(f"wrote {output}", markup=False, highlight=False)


__all__ = ["HTML_HELP", "check_html_path", "explore_cmd", "report_cmd"]
