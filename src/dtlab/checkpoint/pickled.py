"""Pickled checkpoints (torch.save output), opened only when the caller allows it.

Unpickling runs whatever callables the file names, so a pickle is refused unless the caller
passes ``allow_pickle=True``; even then it goes through ``torch.load(weights_only=True,
mmap=True)``, whose unpickler admits tensors, containers and plain values only, and maps the
storages instead of reading them. A file in torch's legacy (pre-zip) format cannot be mapped,
so it is read into memory by the same restricted unpickler.

When that unpickler refuses a file, the message says so in one line and gives torch's reason
(an unsupported global, an opcode), never torch's advice to turn ``weights_only`` off.
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from dtlab.checkpoint.header import DTYPES, CheckpointError, TensorEntry, show
from dtlab.formats import TORCH_NAMES


def _torch_dtypes() -> dict[str, torch.dtype]:
    out: dict[str, torch.dtype] = {"BOOL": torch.bool, "C64": torch.complex64}
    for st, info in DTYPES.items():
        attr = TORCH_NAMES.get(info.format_name or "")
        native = getattr(torch, attr, None) if attr else None
        if isinstance(native, torch.dtype):
            out[st] = native
    return out


# the torch dtype of each safetensors dtype string that torch has (the reader's too)
TORCH_DTYPES = _torch_dtypes()
_TORCH_TO_ST = {dt: st for st, dt in TORCH_DTYPES.items()}


def load_pickle(
    path: Path,
) -> tuple[tuple[TensorEntry, ...], tuple[tuple[str, ...], ...], dict[str, torch.Tensor]]:
    """Entries, tied groups and the (memory-mapped) tensors of a torch.save file."""
    where = show(path)
    _check_declared_sizes(path)
    try:
        obj = _load(path)
    except Exception as exc:  # UnpicklingError, RuntimeError (not a zip file), OSError, ...
        raise CheckpointError(
            f"{where}: could not be loaded safely: torch.load(weights_only=True) refused it "
            f"({_reason(exc)})"
        ) from None
    tensors: dict[str, torch.Tensor] = {}
    _flatten(obj, "", tensors)
    if not tensors:
        raise CheckpointError(f"{where}: the pickle holds no tensors")
    entries = tuple(_entry(path, name, t) for name, t in tensors.items())
    return entries, _tied(tensors), tensors


def _check_declared_sizes(path: Path) -> None:
    """Refuse, before loading, a zip-format file whose entries would inflate: torch.save
    stores every entry uncompressed, so a compressed entry, or declared sizes beyond the
    file's own, mark a bomb (1 MB that inflates to 1 GiB). Legacy (pre-zip) files are read
    unmapped, and bounded by the file's size alone."""
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(f"{show(path)}: not a readable torch.save archive ({exc})") from None
    packed = [i.filename for i in infos if i.compress_type != zipfile.ZIP_STORED]
    if packed:
        raise CheckpointError(
            f"{show(path)}: {len(packed)} compressed entries (first {packed[0]!r}); torch.save "
            "writes none, and their inflated size is not bounded: refusing to load it"
        )
    declared, size = sum(i.file_size for i in infos), path.stat().st_size
    if declared > size:
        raise CheckpointError(
            f"{show(path)}: its entries declare {declared:,} bytes in a {size:,}-byte file"
        )


def _load(path: Path) -> object:
    with warnings.catch_warnings():
        # torch warns, on stderr, of pickle protocols it did not write; the load is no less
        # restricted, and a one-line error must stay one line
        warnings.simplefilter("ignore")
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap can only be used" not in str(exc):
                raise
        return torch.load(path, map_location="cpu", weights_only=True)  # legacy format


# the parts of torch's weights_only message that advise loading the file unrestricted
_ADVICE = ("Weights only load failed", "weights_only", "Please", "Check the documentation")


def _reason(exc: Exception) -> str:
    """Why torch refused: the line after "WeightsUnpickler error:", without torch's advice."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if "error:" in line:
            rest = line.split("error:", 1)[1].strip() or " ".join(lines[i + 1 : i + 2])
            reason = rest.split(". Please")[0].strip()
            if reason:
                return reason[:200]
    plain = [ln for ln in lines if not ln.startswith(_ADVICE)]
    return plain[0][:200] if plain else type(exc).__name__


def _flatten(obj: object, prefix: str, out: dict[str, torch.Tensor]) -> None:
    if isinstance(obj, torch.Tensor):
        out[prefix or "tensor"] = obj
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), out)
    # other values (epoch counters, optimizer hyper-parameters, lists) hold no weights


def _entry(path: Path, name: str, t: torch.Tensor) -> TensorEntry:
    st = _TORCH_TO_ST.get(t.dtype)
    if t.layout != torch.strided:  # sparse, quantized: not an array of values
        kind = str(t.layout).removeprefix("torch.")
        raise CheckpointError(f"{show(path)}: tensor {name!r} is {kind}; dtlab reads dense tensors")
    if st is None:
        raise CheckpointError(f"{show(path)}: tensor {name!r} of {t.dtype} is not one dtlab reads")
    shape = tuple(t.shape)
    if st == "F4":  # float4_e2m1fn_x2 holds pairs; safetensors counts values
        shape = (*shape[:-1], 2 * shape[-1]) if shape else (2,)
    return TensorEntry(
        name=name, dtype=st, shape=shape, file=path, data_offsets=None, data_start=None
    )


def _tied(tensors: dict[str, torch.Tensor]) -> tuple[tuple[str, ...], ...]:
    groups: dict[tuple[object, ...], list[str]] = {}
    for name, t in tensors.items():
        if t.numel() == 0:
            continue
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), t.shape, t.stride(), t.dtype)
        groups.setdefault(key, []).append(name)
    return tuple(tuple(g) for g in groups.values() if len(g) > 1)
