"""Downcast and quantization analysis: error metrics, integer and block quantization."""

from dtlab.analysis.metrics import ErrorMetrics, measure

__all__ = ["ErrorMetrics", "measure"]
