"""dtlab model scan --dask: the scan on a dask.distributed LocalCluster of 2 processes gives the
single-process report bit for bit (timings and the worker count aside)."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

import dtlab.checkpoint.distributed as dist_mod
from dtlab.checkpoint import open_checkpoint
from dtlab.checkpoint.scan import Progress, scan_checkpoint
from dtlab.cli.app import app
from dtlab.formats import get_format
from dtlab.render.jsonable import dumps
from hostile import entry, write_st

distributed = pytest.importorskip("distributed")
runner = CliRunner()
BUDGET = 1 << 20  # 128 KiB chunks: 32,768 float32 values each


@pytest.fixture(autouse=True)
def _small_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dist_mod, "TASK_CHUNKS", 3)  # the plan is made on the client


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    ) as c:  # fmt: skip
        yield c.scheduler_address


def _same(a: Any, b: Any) -> None:
    ja, jb = (json.loads(dumps("dtlab.scan/1", r))["result"] for r in (a, b))
    for j in (ja, jb):
        j.pop("seconds")
        j.pop("workers")
    assert ja == jb


def _multi_shard(folder: Path) -> Path:
    folder.mkdir()
    g = torch.Generator().manual_seed(1)
    weight_map: dict[str, str] = {}
    for s in range(3):
        big = torch.randn(256, 640, generator=g) * 0.05  # 5 chunks: 2 tasks of TASK_CHUNKS
        big.view(-1)[::50_000] = 70_000.0
        big[3, 3] = math.nan if s == 1 else big[3, 3]
        tensors = {
            f"l{s}.big": big,
            f"l{s}.w": (torch.randn(96, 64, generator=g) * 3).bfloat16(),
            f"l{s}.h": torch.randn(300, generator=g).half(),
            f"l{s}.ids": torch.arange(10),
            f"l{s}.empty": torch.zeros(0, 4),
        }
        name = f"model-{s + 1:05d}-of-00003.safetensors"
        save_file(tensors, str(folder / name))
        weight_map.update(dict.fromkeys(tensors, name))
    index = {"metadata": {}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return folder


def test_a_multi_shard_scan_on_dask_is_the_single_process_scan(
    cluster: str, tmp_path: Path
) -> None:
    folder = _multi_shard(tmp_path / "m")
    ckpt = open_checkpoint(folder)
    tasks = dist_mod.plan(ckpt, ckpt.stored, (get_format("fp16"),), BUDGET // 8)
    assert sum(1 for t in tasks if t[0].part is not None) == 6  # each big tensor in 2 tasks
    assert len([t for t in tasks if t[0].part is None]) == 3  # one task per shard
    seen: list[Progress] = []
    one = scan_checkpoint(folder, memory_budget=BUDGET)
    on_dask = scan_checkpoint(folder, memory_budget=BUDGET, dask=cluster, progress=seen.append)
    _same(one, on_dask)
    assert on_dask.workers == 2 and (one.summaries[0].overflowing, one.summaries[0].nan) == (2, 1)
    assert [p.tensors_done for p in seen] == list(range(1, len(ckpt.stored) + 1))
    assert seen[-1].bytes_done == seen[-1].bytes_total == one.stored_bytes


def _corpus(root: Path) -> list[tuple[Path, bool]]:
    """The valid checkpoints the reader and scan tests use: every dtype and shape in one
    file, F4/F6 sub-byte tensors, tied entries, a pickle (with allow_pickle)."""
    from test_checkpoint_reader import DTYPES, SHAPES, _tensor

    root.mkdir()
    tensors = {
        f"t{i}.{str(dt)[6:]}.{'x'.join(map(str, sh)) or 'scalar'}": _tensor(dt, sh, i)
        for i, (dt, sh) in enumerate((dt, s) for dt in DTYPES for s in SHAPES)
    }
    save_file(tensors, str(root / "small.safetensors"))
    sub = {"f4": entry("F4", [2, 8], 0, 8), "f6": entry("F6_E2M3", [4, 4], 8, 20)}
    write_st(root / "sub.safetensors", sub, bytes(range(7, 27)))
    tied = {"a": entry("F32", [4], 0, 16), "b": entry("F32", [4], 0, 16)}
    write_st(root / "tied.safetensors", tied, torch.randn(4).numpy().tobytes())
    torch.save({"w": torch.randn(40, 30), "v": torch.randn(7).half()}, root / "w.pt")
    return [
        (root / "small.safetensors", False),
        (root / "sub.safetensors", False),
        (root / "tied.safetensors", False),
        (root / "w.pt", True),
    ]


def test_the_corpus_scans_the_same_on_dask(cluster: str, tmp_path: Path) -> None:
    for path, pickle in _corpus(tmp_path / "corpus"):
        one = scan_checkpoint(path, memory_budget=BUDGET, allow_pickle=pickle)
        _same(one, scan_checkpoint(path, memory_budget=BUDGET, allow_pickle=pickle, dask=cluster))


def test_the_cli_scan_on_dask(cluster: str, tmp_path: Path) -> None:
    folder = _multi_shard(tmp_path / "m")
    args = ["model", "scan", str(folder), "--memory-budget", "1", "--json"]
    one, on_dask = runner.invoke(app, args), runner.invoke(app, [*args, "--dask", cluster])
    assert one.exit_code == on_dask.exit_code == 0, on_dask.output
    a, b = json.loads(one.stdout)["result"], json.loads(on_dask.stdout)["result"]
    assert (a.pop("seconds"), b.pop("seconds")) and (a.pop("workers"), b.pop("workers")) == (1, 2)
    assert a == b


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--dask", "local:x"], "write local:N with N >= 1"),
        (["--dask", "local:2", "--workers", "2"], "--workers and --dask: choose one"),
        (["--dask", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"),
    ],
)
def test_bad_dask_options_are_one_line(
    args: list[str], expect: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dist_mod, "CONNECT_TIMEOUT", "1s")
    r = runner.invoke(app, ["model", "scan", "--to", "fp16", *args])
    assert r.exit_code == 2 and expect in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_without_dask_installed_the_error_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    r = runner.invoke(app, ["model", "scan", "--to", "fp16", "--dask", "local:1"])
    assert r.exit_code == 2 and "pip install 'dtlab[dask]'" in r.stderr


def test_quantizer_targets_and_packed_weights_on_dask_are_the_single_process_scan(
    cluster: str, tmp_path: Path
) -> None:
    # quantizers and packed weights go as whole tensors: the plan splits casts only
    import prequant_packers as pk
    from dtlab.formats.quantizer_spec import parse_target

    targets = [parse_target(t) for t in ("fp16", "int4:g32", "int8", "mxfp4")]
    folder = _multi_shard(tmp_path / "m")
    ckpt = open_checkpoint(folder)
    assert all(
        t[0].part is None for t in dist_mod.plan(ckpt, ckpt.stored, tuple(targets), BUDGET // 8)
    )
    one = scan_checkpoint(folder, targets, memory_budget=BUDGET)
    _same(one, scan_checkpoint(folder, targets, memory_budget=BUDGET, dask=cluster))
    gptq, _ = pk.gptq_checkpoint(tmp_path / "gptq")
    one = scan_checkpoint(gptq, targets)
    assert any(t.stored_as for t in one.tensors)
    _same(one, scan_checkpoint(gptq, targets, dask=cluster))
