"""One tensor loader: dtlab cast, quantize and dot read files through dtlab.checkpoint, so they
get its strict headers, shards, model folders, F4/F6 decoding and pickle refusal.

The CLI tests run the real command and check what a person reads: exit status 2, one line on
stderr, no traceback."""

import json
import pickle
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from dtlab.checkpoint import open_checkpoint
from dtlab.checkpoint.handle import PickleRefused
from dtlab.cli.app import app
from dtlab.errors import DtlabError
from dtlab.inputs import InputError, load_tensor, split_source
from hostile import Evil, entry, write_st

runner = CliRunner()
E2M1 = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]  # OCP MX v1.0, Table 5: FP4 E2M1 magnitudes
REFUSAL_CLI = (
    "refusing to unpickle: a pickle can run arbitrary code when loaded. Convert it to "
    "safetensors, or pass --allow-pickle to load it with torch.load(weights_only=True)"
)


def run(*args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


def refused(args: list[str], fragment: str) -> str:
    code, _, err = run(*args)
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert fragment in err, err
    return err


def cast_json(*args: str) -> Any:
    """The result of ``dtlab cast ... --json``."""
    code, out, err = run("cast", *args, "--json")
    assert code == 0, err
    return json.loads(out)["result"]


def sharded(folder: Path) -> dict[str, torch.Tensor]:
    """A 2-shard checkpoint in Hugging Face's layout, with its index."""
    g = torch.Generator().manual_seed(0)
    tensors = {
        "model.embed.weight": torch.randn(6, 4, generator=g),
        "model.layers.0.mlp.down_proj.weight": torch.randn(4, 8, generator=g) * 100,
        "lm_head.weight": torch.randn(6, 4, generator=g),
    }
    shards = {
        "model-00001-of-00002.safetensors": ["model.embed.weight"],
        "model-00002-of-00002.safetensors": [
            "model.layers.0.mlp.down_proj.weight",
            "lm_head.weight",
        ],
    }
    folder.mkdir()
    weight_map = {}
    for file, names in shards.items():
        save_file({n: tensors[n] for n in names}, str(folder / file))
        weight_map.update(dict.fromkeys(names, file))
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return tensors


# ---- where NAME starts ----------------------------------------------------------------------


def test_names_keep_dots_and_colons_and_paths_keep_colons(tmp_path: Path) -> None:
    folder = tmp_path / "run:1"
    folder.mkdir()
    (tmp_path / "run").mkdir()  # the longest existing path wins, not the first
    x = torch.arange(6.0)
    save_file({"a.b:c": x, "a": x * 2}, str(folder / "m.safetensors"))
    path = folder / "m.safetensors"
    assert split_source(f"{path}:a.b:c") == (path, "a.b:c")
    assert split_source(str(path)) == (path, None)
    assert split_source(f"{folder}:a") == (folder, "a")  # a model folder, tensor 'a'
    assert torch.equal(load_tensor(f"{path}:a.b:c").tensor, x)
    assert torch.equal(load_tensor(f"{folder}:a").tensor, x * 2)
    with pytest.raises(InputError, match=r"no tensor named 'b:c'; similar: a\.b:c"):
        load_tensor(f"{path}:b:c")


def test_no_name_and_one_tensor_is_that_tensor(tmp_path: Path) -> None:
    save_file({"only.weight": torch.ones(3)}, str(tmp_path / "one.safetensors"))
    loaded = load_tensor(str(tmp_path / "one.safetensors"))
    assert loaded.name == "only.weight" and torch.equal(loaded.tensor, torch.ones(3))


def test_several_tensors_and_no_name_list_some(tmp_path: Path) -> None:
    tensors = sharded(tmp_path / "m")
    err = refused(
        ["cast", str(tmp_path / "m"), "--as", "fp8"], "holds 3 tensors; name one as m:NAME"
    )
    assert all(n in err for n in tensors)
    refused(
        ["cast", f"{tmp_path / 'm'}:lm_head", "--as", "fp8"],
        "no tensor named 'lm_head'; similar: lm_head.weight",
    )


# ---- shards, indexes, F4 --------------------------------------------------------------------


def test_cast_reads_a_tensor_of_a_sharded_folder(tmp_path: Path) -> None:
    tensors = sharded(tmp_path / "m")
    name = "model.layers.0.mlp.down_proj.weight"
    out = tmp_path / "w.npy"
    for source in (
        f"{tmp_path / 'm'}:{name}",
        f"{tmp_path / 'm/model.safetensors.index.json'}:{name}",
    ):
        doc = cast_json(source, "--as", "fp32", "-o", str(out))
        assert doc["name"] == name and doc["shape"] == [4, 8]
        assert np.array_equal(np.load(out), tensors[name].numpy())
    code, text, _ = run("quantize", f"{tmp_path / 'm'}:{name}", "--as", "int8")
    assert code == 0 and "int8" in text
    code, text, _ = run("dot", f"{tmp_path / 'm'}:lm_head.weight", "--as", "bf16")
    assert code == 0 and "bfloat16" in text


def test_a_broken_index_is_refused_by_cast(tmp_path: Path) -> None:
    sharded(tmp_path / "m")
    index = tmp_path / "m/model.safetensors.index.json"
    doc = json.loads(index.read_text())
    doc["weight_map"]["lm_head.weight"] = "../outside.safetensors"
    index.write_text(json.dumps(doc))
    refused(["cast", f"{tmp_path / 'm'}:lm_head.weight", "--as", "fp8"], "a path with '..'")


def test_cast_decodes_an_f4_tensor(tmp_path: Path) -> None:
    codes = list(range(16))  # every E2M1 code; element 0 in the low nibble (torch x2 order)
    packed = bytes(lo | hi << 4 for lo, hi in zip(codes[::2], codes[1::2], strict=True))
    path = write_st(tmp_path / "q.safetensors", {"w.q": entry("F4", [2, 8], 0, 8)}, packed)
    assert load_tensor(f"{path}:w.q").tensor.reshape(-1).tolist() == E2M1 + [-v for v in E2M1]
    out = tmp_path / "q8.npy"
    doc = cast_json(f"{path}:w.q", "--as", "fp8", "-o", str(out))
    assert doc["shape"] == [2, 8] and doc["analysis"]["input"]["absmax"] == 6.0
    metrics = doc["analysis"]["results"][0]["metrics"]
    assert metrics["n"] == 16 and metrics["max_abs_error"] == 0.0  # E2M1 values fit in E4M3
    assert np.load(out).reshape(-1).tolist() == E2M1 + [-v for v in E2M1]


# ---- strict headers -------------------------------------------------------------------------


def _f32(values: list[float]) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


@pytest.mark.parametrize(
    ("raw", "data", "message"),
    [
        # duplicate keys: serde (safe_open) keeps the last one, dtlab refuses
        (
            b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
            b'"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
            _f32([1.0, 2.0]),
            "duplicate key 'w' in the header",
        ),
        # NaN is not JSON
        (
            b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"x":NaN}',
            _f32([1.0]),
            "not valid JSON",
        ),
        # an offset past the end of the data area
        (
            json.dumps({"w": entry("F32", [2], 0, 8)}).encode(),
            _f32([1.0]),
            "ends at byte 8 of a 4-byte data area",
        ),
    ],
)
def test_cast_refuses_a_corrupt_header(
    tmp_path: Path, raw: bytes, data: bytes, message: str
) -> None:
    path = write_st(tmp_path / "bad.safetensors", raw, data)
    err = refused(["cast", f"{path}:w", "--as", "fp8"], message)
    assert "bad.safetensors: not a readable safetensors file (" in err


def test_safe_open_alone_reads_the_duplicate_key_file(tmp_path: Path) -> None:
    """The strictness above is dtlab's: the official reader takes the last duplicate."""
    from safetensors import safe_open

    raw = (
        b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
        b'"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    )
    path = write_st(tmp_path / "dup.safetensors", raw, _f32([1.0, 2.0]))
    with safe_open(str(path), framework="pt") as f:
        assert f.get_tensor("w").tolist() == [1.0, 2.0]


# ---- pickles --------------------------------------------------------------------------------


def _evil_pickles(tmp_path: Path, marker: Path) -> list[Path]:
    zipped, legacy = tmp_path / "evil.pt", tmp_path / "evil_legacy.pth"
    torch.save({"w": Evil(marker)}, zipped)
    legacy.write_bytes(pickle.dumps({"w": Evil(marker)}))
    return [zipped, legacy]


@pytest.mark.parametrize("command", ["cast", "quantize", "dot"])
def test_pickles_are_refused_without_unpickling(tmp_path: Path, command: str) -> None:
    marker = tmp_path / "MARKER_pickle_ran_code"
    for path in _evil_pickles(tmp_path, marker):
        err = refused(
            [command, str(path), "--as", "fp8" if command != "quantize" else "int8"], REFUSAL_CLI
        )
        assert err == f"error: {path}: {REFUSAL_CLI}\n"
        assert not marker.exists()


def test_allowed_pickles_are_still_read_weights_only(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER_pickle_ran_code"
    for path in _evil_pickles(tmp_path, marker):
        err = refused(
            ["cast", str(path), "--as", "fp8", "--allow-pickle"],
            "could not be loaded safely: torch.load(weights_only=True) refused it (",
        )
        assert "weights_only` set to `False" not in err and "Please" not in err
        assert not marker.exists()
    good = tmp_path / "good.pt"
    torch.save({"layer": {"w": torch.arange(4.0)}}, good)
    doc = cast_json(f"{good}:layer.w", "--as", "fp32", "--allow-pickle")
    assert doc["name"] == "layer.w" and doc["shape"] == [4]


def test_the_refusal_is_the_scans_and_the_library_names_no_flag(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER_pickle_ran_code"
    path = _evil_pickles(tmp_path, marker)[0]
    scan = refused(["model", "scan", str(path)], REFUSAL_CLI)
    cast = refused(["cast", str(path), "--as", "fp8"], REFUSAL_CLI)
    assert scan == cast
    with pytest.raises(PickleRefused) as caught:
        open_checkpoint(path)
    assert caught.value.option == "allow_pickle" and "--" not in str(caught.value)
    assert "pass allow_pickle=True to load it" in str(caught.value)
    with pytest.raises(DtlabError, match="pass allow_pickle=True"):
        load_tensor(str(path))
    assert not marker.exists()


def test_the_refusal_survives_a_real_process(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER_pickle_ran_code"
    path = _evil_pickles(tmp_path, marker)[0]
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "from dtlab.cli.app import main; main()",
            "cast",
            str(path),
            "--as",
            "fp8",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 2 and r.stderr == f"error: {path}: {REFUSAL_CLI}\n"
    assert not marker.exists()


# ---- what stays as it was -------------------------------------------------------------------


def test_npy_and_generated_sources_are_unchanged(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.arange(5, dtype=np.float32))
    assert load_tensor(str(tmp_path / "x.npy")).tensor.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(InputError, match="holds one array; drop :w"):
        load_tensor(f"{tmp_path / 'x.npy'}:w")
    np.save(tmp_path / "obj.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    refused(["cast", str(tmp_path / "obj.npy"), "--as", "fp8"], "not a readable .npy")
    (tmp_path / "normal").write_bytes(b"")  # a file named like a distribution: still generated
    assert load_tensor("normal:16").tensor.shape == (16,)


def test_unknown_files_name_the_pickle_flag_on_the_cli(tmp_path: Path) -> None:
    (tmp_path / "w.txt").write_text("1 2 3")
    with pytest.raises(InputError, match=r"or with allow_pickle \.pt") as caught:
        load_tensor(str(tmp_path / "w.txt"))
    assert "--" not in str(caught.value)
    refused(["cast", str(tmp_path / "w.txt"), "--as", "fp8"], "or with --allow-pickle .pt/.pth")


def test_help_shows_the_accepted_forms() -> None:
    for command in ("cast", "quantize", "dot"):
        code, text, _ = run(command, "--help")
        flat = " ".join(text.split())
        assert code == 0 and "--allow-pickle" in flat
        assert "DIR[:NAME]" in flat and "INDEX.json[:NAME]" in flat, command


def test_the_header_modules_import_no_torch_or_numpy() -> None:
    """Header-only work must not pay for torch: handle, files and header import neither at
    module level (pickles and tensor data import torch when they are read)."""
    import ast

    import dtlab.checkpoint.files
    import dtlab.checkpoint.handle
    import dtlab.checkpoint.header
    import dtlab.errors

    modules = (
        dtlab.checkpoint.handle,
        dtlab.checkpoint.files,
        dtlab.checkpoint.header,
        dtlab.errors,
    )
    for module in modules:
        tree = ast.parse(Path(str(module.__file__)).read_text())
        for node in tree.body:
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            heavy = [n for n in names if n.split(".")[0] in ("torch", "numpy", "safetensors")]
            assert not heavy, (module.__name__, heavy)


def test_a_sparse_pickled_tensor_is_named_as_sparse(tmp_path: Path) -> None:
    path = tmp_path / "s.pt"
    torch.save({"w": torch.eye(3).to_sparse()}, path)
    r = CliRunner().invoke(app, ["cast", f"{path}:w", "--as", "fp8", "--allow-pickle"])
    assert r.exit_code == 2
    assert r.stderr.strip().endswith("tensor 'w' is sparse_coo; dtlab reads dense tensors")
