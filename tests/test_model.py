"""dtlab model memory and scan: the embedded MiniLM against direct torch, and the CLI contract."""

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

import dtlab.checkpoint.scan_tensor as scan_mod
from dtlab.checkpoint.scan import Status, embedded_model, failures, scan_checkpoint
from dtlab.cli.app import app
from dtlab.formats import get_format
from hostile import entry, write_st

runner = CliRunner()


@pytest.fixture(scope="module")
def minilm() -> dict[str, torch.Tensor]:
    return load_file(str(embedded_model()))


@pytest.fixture(scope="module")
def report():  # type: ignore[no-untyped-def]
    return scan_checkpoint(None, [get_format(f) for f in ("fp16", "bf16", "fp8")])


def test_scan_of_the_embedded_minilm_matches_torch(minilm, report) -> None:  # type: ignore[no-untyped-def]
    assert report.params == sum(t.numel() for t in minilm.values()) == 22_713_728
    by_name = {t.name: t for t in report.tensors}
    assert set(by_name) == set(minilm)
    for name, tensor in minilm.items():
        t = by_name[name]
        if not tensor.dtype.is_floating_point:
            assert t.verdicts == () and name == "embeddings.position_ids"
            continue
        assert t.absmax == float(tensor.abs().max())
        fp16 = t.verdicts[0].metrics
        q = tensor.half().float()
        assert fp16.overflow == int((tensor.abs() > 65504).sum()) == 0
        err = (q.double() - tensor.double()).abs()
        assert fp16.max_abs_error == pytest.approx(float(err.max()), rel=1e-6)
        noise = float(err.square().sum())
        if noise == 0:
            assert fp16.sqnr_db == math.inf
        else:
            sqnr = 10 * math.log10(float(tensor.double().square().sum()) / noise)
            assert fp16.sqnr_db == pytest.approx(sqnr, rel=1e-5)
    summary = {s.format.name: s for s in report.summaries}
    assert summary["float16"].safe == 103 and summary["float8_e4m3fn"].lossy > 0


def test_workers_give_the_same_report(report) -> None:  # type: ignore[no-untyped-def]
    two = scan_checkpoint(None, [get_format(f) for f in ("fp16", "bf16", "fp8")], workers=2)
    assert [t.name for t in two.tensors] == [t.name for t in report.tensors]
    for a, b in zip(two.tensors, report.tensors, strict=True):
        for va, vb in zip(a.verdicts, b.verdicts, strict=True):
            # counts and verdicts are exact; float sums may differ in their last bits
            assert (va.status, va.metrics.overflow, va.metrics.underflow) == (
                vb.status, vb.metrics.overflow, vb.metrics.underflow)  # fmt: skip
            assert va.metrics.sqnr_db == pytest.approx(vb.metrics.sqnr_db, rel=1e-9)


def test_nan_and_overflow_are_reported_not_crashed_on(tmp_path: Path) -> None:
    w = torch.randn(64, 64)
    w[0, 0], w[1, 1], w[2, 2] = math.nan, 70000.0, -1e6
    save_file(
        {"w": w, "ok": torch.randn(10).half(), "ids": torch.arange(4)},
        str(tmp_path / "m.safetensors"),
    )
    r = scan_checkpoint(tmp_path / "m.safetensors", [get_format("fp16")], memory_budget=1 << 20)
    t = {x.name: x for x in r.tensors}
    assert t["w"].nan == 1 and t["w"].verdicts[0].status is Status.NAN
    assert t["w"].verdicts[0].metrics.overflow == 2
    assert t["ok"].verdicts[0].status is Status.SAFE and t["ids"].verdicts == ()
    assert failures(r, ["nan"]) and failures(r, ["overflow"])
    # 70000 and -1e6 became inf in fp16: the SQNR is -inf, never "lossless" (issue 14)
    assert t["w"].verdicts[0].metrics.sqnr_db == -math.inf
    assert [f.split(" ")[0] for f in failures(r, ["sqnr<-1000"])] == ["w"]


def test_the_scan_reads_in_chunks_within_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_file({"big": torch.randn(1 << 20)}, str(tmp_path / "b.safetensors"))
    seen: list[int] = []
    real = scan_mod.iter_chunks

    def spy(ckpt, name, max_bytes, **kw):  # type: ignore[no-untyped-def]
        for part in real(ckpt, name, max_bytes, **kw):
            seen.append(part.numel() * 4)
            yield part

    monkeypatch.setattr(scan_mod, "iter_chunks", spy)
    budget = 1 << 20
    whole = scan_checkpoint(tmp_path / "b.safetensors", [get_format("fp8")])
    chunked = scan_checkpoint(tmp_path / "b.safetensors", [get_format("fp8")], memory_budget=budget)
    assert len(seen) > 8 and max(seen[1:]) <= budget // 8
    a, b = whole.tensors[0].verdicts[0].metrics, chunked.tensors[0].verdicts[0].metrics
    assert (a.overflow, a.underflow, a.subnormal) == (b.overflow, b.underflow, b.subnormal)
    assert b.sqnr_db == pytest.approx(a.sqnr_db, rel=1e-6)
    # F4 widens eightfold when decoded: its chunks are bounded as decoded, too
    raw = bytes(range(256)) * 4096  # 1 MiB: 2M fp4 values
    write_st(tmp_path / "f4.safetensors", {"q": entry("F4", [2 * len(raw)], 0, len(raw))}, raw)
    seen.clear()
    scan_checkpoint(tmp_path / "f4.safetensors", [get_format("fp8")], memory_budget=budget)
    assert len(seen) > 8 and max(seen) <= budget // 8


def test_scan_command_outputs_and_fail_on(tmp_path: Path) -> None:
    r = runner.invoke(app, ["model", "scan", "--to", "fp16,fp8", "--csv", str(tmp_path / "s.csv"),
                            "--markdown", str(tmp_path / "s.md")])  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert "per format" in r.stdout and "float8_e4m3fn" in r.stdout
    rows = (tmp_path / "s.csv").read_text().splitlines()
    assert rows[0].startswith("tensor,dtype,shape") and len(rows) == 1 + 103 * 2
    assert (tmp_path / "s.md").read_text().startswith("# dtlab scan")
    r = runner.invoke(app, ["model", "scan", "--to", "fp8", "--fail-on", "sqnr<20"])
    assert r.exit_code == 1 and "--fail-on: 6 verdicts" in r.stderr
    r = runner.invoke(app, ["model", "scan", "--to", "fp16", "--fail-on", "overflow,nan", "--json"])
    doc = json.loads(r.stdout)
    assert (
        r.exit_code == 0
        and doc["schema"] == "dtlab.scan/1"
        and doc["result"]["params"] == 22_713_728
    )
    r = runner.invoke(app, ["model", "scan", "--fail-on", "sometimes"])
    assert r.exit_code == 2 and "choose overflow, nan or sqnr<DB" in r.stderr


def test_memory_command_and_hostile_files(tmp_path: Path) -> None:
    r = runner.invoke(app, ["model", "memory", "--json"])
    doc = json.loads(r.stdout)
    assert doc["schema"] == "dtlab.memory/1" and doc["result"]["total_params"] == 22_713_728
    r = runner.invoke(app, ["model", "memory"])
    assert r.exit_code == 0 and "int4:g128" in r.stdout and "no activations" in r.stdout
    (tmp_path / "bad.safetensors").write_bytes((10**9).to_bytes(8, "little") + b"{}")
    for cmd in ("memory", "scan"):
        r = runner.invoke(app, ["model", cmd, str(tmp_path / "bad.safetensors")])
        assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    (tmp_path / "w.bin").write_bytes(b"not really a pickle")
    r = runner.invoke(app, ["model", "scan", str(tmp_path / "w.bin")])
    assert r.exit_code == 2 and "pickle" in r.stderr


def test_scan_plots_a_chosen_tensor(tmp_path: Path) -> None:
    out = tmp_path / "w.png"
    name = "encoder.layer.0.output.dense.weight"
    r = runner.invoke(
        app, ["model", "scan", "--to", "fp8", "--plot-tensor", name, "--plot", str(out)]
    )
    assert r.exit_code == 0, r.stderr
    assert out.read_bytes()[:4] == b"\x89PNG"
    r = runner.invoke(app, ["model", "scan", "--plot", str(out)])
    assert r.exit_code == 2 and "go together" in r.stderr
    r = runner.invoke(app, ["model", "scan", "--plot-tensor", "nope", "--plot", str(out)])
    assert r.exit_code == 2 and "nope" in r.stderr


def test_summary_sqnr_adds_up_every_tensor(tmp_path: Path) -> None:
    # "exact" is representable in bf16: no noise, but its signal still counts
    g = torch.Generator().manual_seed(2)
    exact = torch.randn(256, 64, generator=g).bfloat16().float() * 128
    lossy = torch.randn(128, 64, generator=g)
    save_file({"exact": exact, "lossy": lossy}, str(tmp_path / "m.safetensors"))
    r = scan_checkpoint(tmp_path / "m.safetensors", [get_format("bf16")])
    xd, ld = exact.double(), lossy.double()
    noise = float(((lossy.bfloat16().double() - ld) ** 2).sum())
    want = 10 * math.log10(float((xd**2).sum() + (ld**2).sum()) / noise)
    assert r.summaries[0].mean_sqnr_db == pytest.approx(want, rel=1e-6)
    t = {x.name: x.verdicts[0] for x in r.tensors}
    assert t["exact"].noise == 0 and t["exact"].signal == pytest.approx(float((xd**2).sum()))
