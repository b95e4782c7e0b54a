"""The defaults a user meets, in one place: the library's functions and the CLI's options both
read them here, so ``--help`` never drifts from what a call does. Plain data, no torch.

>>> ",".join(MEMORY_TARGETS)
'fp32,bf16,fp16,fp8,int8,int4:g128,nf4,mxfp4'
"""

from __future__ import annotations

__all__ = [
    "CAST_FORMATS",
    "DOT_ACCUMULATE",
    "DOT_FORMATS",
    "DOT_SOURCE",
    "INT_FORMAT",
    "MEMORY_TARGETS",
    "QUANTIZERS",
    "SCAN_BUDGET_BYTES",
    "SCAN_FORMATS",
    "SCAN_SQNR_DB",
    "SHOW_FORMATS",
    "joined",
]

SHOW_FORMATS = ("fp32", "fp16", "bf16", "fp8")  # dtlab show --as
CAST_FORMATS = ("bf16", "fp16", "fp8")  # dtlab cast --as
DOT_FORMATS = ("fp32", "bf16", "fp16", "fp8")  # dtlab dot --as
DOT_ACCUMULATE = ("float32",)  # dtlab dot --accumulate
DOT_SOURCE = "uniform:1000"  # dtlab dot's vector when none is given
INT_FORMAT = "int8"  # dtlab int add/sub/mul --as
QUANTIZERS = ("int8", "int8:channel", "int4:g128", "mxfp4", "nvfp4", "nf4")  # quantize --as
MEMORY_TARGETS = ("fp32", "bf16", "fp16", "fp8", "int8", "int4:g128", "nf4", "mxfp4")
SCAN_FORMATS = ("fp16", "bf16", "fp8")  # dtlab model scan --to
SCAN_SQNR_DB = 20.0  # below this, a tensor "loses too much" in a format
SCAN_BUDGET_BYTES = 512 << 20  # bytes a scan may hold above its baseline, per worker


def joined(values: tuple[str, ...]) -> str:
    """A default list as a comma-separated option string."""
    return ",".join(values)
