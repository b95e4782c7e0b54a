"""The CLI's option defaults are the library's constants, not copies of them."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from dtlab import defaults
from dtlab.checkpoint import DEFAULT_TARGETS
from dtlab.checkpoint.scan import DEFAULT_BUDGET, DEFAULT_FORMATS, DEFAULT_SQNR_DB
from dtlab.cli.app import app

COMMAND = typer.main.get_command(app)


def default(path: str, option: str) -> object:
    cmd: Any = COMMAND
    for name in path.split():
        cmd = cmd.commands[name]  # typer's groups (typer vendors click's classes)
    param = next(p for p in cmd.params if option in getattr(p, "opts", ()) or p.name == option)
    return param.default


@pytest.mark.parametrize(
    ("path", "option", "want"),
    [
        ("show", "--as", defaults.joined(defaults.SHOW_FORMATS)),
        ("show", "--rounding", "nearest-even"),
        ("cast", "--as", defaults.joined(defaults.CAST_FORMATS)),
        ("cast", "--rounding", "nearest-even"),
        ("cast", "--subnormals", "keep"),
        ("dot", "--as", defaults.joined(defaults.DOT_FORMATS)),
        ("dot", "--accumulate", defaults.joined(defaults.DOT_ACCUMULATE)),
        ("dot", "source", defaults.DOT_SOURCE),
        ("quantize", "--as", defaults.joined(defaults.QUANTIZERS)),
        ("int add", "--as", defaults.INT_FORMAT),
        ("model memory", "--to", defaults.joined(DEFAULT_TARGETS)),
        ("model scan", "--to", defaults.joined(DEFAULT_FORMATS)),
        ("model scan", "--sqnr", DEFAULT_SQNR_DB),
        ("model scan", "--memory-budget", DEFAULT_BUDGET >> 20),
    ],
)
def test_cli_defaults_come_from_the_library(path: str, option: str, want: object) -> None:
    assert default(path, option) == want
