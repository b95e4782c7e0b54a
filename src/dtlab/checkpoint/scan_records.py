"""What the pre-cast scan reports: a verdict per tensor and target, a summary per target."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from dtlab.analysis.metrics import ErrorMetrics
from dtlab.checkpoint.prequant.layout import PrequantSummary
from dtlab.formats.quantizer_spec import Target

# in --json a target is its name: "float16", "int4:g128"
_BY_NAME = {"json": "name"}


class Status(enum.Enum):
    SAFE = "safe"
    OVERFLOW = "overflow"
    NAN = "nan"  # NaN or inf already in the weights
    LOSSY = "lossy"  # SQNR below the threshold


@dataclass(frozen=True)
class Verdict:
    format: Target = field(metadata=_BY_NAME)
    status: Status
    message: str
    metrics: ErrorMetrics
    signal: float  # sum of x^2 over the finite pairs: what FormatSummary's SQNR adds up
    noise: float  # sum of (q - x)^2 over them; inf if a finite x became inf or NaN


@dataclass(frozen=True)
class TensorScan:
    name: str
    dtype: str
    shape: tuple[int, ...]
    numel: int
    absmax: float
    nan: int
    inf: int
    verdicts: tuple[Verdict, ...]  # empty for tensors not scanned (integers)
    stored_as: str | None = None  # a pre-quantized weight's layout; dtype is what it dequantizes to


@dataclass(frozen=True)
class FormatSummary:
    format: Target = field(metadata=_BY_NAME)
    tensors: int
    safe: int
    overflowing: int  # tensors with at least one overflowing value
    overflow_values: int
    lossy: int
    nan: int
    worst: tuple[str, ...]  # tensor names, lowest SQNR first (at most 5)
    worst_sqnr_db: float
    mean_sqnr_db: float  # over parameters: 10 log10(sum of signal / sum of noise)


@dataclass(frozen=True)
class ScanReport:
    source: str
    formats: tuple[Target, ...] = field(metadata=_BY_NAME)
    sqnr_threshold_db: float
    tensors: tuple[TensorScan, ...]
    summaries: tuple[FormatSummary, ...]
    params: int
    stored_bytes: int
    seconds: float
    workers: int
    chunk_bytes: int
    layout: PrequantSummary | None = None  # a pre-quantized checkpoint's, dequantized to scan


@dataclass(frozen=True)
class Progress:
    tensors_done: int
    tensors_total: int
    bytes_done: int
    bytes_total: int
    params_done: int
    seconds: float


ProgressFn = Callable[[Progress], None]
