"""Checkpoints: safetensors headers read strictly, tensors streamed from a memory map, and
memory tables computed from headers alone."""

from dtlab.checkpoint.header import CheckpointError, TensorEntry
from dtlab.checkpoint.layout import CheckpointKind
from dtlab.checkpoint.memory import (
    DEFAULT_PATTERNS,
    DEFAULT_TARGETS,
    Layout,
    MemoryTable,
    MemoryTarget,
    TargetTotal,
    TensorMemory,
    memory_table,
    parse_target,
)
from dtlab.checkpoint.reader import Checkpoint, iter_chunks, open_checkpoint, read_tensor

__all__ = [
    "DEFAULT_PATTERNS",
    "DEFAULT_TARGETS",
    "Checkpoint",
    "CheckpointError",
    "CheckpointKind",
    "Layout",
    "MemoryTable",
    "MemoryTarget",
    "TargetTotal",
    "TensorEntry",
    "TensorMemory",
    "iter_chunks",
    "memory_table",
    "open_checkpoint",
    "parse_target",
    "read_tensor",
]
