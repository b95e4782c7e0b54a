"""Pre-quantized safetensors checkpoints (GPTQ, AWQ, bitsandbytes, FP8 with scales, MXFP4):
their layout recognised from headers and config (``layout``, no torch), and their weights
dequantized as their libraries do (``dequant``, torch). See docs/prequantized.md."""

from dtlab.checkpoint.prequant.layout import (
    Family,
    Layout,
    PackedWeight,
    PrequantSummary,
    Scheme,
    layout_of,
    logical_entries,
    logical_entry,
    logical_summary,
    recognise,
)

__all__ = [
    "Family",
    "Layout",
    "PackedWeight",
    "PrequantSummary",
    "Scheme",
    "layout_of",
    "logical_entries",
    "logical_entry",
    "logical_summary",
    "recognise",
]
