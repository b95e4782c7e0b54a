"""Outputs never destroy inputs: a path that resolves to an input (directly, through a symlink,
'..' or a hard link) is refused before any work, and every file is written atomically."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from dtlab.cli.app import app
from dtlab.errors import OptionError
from dtlab.outputs import OutputError, check_writable, write_atomic, write_text

runner = CliRunner()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def refused(args: list[str], fragment: str, victims: list[Path]) -> None:
    before = {p: digest(p) for p in victims}
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert fragment in r.stderr, r.stderr
    assert {p: digest(p) for p in victims} == before  # byte-identical afterwards


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    npy = tmp_path / "x.npy"
    np.save(npy, np.linspace(-3, 3, 64, dtype=np.float32))
    st = tmp_path / "m.safetensors"
    save_file({"w": torch.randn(8, 8), "b": torch.randn(8)}, str(st))
    shards = tmp_path / "sharded"
    shards.mkdir()
    save_file({"a": torch.randn(4, 4)}, str(shards / "s1.safetensors"))
    save_file({"b": torch.randn(4, 4)}, str(shards / "s2.safetensors"))
    index = {"metadata": {}, "weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}}
    (shards / "model.safetensors.index.json").write_text(json.dumps(index))
    return {"npy": npy, "st": st, "shards": shards}


def test_cast_refuses_to_write_over_its_npy_input(files: dict[str, Path]) -> None:
    x = files["npy"]
    refused(["cast", str(x), "--as", "fp4", "-o", str(x)], "is an input", [x])


def test_cast_refuses_to_write_over_its_safetensors_input(files: dict[str, Path]) -> None:
    st = files["st"]
    refused(["cast", f"{st}:w", "-o", str(st)], "is an input", [st])


@pytest.mark.parametrize("how", ["symlink", "hardlink", "dotdot"])
def test_every_other_name_of_the_input_is_refused(
    files: dict[str, Path], tmp_path: Path, how: str
) -> None:
    st = files["st"]
    other = tmp_path / "other.safetensors"
    if how == "symlink":
        other.symlink_to(st)
    elif how == "hardlink":
        os.link(st, other)
    else:
        (tmp_path / "sub").mkdir()
        other = tmp_path / "sub" / ".." / st.name
    refused(["cast", f"{st}:w", "--as", "fp8", "-o", str(other)], "is an input", [st])


def test_a_shard_of_the_input_is_refused_too(files: dict[str, Path]) -> None:
    folder = files["shards"]
    shard = folder / "s2.safetensors"
    refused(["cast", f"{folder}:a", "-o", str(shard)], "is an input", [shard])
    index = folder / "model.safetensors.index.json"
    refused(["model", "scan", str(folder), "--csv", str(index)], "is an input", [index, shard])


def test_scan_refuses_to_write_its_csv_or_markdown_over_the_checkpoint(
    files: dict[str, Path],
) -> None:
    st = files["st"]
    refused(["model", "scan", str(st), "--csv", str(st)], "is an input", [st])
    refused(["model", "scan", str(st), "--markdown", str(st)], "is an input", [st])


def test_two_outputs_naming_one_file_are_refused(files: dict[str, Path], tmp_path: Path) -> None:
    st, report = files["st"], tmp_path / "r.txt"
    report.write_text("keep me")
    args = ["model", "scan", str(st), "--csv", str(report), "--markdown", str(report)]
    refused(args, "same file", [report])


@pytest.mark.parametrize(
    ("make", "fragment"),
    [("folder", "is a folder"), ("missing", "no such folder"), ("fifo", "not a regular file")],
)
def test_unwritable_outputs_fail_before_the_work(
    files: dict[str, Path], tmp_path: Path, make: str, fragment: str
) -> None:
    out = tmp_path / "out.safetensors"
    if make == "folder":
        out.mkdir()
    elif make == "missing":
        out = tmp_path / "nowhere" / "out.safetensors"
    else:
        os.mkfifo(out)
    refused(["cast", f"{files['st']}:w", "-o", str(out)], fragment, [files["st"]])
    csv = out if make == "folder" else out.with_suffix(".csv")
    if make == "fifo":
        os.mkfifo(csv)
    refused(["model", "scan", str(files["st"]), "--csv", str(csv)], fragment, [files["st"]])


def test_a_cast_output_is_written_and_readable(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.safetensors"
    r = runner.invoke(app, ["cast", f"{files['st']}:w", "--as", "bf16,fp8", "-o", str(out)])
    assert r.exit_code == 0, r.stderr
    from safetensors.torch import load_file

    assert set(load_file(str(out))) == {"bfloat16", "float8_e4m3fn"}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    target.write_text("old")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("writer died")

    with pytest.raises(RuntimeError):
        write_atomic(target, half_then_fail)
    assert target.read_text() == "old" and sorted(tmp_path.iterdir()) == [target]

    def disk_full(tmp: Path) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputError, match=r"could not be written.*No space left"):
        write_atomic(target, disk_full)
    assert target.read_text() == "old" and sorted(tmp_path.iterdir()) == [target]
    write_text(target, "new")
    assert target.read_text() == "new"


def test_check_writable_names_the_input(tmp_path: Path) -> None:
    a = tmp_path / "a.csv"
    a.write_text("x")
    with pytest.raises(OptionError, match="is an input"):
        check_writable(tmp_path / "." / "a.csv", inputs=[a])
    check_writable(tmp_path / "b.csv", inputs=[a])  # a new file beside it is fine


# ---- inputs that would hang: FIFOs and other non-regular files ------------------------------


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("name", ["x.npy", "x.pt", "x.safetensors", "model.safetensors.index.json"])
def test_a_named_pipe_given_as_input_is_refused_at_once(tmp_path: Path, name: str) -> None:
    p = fifo(tmp_path / name)
    commands = [["cast", str(p)], ["model", "scan", str(p)], ["model", "memory", str(p)]]
    for args in commands:
        code, err = run_bounded([*args, "--allow-pickle"])
        assert code == 2 and "named pipe" in err and err.count("\n") == 1, err


@pytest.mark.parametrize("where", ["single", "shard", "glob", "index"])
def test_a_named_pipe_inside_a_model_folder_is_refused(tmp_path: Path, where: str) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    if where == "single":
        fifo(folder / "model.safetensors")
    elif where == "glob":
        fifo(folder / "weights.safetensors")
    else:
        save_file({"a": torch.ones(2, 2)}, str(folder / "s1.safetensors"))
        index = {"metadata": {}, "weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}}
        if where == "shard":
            fifo(folder / "s2.safetensors")
            (folder / "model.safetensors.index.json").write_text(json.dumps(index))
        else:
            fifo(folder / "model.safetensors.index.json")
    code, err = run_bounded(["model", "memory", str(folder)])
    assert code == 2 and err.count("\n") == 1, err
    assert "named pipe" in err or "not a file" in err, err


def run_bounded(args: list[str]) -> tuple[int, str]:
    """The real command in a child process, killed after 60 s: a hang fails the test instead
    of stopping the suite."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "from dtlab.cli.app import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stderr


# ---- verdicts that must not pass ------------------------------------------------------------


def test_an_empty_checkpoint_fails_a_fail_on_check(tmp_path: Path) -> None:
    empty = tmp_path / "empty.safetensors"
    save_file({"ids": torch.arange(4)}, str(empty))  # integers only: nothing to scan
    r = runner.invoke(app, ["model", "scan", str(empty), "--fail-on", "overflow"])
    assert r.exit_code == 1 and "nothing to check" in r.stderr, r.stderr
    assert "every tensor is safe" not in r.stdout and "no floating-point tensor" in r.stdout
    assert runner.invoke(app, ["model", "scan", str(empty)]).exit_code == 0  # no check asked


@pytest.mark.parametrize("args", [["--fail-on", "sqnr<nan"], ["--fail-on", "sqnr<inf"],
                                  ["--sqnr", "nan"], ["--sqnr", "inf"]])  # fmt: skip
def test_thresholds_that_mean_nothing_are_refused(files: dict[str, Path], args: list[str]) -> None:
    refused(["model", "scan", str(files["st"]), *args], "", [files["st"]])


def test_a_cast_that_overflows_to_inf_fails_an_sqnr_check(tmp_path: Path) -> None:
    """Issue 14: non-finite results were left out of SQNR, which then read as inf dB."""
    m = tmp_path / "m.safetensors"
    w = torch.full((8, 8), 0.5)
    w[0, 0] = 1e6  # inf in fp16
    save_file({"w": w}, str(m))
    r = runner.invoke(app, ["model", "scan", str(m), "--to", "fp16", "--fail-on", "sqnr<20"])
    assert r.exit_code == 1 and "w in float16" in r.stderr, r.stderr
    r = runner.invoke(app, ["model", "scan", str(m), "--to", "fp16", "--json"])
    doc = json.loads(r.stdout, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    (verdict,) = doc["result"]["tensors"][0]["verdicts"]
    assert verdict["metrics"]["sqnr_db"] == "-inf" and verdict["metrics"]["cosine"] == "nan"
