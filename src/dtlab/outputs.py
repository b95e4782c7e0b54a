"""Files the user asks dtlab to write: checked before any work, so that a bad path costs
nothing and leaves no half-written output."""

from __future__ import annotations

from pathlib import Path

from dtlab.errors import OptionError


def check_output_path(path: Path, suffixes: tuple[str, ...], hint: str) -> None:
    """An OptionError unless path ends in one of suffixes (``hint`` says which) and its
    folder exists."""
    if path.suffix.lower() not in suffixes:
        raise OptionError(f"{path}: {hint}")
    if not path.parent.exists():
        raise OptionError(f"{path.parent}: no such folder")


def check_plot_path(path: Path) -> None:
    check_output_path(path, (".png",), "plots are written as .png")
