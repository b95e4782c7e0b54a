"""dtlab model memory ORG/NAME: the real huggingface_hub client against a Hub on 127.0.0.1
(tests/fakehub.py), reading headers only; hostile answers refused in one line."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from dtlab.checkpoint.hub import parse_hub_ref
from fakehub import SHA, FakeHub, Repo, serve
from hostile import entry, write_st

SHARDS = 3


def _shards(folder: Path) -> Path:
    folder.mkdir(parents=True)
    weight_map: dict[str, str] = {}
    g = torch.Generator().manual_seed(0)
    for i in range(SHARDS):
        name = f"model-{i + 1:05d}-of-{SHARDS:05d}.safetensors"
        tensors = {
            f"layers.{i}.mlp.weight": torch.randn(96, 256, generator=g).bfloat16(),
            f"layers.{i}.norm.weight": torch.ones(96),
            f"layers.{i}.attn.bias": torch.zeros(32).half(),
        }
        save_file(tensors, str(folder / name))
        weight_map.update(dict.fromkeys(tensors, name))
    index = {"metadata": {}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    (folder / "config.json").write_text('{"model_type": "test"}')
    return folder


def _hostile(root: Path) -> dict[str, Repo]:
    good = {"a": entry("F32", [2], 0, 8)}
    huge = write_st(root / "huge" / "model.safetensors", good, bytes(8), length=2**60)
    short = root / "truncated" / "model.safetensors"
    short.parent.mkdir(parents=True)
    short.write_bytes(struct.pack("<Q", 64) + b'{"a":')
    missing = root / "missing"
    write_st(missing / "a.safetensors", good, bytes(8))
    index = {"weight_map": {"a": "a.safetensors", "b": "b.safetensors"}}
    (missing / "model.safetensors.index.json").write_text(json.dumps(index))
    pickles = root / "pickles"
    pickles.mkdir()
    (pickles / "pytorch_model.bin").write_bytes(b"not read")
    return {
        "org/huge": Repo(huge.parent),
        "org/truncated": Repo(short.parent),
        "org/missing": Repo(missing),
        "org/pickles": Repo(pickles),
        "org/slow": Repo(huge.parent, delay=60),
    }


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeHub, Path]]:
    root = tmp_path_factory.mktemp("hub")
    model = _shards(root / "org" / "model")
    repos = {"org/model": Repo(model), "org/gated": Repo(model, gated_token="hf_open")}
    repos.update(_hostile(root / "hostile"))
    with serve(repos) as fake:
        yield fake, root


def hub_env(hub: FakeHub, cwd: Path, **env: str) -> dict[str, str]:
    """An environment that can reach nothing but the fake Hub: a dead proxy for every other
    address, no telemetry, a cache of its own, timeouts of 2 s."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    clean = {k: v for k, v in clean.items() if "proxy" not in k.lower()}
    clean.update(
        HF_ENDPOINT=hub.url,
        HF_HOME=str(cwd.parent / f"hf-home-{cwd.name}"),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_ETAG_TIMEOUT="2",
        HF_HUB_DOWNLOAD_TIMEOUT="2",
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        NO_PROXY="127.0.0.1",
        **env,
    )
    return clean


def run(hub: FakeHub, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process (HF_* settings are read at import)."""
    cmd = [sys.executable, "-c", "from dtlab.cli.app import main; main()", *args]
    return subprocess.run(
        cmd, cwd=cwd, env=hub_env(hub, cwd, **env), capture_output=True, text=True, timeout=60
    )


def _data_starts(folder: Path) -> dict[str, int]:
    out = {}
    for p in folder.glob("*.safetensors"):
        (n,) = struct.unpack("<Q", p.read_bytes()[:8])
        out[p.name] = 8 + n
    return out


def test_the_hub_table_is_the_local_table_byte_for_byte(
    hub: tuple[FakeHub, Path], tmp_path: Path
) -> None:
    fake, root = hub
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for flags in (["--json"], ["--to", "bf16,fp8,int4:g64,nvfp4"]):
        local = run(fake, root, "model", "memory", "org/model", *flags)  # root/org/model exists
        before = len(fake.served)
        remote = run(fake, elsewhere, "model", "memory", "org/model", *flags)
        assert local.returncode == remote.returncode == 0, remote.stderr
        assert local.stdout == remote.stdout
        assert "the local path (for the Hub model: hf://org/model)" in local.stderr
        assert f"no such local path; read from the Hub at {fake.url}" in remote.stderr
        assert len(fake.served) > before  # the second run did ask the Hub
    # headers only: no range served reaches a shard's data area
    starts = _data_starts(root / "org" / "model")
    shard_ranges = [(f, b, e) for r, f, b, e in fake.served if f in starts and r == "org/model"]
    assert {f for f, _, _ in shard_ranges} == set(starts)
    assert all(e <= starts[f] for f, _, e in shard_ranges), shard_ranges
    assert sum(e - b for _, b, e in shard_ranges) < 3 * 1024
    assert any(p.endswith("model.safetensors.index.json") for _, p in fake.requests)


def test_hf_prefix_reads_the_hub_even_beside_a_local_folder(hub: tuple[FakeHub, Path]) -> None:
    fake, root = hub
    r = run(fake, root, "model", "memory", f"hf://org/model@{SHA}", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["result"]["source"] == f"hf://org/model@{SHA}"
    assert "note" not in r.stderr


def test_memory_from_the_hub_imports_no_torch(hub: tuple[FakeHub, Path], tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "sys.argv = ['dtlab', 'model', 'memory', 'org/model', '--json']\n"
        "from dtlab.cli.app import main\n"
        "try:\n    main()\n"
        "except SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in ('torch', 'numpy') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=hub_env(hub[0], tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert '"schema": "dtlab.memory/1"' in done.stdout, done.stderr
    assert done.stdout.rstrip().endswith("LOADED []")


def test_a_gated_model_needs_the_token(hub: tuple[FakeHub, Path], tmp_path: Path) -> None:
    fake = hub[0]
    refused = run(fake, tmp_path, "model", "memory", "org/gated")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "org/gated: a gated model: accept its terms" in refused.stderr
    wrong = run(fake, tmp_path, "model", "memory", "org/gated", HF_TOKEN="hf_wrong")
    assert wrong.returncode == 2 and "a gated model" in wrong.stderr
    opened = run(fake, tmp_path, "model", "memory", "org/gated", "--json", HF_TOKEN="hf_open")
    assert opened.returncode == 0, opened.stderr
    assert "Bearer hf_open" in fake.tokens


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("org/absent", "org/absent: no such model on"),
        ("org/model@v9", "org/model: no revision 'v9'"),
        ("org/huge", f"model.safetensors: a header of {2**60} bytes claimed, over the"),
        ("org/truncated", "a header of 64 bytes claimed, but the file has 5 bytes"),
        ("org/missing", "to 'b.safetensors', which is not in the repository (missing shard)"),
        ("org/pickles", "pickle weights only (pytorch_model.bin)"),
        ("org/slow", "did not answer within 2 s"),
        ("hf://org", "not a Hub model name"),
    ],
)
def test_hostile_answers_are_one_line(
    hub: tuple[FakeHub, Path], tmp_path: Path, name: str, expect: str
) -> None:
    r = run(hub[0], tmp_path, "model", "memory", name)
    lines = [line for line in r.stderr.splitlines() if not line.startswith("note:")]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ") and expect in lines[0], lines
    assert "Traceback" not in r.stderr


def test_a_scan_of_a_hub_model_says_how_to_download_it(
    hub: tuple[FakeHub, Path], tmp_path: Path
) -> None:
    fake = hub[0]
    before = len(fake.requests)
    r = run(fake, tmp_path, "model", "scan", "org/model@v1")
    assert r.returncode == 2
    assert "a scan reads every weight, so download it first" in r.stderr
    assert "hf download org/model --revision v1 --local-dir DIR" in r.stderr
    assert len(fake.requests) == before  # nothing asked of the Hub


@pytest.mark.parametrize(
    ("text", "repo", "rev"),
    [
        ("org/name", "org/name", None),
        ("hf://org/name@v1.0", "org/name", "v1.0"),
        ("Org-1/na.me_2@refs/pr/3", "Org-1/na.me_2", "refs/pr/3"),
        ("./org/name", None, None),
        ("a/b/c", None, None),
        ("org/na--me", None, None),
        ("org/name@", None, None),
        ("/abs", None, None),
    ],
)
def test_hub_names(text: str, repo: str | None, rev: str | None) -> None:
    ref = parse_hub_ref(text)
    assert (ref.repo_id, ref.revision) == (repo, rev) if ref else repo is None


def test_a_shard_in_the_cache_is_read_there(hub: tuple[FakeHub, Path], tmp_path: Path) -> None:
    from huggingface_hub import hf_hub_download

    from dtlab.checkpoint import open_checkpoint, open_hub_checkpoint

    fake, root = hub
    cache = tmp_path / "cache"
    cached = "model-00002-of-00003.safetensors"
    hf_hub_download("org/model", cached, revision=SHA, cache_dir=cache, endpoint=fake.url)
    before = len(fake.served)
    ref = parse_hub_ref("org/model@main")
    assert ref is not None
    ckpt = open_hub_checkpoint(ref, endpoint=fake.url, cache_dir=cache, timeout=5)
    asked = {f for _, f, _, _ in fake.served[before:]}
    assert cached not in asked and "model-00001-of-00003.safetensors" in asked
    local = open_checkpoint(root / "org" / "model")
    assert [(e.name, e.shape, e.dtype) for e in ckpt.tensors] == [
        (e.name, e.shape, e.dtype) for e in local.tensors
    ]


def test_offline_mode_contacts_nothing(hub: tuple[FakeHub, Path], tmp_path: Path) -> None:
    fake = hub[0]
    before = len(fake.requests)
    r = run(fake, tmp_path, "model", "memory", "org/model", HF_HUB_OFFLINE="1")
    assert r.returncode == 2 and "HF_HUB_OFFLINE is set" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and len(fake.requests) == before
