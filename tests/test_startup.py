"""Header-only commands start without torch or numpy: ``dtlab model memory`` reads headers
and counts bytes from torch-free quantizer descriptors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

PROBE = """
import sys, io, contextlib
sys.argv = ["dtlab", *sys.argv[1:]]
from dtlab.cli.app import main
out = io.StringIO()
code = 0
try:
    with contextlib.redirect_stdout(out):
        main()
except SystemExit as exc:
    code = exc.code or 0
loaded = sorted(m for m in ("torch", "numpy", "safetensors") if m in sys.modules)
print(json.dumps({"code": code, "loaded": loaded, "out": out.getvalue()}))
""".replace("import sys,", "import json, sys,")


def run_probe(*args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def four_shards(folder: Path) -> Path:
    weight_map: dict[str, str] = {}
    for i in range(4):
        name = f"model-{i + 1:05d}-of-00004.safetensors"
        tensors = {
            f"layers.{i}.mlp.weight": torch.randn(64, 128),
            f"layers.{i}.norm.weight": torch.ones(64),
        }
        save_file(tensors, str(folder / name))
        weight_map.update(dict.fromkeys(tensors, name))
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder


@pytest.mark.parametrize("json_flag", [False, True])
def test_memory_of_the_embedded_model_imports_neither_torch_nor_numpy(json_flag: bool) -> None:
    r = run_probe("model", "memory", *(["--json"] if json_flag else []))
    assert r["code"] == 0 and r["loaded"] == []
    assert "int4:g128" in str(r["out"])


def test_memory_of_a_sharded_checkpoint_imports_neither_torch_nor_numpy(tmp_path: Path) -> None:
    r = run_probe("model", "memory", str(four_shards(tmp_path)), "--to", "bf16,int4:g32,nvfp4")
    assert r["code"] == 0 and r["loaded"] == []
    out = str(r["out"])
    assert "33,024" in out and "nvfp4" in out  # 4 x (64 x 128 + 64) parameters


def test_the_probe_sees_torch_when_a_command_needs_it() -> None:
    """The probe can fail: a command that quantizes tensors does load torch."""
    r = run_probe("quantize", "normal:256", "--as", "int8")
    assert r["code"] == 0 and "torch" in r["loaded"]


def test_a_library_warning_reaches_stderr_as_one_line() -> None:
    # torch and matplotlib warn with several lines (the message, then the source line)
    code = (
        "import sys, warnings\n"
        "from dtlab.cli import app as cli\n"
        "def noisy():\n"
        "    warnings.warn('TypedStorage is deprecated.\\n  It will be removed', UserWarning)\n"
        "cli.app = noisy\n"
        "cli.main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stderr == "warning: TypedStorage is deprecated. (UserWarning)\n"
