"""dtlab cast and its tensor sources, including hostile files."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from dtlab.cli.app import app
from dtlab.errors import DtlabError
from dtlab.inputs import load_tensor
from dtlab.kernels import quantize

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


def test_generated_sources_are_seeded() -> None:
    a = load_tensor("normal:1000:std=10", seed=3).tensor
    b = load_tensor("normal:1000:std=10", seed=3).tensor
    assert torch.equal(a, b) and 5 < a.std() < 15
    u = load_tensor("uniform:2^10:low=-1:high=1").tensor
    assert u.numel() == 1024 and u.min() >= -1 and u.max() <= 1
    t = load_tensor("student-t:1e4:df=2", seed=1).tensor
    assert t.abs().max() > 20  # heavy tails
    lap = load_tensor("laplace:1e4:scale=2").tensor
    assert 2.5 < lap.abs().mean() * 1.5 < 3.5


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("normal", "how many values"),
        ("normal:0", "positive integer"),
        ("normal:1.5", "positive integer"),
        ("normal:1e12", "more than"),
        ("normal:10:sd=3", "takes mean=, std="),
        ("normal:10:std=inf", "finite"),
        ("nope.npy", "no such file"),
    ],
)
def test_bad_sources(spec: str, message: str) -> None:
    with pytest.raises(DtlabError, match=message):
        load_tensor(spec)


def test_files_of_every_kind(tmp_path: Path) -> None:
    x = torch.randn(4, 5)
    np.save(tmp_path / "x.npy", x.numpy())
    save_file({"a.weight": x, "b": x * 2}, str(tmp_path / "m.safetensors"))
    torch.save({"w": x}, tmp_path / "w.pt")
    assert torch.equal(load_tensor(str(tmp_path / "x.npy")).tensor, x)
    assert torch.equal(load_tensor(f"{tmp_path}/m.safetensors:b").tensor, x * 2)
    assert torch.equal(load_tensor(f"{tmp_path}/w.pt", allow_pickle=True).tensor, x)
    with pytest.raises(DtlabError, match="refusing to unpickle"):
        load_tensor(f"{tmp_path}/w.pt")
    with pytest.raises(DtlabError, match="holds 2 tensors; name one"):
        load_tensor(f"{tmp_path}/m.safetensors")
    with pytest.raises(DtlabError, match=r"no tensor named 'a'; similar: a\.weight"):
        load_tensor(f"{tmp_path}/m.safetensors:a")


def test_hostile_files_are_refused_cleanly(tmp_path: Path) -> None:
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY\x01\x00\xff\xff{'descr': '<f4'")
    (tmp_path / "bad.safetensors").write_bytes(b"\xff" * 8 + b"{}")
    obj = np.array([{"x": 1}], dtype=object)
    np.save(tmp_path / "obj.npy", obj, allow_pickle=True)

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("pwned",))

    import pickle

    (tmp_path / "evil.pt").write_bytes(pickle.dumps(Evil()))
    for name, message in [
        ("bad.npy", "not a readable .npy"),
        ("bad.safetensors", "not a readable safetensors"),
        ("obj.npy", "not a readable .npy"),
        ("evil.pt", "weights_only=True"),
    ]:
        code, out, err = run("cast", str(tmp_path / name), "--as", "fp8")
        assert code == 2 and message in err and "pwned" not in out + err, name
        assert err.count("\n") == 1


def test_cast_command_counts_and_writes(tmp_path: Path) -> None:
    out = tmp_path / "q.safetensors"
    code, text, _ = run("cast", "normal:1e4:std=100", "--as", "fp8,e5m2,fp4", "-o", str(out))
    assert code == 0 and "float8_e4m3fn" in text and f"wrote {out}" in text
    from safetensors.torch import load_file

    saved = load_file(str(out))
    x = load_tensor("normal:1e4:std=100").tensor
    assert torch.equal(saved["float8_e4m3fn"].nan_to_num(7.0), quantize(x, "fp8").nan_to_num(7.0))
    code, text, _ = run("cast", "normal:1e4:std=1000", "--as", "fp8", "--json")
    doc = json.loads(text)
    assert doc["schema"] == "dtlab.cast/1"
    row = doc["result"]["analysis"]["results"][0]
    xs = load_tensor("normal:1e4:std=1000").tensor
    m = row["metrics"]
    assert row["format"] == "float8_e4m3fn"
    assert m["nonfinite_output"] == int((xs.abs() > 464).sum()) == m["overflow"]
    assert m["underflow"] == int(((xs != 0) & (xs.abs() <= 2.0**-10)).sum())


def test_cast_errors() -> None:
    code, _, err = run("cast", "normal:10", "--as", "fp8,fp16", "-o", "x.npy")
    assert code == 2 and "one tensor" in err
    code, _, err = run("cast", "normal:10", "--as", "fp8", "-o", "/nonexistent/dir/x.npy")
    assert code == 2 and "no such folder" in err
