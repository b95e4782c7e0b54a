"""Downcast and quantization analysis: error metrics, low-precision operations, integer and
block quantization."""

from dtlab.analysis.blockquant import block_metrics, block_quantize
from dtlab.analysis.comparison import quantize_analysis
from dtlab.analysis.elementwise import format_metrics
from dtlab.analysis.format_fit import Analysis, analyze, binade_histogram
from dtlab.analysis.intquant import int_metrics, int_quantize
from dtlab.analysis.metrics import ErrorMetrics, measure
from dtlab.analysis.ops import Accumulate, dot, matmul
from dtlab.formats.blocks import BLOCK_FORMATS, ScaleRule
from dtlab.formats.quantizer import ScaleMethod

__all__ = [
    "BLOCK_FORMATS",
    "Accumulate",
    "Analysis",
    "ErrorMetrics",
    "ScaleMethod",
    "ScaleRule",
    "analyze",
    "binade_histogram",
    "block_metrics",
    "block_quantize",
    "dot",
    "format_metrics",
    "int_metrics",
    "int_quantize",
    "matmul",
    "measure",
    "quantize_analysis",
]
