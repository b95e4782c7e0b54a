"""Names and strings from files never reach the terminal or a report raw (issue 14): control
characters are escaped, Markdown cells cannot break their table or carry HTML."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from dtlab.cli.app import app
from dtlab.render.text import markdown_cell, printable

runner = CliRunner()
EVIL = "evil\x1b[31mRED\x07\u202ename"
CONTROL = ("\x1b", "\x07", "\u202e")


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    path = tmp_path / "m.safetensors"
    html = "ok|<img src=x onerror=alert(1)>"
    save_file({EVIL: torch.ones(4, 4) * 1e6, html: torch.ones(4, 4) * 1e6}, str(path))
    return path


def clean(text: str) -> bool:
    return not any(c in text for c in CONTROL)


def test_scan_and_memory_escape_names(ckpt: Path, tmp_path: Path) -> None:
    md = tmp_path / "r.md"
    r = runner.invoke(
        app, ["model", "scan", str(ckpt), "--to", "fp16", "--all", "--markdown", str(md)]
    )
    assert r.exit_code == 0 and clean(r.stdout) and "evil\\x1b[31mRED" in r.stdout
    text = md.read_text()
    assert clean(text) and "<img" not in text and "ok\\|&lt;img" in text
    for line in text.splitlines():
        if line.startswith(("| evil", "| ok")):  # the verdict table: three cells
            assert line.count(" | ") == 2  # the name added none
    r = runner.invoke(app, ["model", "memory", str(ckpt)])
    assert r.exit_code == 0 and clean(r.stdout)


def test_error_messages_escape_names(ckpt: Path) -> None:
    r = runner.invoke(app, ["cast", f"{ckpt}:no\x1bsuch", "--as", "fp8"])
    assert r.exit_code == 2 and clean(r.stderr) and r.stderr.count("\n") == 1, r.stderr


@pytest.mark.parametrize("c", [chr(i) for i in (*range(32), 127, *range(0x80, 0xA0))] + ["\u202e"])
def test_every_control_character_is_escaped(c: str) -> None:
    assert printable(f"a{c}b").isprintable() and printable(f"a{c}b") != f"a{c}b"
    assert markdown_cell(f"a{c}b").isprintable()


def test_printable_text_is_left_alone() -> None:
    for text in ("encoder.layer.0.weight", "poids_é", "权重", "a b"):
        assert printable(text) == text
