"""What every command shares: consoles, the error boundary, JSON output, format lists."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console, RenderableType
from rich.markup import escape

from dtlab.errors import DtlabError, OptionAdvice
from dtlab.formats import Format, get_format
from dtlab.render.fit import fit_to_width
from dtlab.render.jsonable import dumps
from dtlab.render.text import printable

# Piped output gets a wide page rather than rich's 80-column fallback.
_TTY = sys.stdout is not None and sys.stdout.isatty()  # None: started with stdout closed
_WIDTH = None if _TTY or os.environ.get("COLUMNS") else 120
console = Console(highlight=False, width=_WIDTH)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])

STATE = {"debug": bool(os.environ.get("DTLAB_DEBUG"))}

# Arguments such as -5 or -inf are numbers, not options.
NUMBER_ARGS = {"ignore_unknown_options": True}


def fail(message: str) -> typer.Exit:
    # the message is data: tensor names and paths hold ':x:' (an emoji) or '[b]' (markup)
    text = f"[bold red]error:[/] {escape(printable(message))}"
    err_console.print(text, markup=True, emoji=False, highlight=False)
    return typer.Exit(2)


def guarded(fn: F) -> F:
    """Turn a DtlabError into a one-line message and exit status 2 (--debug re-raises)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DtlabError as exc:
            if STATE["debug"]:
                raise
            raise fail(_one_line(message(exc))) from None

    return wrapper  # type: ignore[return-value]


def message(exc: DtlabError) -> str:
    """What the CLI says for a library error: where the library names a keyword option
    (``allow_pickle=True``), the flag that sets it (``--allow-pickle``)."""
    if isinstance(exc, OptionAdvice):
        return exc.naming(flag(exc.option))
    return str(exc)


def flag(option: str) -> str:
    """The flag of a keyword option, as typer spells it: ``allow_pickle`` -> ``--allow-pickle``."""
    return "--" + option.replace("_", "-")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def split_list(text: str | None) -> list[str]:
    """The non-empty items of a comma-separated option, stripped."""
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def required_list(text: str | None, option: str, example: str) -> list[str]:
    """The items of a list option that needs at least one: an empty one is an error, not a
    command that runs on nothing."""
    items = split_list(text)
    if not items:
        raise DtlabError(f"{option} names nothing (example: {option} {example})")
    return items


def path_argument(path: str) -> str:  # typer gives None when omitted, as PATH_ARG says
    """A PATH argument: None when omitted (the embedded model), never an empty string, which
    would quietly mean the embedded model or the current folder."""
    if path is not None and not path.strip():
        raise DtlabError("an empty PATH names nothing; omit it for the embedded model")
    return path


def parse_formats(text: str, option: str = "--as") -> list[Format]:
    return [get_format(n) for n in required_list(text, option, "fp16,bf16")]


def emit(renderable: RenderableType) -> None:
    """Print to stdout, tables fitted to the page; piped lines carry no trailing spaces."""
    fitted = fit_to_width(renderable, console)
    if console.is_terminal:
        console.print(fitted)
        return
    with console.capture() as captured:
        console.print(fitted)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def emit_json(schema: str, payload: Any) -> None:
    sys.stdout.write(dumps(schema, payload) + "\n")


JSON_OPTION = typer.Option(False, "--json", help="Print JSON instead (schema: docs/json.md).")
SOURCE_HELP = (
    "x.npy; FILE.safetensors[:NAME]; DIR[:NAME] (a model folder, or shards with "
    "model.safetensors.index.json); INDEX.json[:NAME]; FILE.gguf[:NAME]; weights.pt[:NAME] (with "
    "--allow-pickle); "
    "or normal:1e6, uniform:1e6:low=-1:high=1, laplace:1e6, student-t:1e6:df=3. NAME follows "
    "the last ':' before which an existing file or folder is named; it may hold dots and colons."
)
PICKLE_OPTION = typer.Option(
    False, "--allow-pickle", help="Load .bin/.pt pickles (with torch weights_only=True only)."
)
