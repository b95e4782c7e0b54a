"""The README's `$ dtlab ...` examples are what the code prints now (tools/readme_examples.py
pastes them; `make readme` regenerates them all)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "readme_examples", ROOT / "tools" / "readme_examples.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_readme_examples_match_what_dtlab_prints() -> None:
    tool = _tool()
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(tool.examples(text)) >= 10
    stale = [ex.command for ex, _ in tool.stale(text)]
    assert stale == [], "stale README examples (make readme regenerates them)"


def test_a_stale_example_is_caught_and_rewritten() -> None:
    tool = _tool()
    command = "$ dtlab show 1 --as fp4 --json | head -3"
    text = f'intro\n```text\n{command}\n{{\n  "schema": "old",\n```\nend\n'
    ((ex, now),) = tool.stale(text)
    assert ex.command.startswith("dtlab show 1") and '"schema": "dtlab.show/1"' in now
    fresh = tool.write(text)
    assert fresh.startswith("intro\n```text\n$ dtlab show 1") and fresh.endswith("```\nend\n")
    assert tool.stale(fresh) == []


def test_timings_are_masked_but_figures_are_not() -> None:
    tool = _tool()
    a = "scanned in 0.20 s (113.2 M params/s, 1 worker)\n| 68.4 dB |"
    b = "scanned in 13.75\ns (1.7 M params/s, 2 workers)\n| 68.4 dB |"
    assert tool.comparable(a) == tool.comparable(b)
    assert tool.comparable(a) != tool.comparable(a.replace("68.4", "68.5"))
