"""Checkpoints: safetensors headers read strictly, tensors streamed from a memory map, and
memory tables computed from headers alone."""

from typing import TYPE_CHECKING

from dtlab.checkpoint.files import CheckpointKind, embedded_model
from dtlab.checkpoint.handle import Checkpoint, open_checkpoint
from dtlab.checkpoint.header import CheckpointError, TensorEntry
from dtlab.checkpoint.hub import HubRef, open_hub_checkpoint, open_named, parse_hub_ref
from dtlab.checkpoint.memory import (
    DEFAULT_PATTERNS,
    DEFAULT_TARGETS,
    MemoryTable,
    TargetTotal,
    TensorMemory,
    describe_target,
    memory_table,
)

if TYPE_CHECKING:
    from dtlab.checkpoint.reader import iter_chunks, read_tensor

# Reading tensor data needs torch: it loads on first use, so that header-only work stays fast.
_LAZY = {"iter_chunks": "dtlab.checkpoint.reader", "read_tensor": "dtlab.checkpoint.reader"}


def __getattr__(name: str) -> object:
    """``read_tensor`` and ``iter_chunks``, imported on first access (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dtlab.checkpoint' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "DEFAULT_PATTERNS",
    "DEFAULT_TARGETS",
    "Checkpoint",
    "CheckpointError",
    "CheckpointKind",
    "HubRef",
    "MemoryTable",
    "TargetTotal",
    "TensorEntry",
    "TensorMemory",
    "describe_target",
    "embedded_model",
    "iter_chunks",
    "memory_table",
    "open_checkpoint",
    "open_hub_checkpoint",
    "open_named",
    "parse_hub_ref",
    "read_tensor",
]
