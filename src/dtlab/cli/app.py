"""The composition root: wires the command modules into one typer app."""

from __future__ import annotations

import errno
import os
import sys
import warnings
from typing import TextIO

import typer

from dtlab import __version__
from dtlab.cli.cast_cmd import cast_cmd
from dtlab.cli.catalog_cmds import formats_cmd, info_cmd
from dtlab.cli.common import NUMBER_ARGS, STATE
from dtlab.cli.html_cmds import explore_cmd, report_cmd
from dtlab.cli.int_cmds import int_app
from dtlab.cli.model_cmds import model_app
from dtlab.cli.model_run_cmds import activations_cmd, compare_cmd
from dtlab.cli.ops_cmds import dot_cmd
from dtlab.cli.quantize_cmd import quantize_cmd
from dtlab.cli.tour_cmd import tour_cmd
from dtlab.cli.value_cmds import decode_cmd, show_cmd
from dtlab.errors import first_line
from dtlab.render.text import printable

app = typer.Typer(
    name="dtlab",
    help="dtlab, the data-type lab for quantization: what every ML number format holds, exactly.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dtlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an error."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True),
) -> None:
    flag = os.environ.get("DTLAB_DEBUG", "").strip().lower()
    STATE["debug"] = debug or flag in ("1", "true", "yes", "on")  # "0" and "" mean off


app.command("formats")(formats_cmd)
app.command("info")(info_cmd)
app.command("show", context_settings=NUMBER_ARGS)(show_cmd)
app.command("decode")(decode_cmd)
app.add_typer(int_app, name="int")
app.command("cast")(cast_cmd)
app.command("dot")(dot_cmd)
app.command("quantize")(quantize_cmd)
model_app.command("compare")(compare_cmd)
model_app.command("activations")(activations_cmd)
app.add_typer(model_app, name="model")
app.command("tour")(tour_cmd)
app.command("explore")(explore_cmd)
app.command("report")(report_cmd)


_WRITE_ERRORS = (errno.EPIPE, errno.ENOSPC, errno.EBADF, errno.EIO, errno.EDQUOT)


def main() -> None:
    """The ``dtlab`` command. A standard output that is closed, full or gone is one line on
    stderr and exit status 2, not a traceback."""
    if sys.stdout is None:
        sys.stderr.write("error: standard output is closed; dtlab has nowhere to write\n")
        raise SystemExit(2)
    warnings.showwarning = _one_line_warning
    try:
        app()
        sys.stdout.flush()
    except OSError as exc:
        if exc.errno not in _WRITE_ERRORS:
            raise
        _silence_stdout()
        sys.stderr.write(f"error: cannot write the output ({exc.strerror or exc})\n")
        raise SystemExit(2) from None


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A library's warning (torch, matplotlib, safetensors) as one line on stderr, not the
    source line and the text of several; ``--debug`` shows where it came from."""
    text = printable(first_line(message if isinstance(message, Warning) else Warning(message)))
    where = f" [{filename}:{lineno}]" if STATE["debug"] else ""
    sys.stderr.write(f"warning: {text} ({category.__name__}){where}\n")


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's flush at exit has nothing to fail on."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
