"""Every ``>>>`` example in the library's docstrings runs and gives what it shows."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import dtlab

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(dtlab.__path__, "dtlab.")
    if not m.name.rsplit(".", 1)[-1].startswith("_")  # the C extension has no docstrings
)


def test_the_walk_finds_the_documented_modules() -> None:
    assert {"dtlab.formats.quantizer", "dtlab.analysis.intquant"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
