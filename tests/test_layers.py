"""The layers of the design hold: imports point down, and only kernels/ touches the C module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "dtlab"
MODULES = sorted(p for p in SRC.rglob("*.py"))


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_the_walk_sees_the_kernel_gateway() -> None:
    native = SRC / "kernels" / "native.py"
    assert any(n.endswith("_quantize") for n in imported(native))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_only_kernels_touches_the_c_module(path: Path) -> None:
    if path.parent.name == "kernels":
        return
    assert not any(n.endswith("._quantize") for n in imported(path)), path


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_modules_stay_short(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 420, path  # STYLE.md: ~400 lines


@pytest.mark.parametrize("layer", ["formats", "scalar"])
def test_the_bottom_layers_import_no_torch(layer: str) -> None:
    for path in (SRC / layer).rglob("*.py"):
        names = imported(path)
        assert not any(n.split(".")[0] in ("torch", "numpy") for n in names), path


@pytest.mark.parametrize("path", sorted((SRC / "kernels").glob("*.[ch]")), ids=lambda p: p.name)
def test_c_sources_stay_short(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 620, path  # about 600
