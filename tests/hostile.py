"""The hostile corpus: checkpoint files and folders built to break a reader, written at test
time into a temporary folder. Every case is tiny; each must be refused with a CheckpointError
whose one-line message names the file and contains ``expect``.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

GIB = 1 << 30


@dataclass(frozen=True)
class Case:
    name: str
    path: Path  # what open_checkpoint is given
    expect: str  # a fragment of the message
    blamed: str  # the file name the message must name
    allow_pickle: bool = False


def header_bytes(header: dict[str, Any] | bytes) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return raw + b" " * (-len(raw) % 8)


def write_st(
    path: Path, header: dict[str, Any] | bytes, data: bytes = b"", *, length: int | None = None
) -> Path:
    """A safetensors file: the 8-byte length (``length`` overrides it), header, data."""
    raw = header_bytes(header)
    n = len(raw) if length is None else length
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", n) + raw + data)
    return path


def entry(dtype: str, shape: list[Any], begin: int, end: int) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


class Evil:
    """Unpickling this creates ``marker``: proof that a pickle ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def _files(root: Path) -> list[Case]:
    good = {"a": entry("F32", [2], 0, 8)}
    cases: list[Case] = []

    def add(name: str, expect: str, header: dict[str, Any] | bytes, data: bytes = b"",
            length: int | None = None) -> None:  # fmt: skip
        path = write_st(root / f"{name}.safetensors", header, data, length=length)
        cases.append(Case(name, path, expect, path.name))

    def raw(name: str, expect: str, content: bytes) -> None:
        path = root / f"{name}.safetensors"
        path.write_bytes(content)
        cases.append(Case(name, path, expect, path.name))

    raw("empty", "shorter than the 8-byte length", b"")
    raw("truncated_length", "shorter than the 8-byte length", b"\x10\x00\x00")
    raw("truncated_header", "a header of 64 bytes claimed", struct.pack("<Q", 64) + b'{"a":')
    add("header_longer_than_file", "a header of 4096 bytes claimed", good, bytes(8), 4096)
    add("gigabyte_header", f"a header of {GIB} bytes claimed", good, bytes(8), GIB)
    add("max_u64_header", f"a header of {2**64 - 1} bytes claimed", good, bytes(8), 2**64 - 1)
    add("invalid_utf8", "not valid UTF-8", b'{"\xff\xfe": 1}')
    add("invalid_json", "not valid JSON", b'{"a": {"dtype": "F32",')
    add("not_an_object", "does not start with '{'", b"[1, 2, 3]")
    add("leading_space", "does not start with '{'", b' {"a": 1}')
    add("duplicate_tensor", "duplicate key 'a'",
        b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
        b'"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', bytes(8))  # fmt: skip
    add("duplicate_field", "duplicate key 'dtype'",
        b'{"a": {"dtype": "F32", "dtype": "F16", "shape": [2], "data_offsets": [0, 8]}}',
        bytes(8))  # fmt: skip
    add("nan_literal", "not valid JSON",
        b'{"a": {"dtype": "F32", "shape": [NaN], "data_offsets": [0, 8]}}', bytes(8))  # fmt: skip
    add("deep_nesting", "nests too deeply", b'{"a": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")
    add("huge_integer", "not valid JSON",
        b'{"a": {"dtype": "F32", "shape": [' + b"9" * 5000 + b'], "data_offsets": [0, 8]}}',
        bytes(8))  # fmt: skip
    add("entry_not_object", "is described by a list", {"a": [1, 2]})
    add("entry_lacks_dtype", "lacks dtype", {"a": {"shape": [2], "data_offsets": [0, 8]}}, bytes(8))
    add("unknown_dtype", "unknown dtype 'F7'", {"a": entry("F7", [2], 0, 8)}, bytes(8))
    add("negative_shape", "dimensions are integers >= 0", {"a": entry("F32", [-2], 0, 8)}, bytes(8))
    add("float_shape", "dimensions are integers >= 0", {"a": entry("F32", [2.0], 0, 8)}, bytes(8))
    add("bool_shape", "dimensions are integers >= 0", {"a": entry("F32", [True], 0, 4)}, bytes(4))
    add("shape_not_list", "not a list", {"a": entry("F32", 2, 0, 8)}, bytes(8))  # type: ignore[arg-type]
    add("rank_65", "at most 64", {"a": entry("F32", [1] * 65, 0, 4)}, bytes(4))
    add("out_of_bounds", "ends at byte 64 of a 8-byte", {"a": entry("U8", [64], 0, 64)}, bytes(8))
    add("overlap", "overlap",
        {"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}, bytes(12))  # fmt: skip
    add("hole", "bytes [8, 12) before 'b' are no tensor's",
        {"a": entry("F32", [2], 0, 8), "b": entry("F32", [1], 12, 16)}, bytes(16))  # fmt: skip
    add("hole_at_start", "bytes [0, 4) before 'a'", {"a": entry("F32", [1], 4, 8)}, bytes(8))
    add("trailing_bytes", "last 4 bytes of the data area", good, bytes(12))
    add("reversed_offsets", "not [begin, end]", {"a": entry("F32", [2], 8, 0)}, bytes(8))
    add("offsets_floats", "not [begin, end]", {"a": entry("F32", [2], 0.0, 8)}, bytes(8))  # type: ignore[arg-type]
    add("shape_vs_bytes", "needs 12 bytes, data_offsets span 8",
        {"a": entry("F32", [3], 0, 8)}, bytes(8))  # fmt: skip
    add("dtype_vs_bytes", "needs 8 bytes, data_offsets span 16",
        {"a": entry("F16", [4], 0, 16)}, bytes(16))  # fmt: skip
    add("f4_odd_count", "do not fill whole bytes", {"a": entry("F4", [3], 0, 2)}, bytes(2))
    add("f6_partial", "do not fill whole bytes", {"a": entry("F6_E2M3", [2], 0, 2)}, bytes(2))
    add("f4_unpacked_bytes", "needs 2 bytes, data_offsets span 4",
        {"a": entry("F4", [4], 0, 4)}, bytes(4))  # fmt: skip
    add("metadata_not_strings", "__metadata__ is not a map",
        {"__metadata__": {"format": 1}, **good}, bytes(8))  # fmt: skip
    add("metadata_list", "__metadata__ is not a map", {"__metadata__": ["pt"], **good}, bytes(8))
    add("tied_different_shapes", "share bytes [0, 8) with different dtypes or shapes",
        {"a": entry("F32", [2], 0, 8), "b": entry("F32", [1, 2], 0, 8)}, bytes(8))  # fmt: skip
    # a sparse file larger than the cap: refused before the header is read
    big = write_st(root / "over_cap.safetensors", good, length=150_000_000)
    with open(big, "r+b") as f:
        f.truncate(200_000_000)
    cases.append(Case("over_cap", big, "a header of 150000000 bytes claimed, over", big.name))
    return cases


def _index(folder: Path, weight_map: Any, raw: bytes | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.safetensors.index.json"
    if raw is None:
        raw = json.dumps({"metadata": {"total_size": 8}, "weight_map": weight_map}).encode()
    path.write_bytes(raw)
    return path


def _shard(folder: Path, name: str, tensors: list[str]) -> None:
    header = {t: entry("F32", [2], 8 * i, 8 * i + 8) for i, t in enumerate(tensors)}
    write_st(folder / name, header, bytes(8 * len(tensors)))


def _indexes(root: Path) -> list[Case]:
    cases: list[Case] = []
    idx = "model.safetensors.index.json"

    def add(name: str, expect: str, weight_map: Any, raw: bytes | None = None) -> Path:
        folder = root / name
        _index(folder, weight_map, raw)
        cases.append(Case(name, folder, expect, idx))
        return folder

    add("index_invalid_json", "not valid JSON", None, b'{"weight_map": {')
    add("index_no_weight_map", "no weight_map object", None, b'{"metadata": {}}')
    add("index_duplicate", "duplicate key 'a'", None,
        b'{"weight_map": {"a": "s1.safetensors", "a": "s2.safetensors"}}')  # fmt: skip
    add("index_non_string", "to a non-string", {"a": 3})
    outside = root / "outside"
    _shard(outside, "real.safetensors", ["a"])
    add("index_dotdot", "a path with '..'", {"a": "../outside/real.safetensors"})
    add("index_dotdot_inner", "a path with '..'", {"a": "sub/../../outside/real.safetensors"})
    add("index_absolute", "an absolute path", {"a": str(outside / "real.safetensors")})
    add("index_windows_absolute", "an absolute path", {"a": "C:\\models\\real.safetensors"})
    link = add("index_symlink_escape", "resolves outside the model folder",
               {"a": "evil.safetensors"})  # fmt: skip
    os.symlink(outside / "real.safetensors", link / "evil.safetensors")
    dirlink = add("index_dir_symlink_escape", "resolves outside the model folder",
                  {"a": "sub/real.safetensors"})  # fmt: skip
    os.symlink(outside, dirlink / "sub")
    add("index_missing_shard", "does not exist (missing shard)", {"a": "gone.safetensors"})
    two = add("index_tensor_in_two_shards", "tensor 'b' is in two shards",
              {"a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors"})  # fmt: skip
    _shard(two, "s1.safetensors", ["a", "b"])
    _shard(two, "s2.safetensors", ["b", "c"])
    absent = add("index_tensor_absent", "tensor 'z' is listed in 's1.safetensors'",
                 {"a": "s1.safetensors", "z": "s1.safetensors"})  # fmt: skip
    _shard(absent, "s1.safetensors", ["a"])
    unlisted = add("index_unlisted", "holds tensor 'b' that the index does not list",
                   {"a": "s1.safetensors"})  # fmt: skip
    _shard(unlisted, "s1.safetensors", ["a", "b"])
    bad = add("index_bad_shard", "a header of 64 bytes claimed", {"a": "s1.safetensors"})
    (bad / "s1.safetensors").write_bytes(struct.pack("<Q", 64) + b"{}")
    cases[-1] = Case("index_bad_shard", bad, "a header of 64 bytes claimed", "s1.safetensors")
    return cases


def _pickles(root: Path, marker: Path) -> list[Case]:
    folder = root / "pickles"
    folder.mkdir()
    zipped = folder / "evil_zip.pt"
    torch.save({"w": torch.zeros(2), "evil": Evil(marker)}, zipped)
    legacy = folder / "evil_legacy.bin"
    legacy.write_bytes(pickle.dumps({"evil": Evil(marker)}))
    hf = root / "pickle_folder"
    hf.mkdir()
    (hf / "pytorch_model.bin").write_bytes(legacy.read_bytes())
    refuse = "refusing to unpickle: a pickle can run arbitrary code"
    return [
        Case("pickle_zip_refused", zipped, refuse, zipped.name),
        Case("pickle_legacy_refused", legacy, refuse, legacy.name),
        Case("pickle_folder_refused", hf, refuse, "pytorch_model.bin"),
        Case("pickle_zip_weights_only", zipped, "Unsupported global", zipped.name, True),
        Case("pickle_legacy_weights_only", legacy, "refused it", legacy.name, True),
    ]


def _misc(root: Path) -> list[Case]:
    empty = root / "empty_folder"
    empty.mkdir()
    odd = root / "weights.txt"
    odd.write_text("not a checkpoint")
    return [
        Case("empty_folder", empty, "no model.safetensors", "empty_folder"),
        Case("unknown_suffix", odd, "not a checkpoint dtlab reads", odd.name),
        Case("no_such_path", root / "nowhere", "no such file or folder", "nowhere"),
    ]


def write_corpus(root: Path, marker: Path) -> list[Case]:
    """Write every hostile case under ``root``; unpickling any of them would create marker."""
    root.mkdir(parents=True, exist_ok=True)
    return _files(root) + _indexes(root) + _pickles(root, marker) + _misc(root)
