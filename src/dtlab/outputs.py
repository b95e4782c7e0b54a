"""Files the user asks dtlab to write: checked before any work, so that a bad path costs
nothing, and written atomically, so that a failure leaves no half-written file.

An output may never be one of the command's inputs: a path that resolves to an input (through
symlinks, ``..`` or a hard link to the same file) is refused before anything is read, so a
cast or a scan can never overwrite the data it reads.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from dtlab.errors import DtlabError, OptionError, first_line

__all__ = [
    "OutputError",
    "check_distinct",
    "check_output_path",
    "check_plot_path",
    "write_atomic",
    "write_text",
]


class OutputError(DtlabError):
    """An output that could not be written; the file it names is left as it was."""


def check_output_path(
    path: Path, suffixes: tuple[str, ...], hint: str, *, inputs: Iterable[Path] = ()
) -> None:
    """An OptionError unless ``path`` ends in one of ``suffixes`` (``hint`` says which), is not
    a folder, lies in a writable folder, and is none of ``inputs``."""
    if path.suffix.lower() not in suffixes:
        raise OptionError(f"{path}: {hint}")
    check_writable(path, inputs=inputs)


def check_writable(path: Path, *, inputs: Iterable[Path] = ()) -> None:
    """An OptionError unless ``path`` can be written as a new or replaced regular file and is
    none of ``inputs``."""
    if path.is_dir():
        raise OptionError(f"{path}: is a folder; name a file to write")
    if path.exists() and not path.is_file():
        raise OptionError(f"{path}: not a regular file; name a file to write")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OptionError(f"{parent}: no such folder")
    if not _can_create(parent):
        raise OptionError(f"{parent}: folder not writable")
    for source in inputs:
        if _same_file(path, source):
            raise OptionError(
                f"{path}: is an input of this command ({source}); refusing to overwrite it: "
                "write the output elsewhere"
            )


def _can_create(folder: Path) -> bool:
    """Whether a file can be made in ``folder``, by making one (os.access says yes to root
    even in /proc)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".dtlab-probe.", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def check_plot_path(path: Path, *, inputs: Iterable[Path] = ()) -> None:
    check_output_path(path, (".png",), "plots are written as .png", inputs=inputs)


def check_distinct(paths: Iterable[Path | None]) -> None:
    """An OptionError when two outputs of one command name the same file."""
    given = [p for p in paths if p is not None]
    for i, a in enumerate(given):
        for b in given[i + 1 :]:
            if _same_file(a, b):
                raise OptionError(f"{a} and {b}: two outputs name the same file")


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)  # symlinks and hard links too
    except OSError:
        pass
    return a.resolve() == b.resolve()


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path`` (same suffix, so writers that go
    by it choose the same format), then rename it over ``path``: ``path`` is either untouched
    or complete, never half written."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: could not be written ({first_line(exc)})") from None
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:  # a full disk, a folder gone: say so in one line
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{path}: could not be written ({first_line(exc)})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """``path.write_text(text)``, atomically."""
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
