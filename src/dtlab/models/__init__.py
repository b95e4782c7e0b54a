"""Models in several formats: loading, outputs compared, activations scanned.

Torch and transformers load lazily, inside the functions that need them.
"""

from __future__ import annotations

from dtlab.models.compare import CompareReport, FormatRun, MemoryUse, compare_model
from dtlab.models.sources import ModelKind, ModelSource, resolve_model

__all__ = [
    "CompareReport",
    "FormatRun",
    "MemoryUse",
    "ModelKind",
    "ModelSource",
    "compare_model",
    "resolve_model",
]
