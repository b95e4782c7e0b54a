"""A model run in several formats, each compared with its fp32 run on the same inputs.

The fp32 run goes first and keeps its final outputs (logits of the scored positions, or
embeddings) and its layers' outputs on the first sequence; then each format loads a fresh
copy of the model, one at a time, so memory holds the reference plus one model. fp32, bf16
and fp16 are native casts (``model.to(dtype)``); every other format fake-quantizes the weights
(``dtlab.models.fakequant``), and with ``activations`` the inputs of the quantized layers too.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from dtlab.checkpoint.memory import DEFAULT_PATTERNS, memory_table
from dtlab.errors import DtlabError
from dtlab.formats.quantizer import Granularity, Quantizer
from dtlab.formats.quantizer_spec import parse_quantizer
from dtlab.models.encstats import EncoderStats, encoder_stats
from dtlab.models.evaltext import EvalSet, eval_set, load_text
from dtlab.models.fakequant import fake_quantize_model
from dtlab.models.layers import LayerCapture, LayerRow
from dtlab.models.lmstats import LMStats, TokenStats, lm_stats, token_stats
from dtlab.models.loading import Loaded, load_model, load_tokenizer
from dtlab.models.sources import ModelKind, ModelSource, resolve_model

__all__ = ["CompareReport", "FormatRun", "MemoryUse", "compare_model", "native_dtype"]

Progress = Callable[[str, int, int], None]  # (what, done, total)
_NATIVE = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class MemoryUse:
    loaded_bytes: int  # parameters and buffers as held (get_memory_footprint's count)
    packed_bytes: int  # the weights stored in the format (dtlab model memory's arithmetic)
    peak_rss_bytes: int  # the process's peak resident memory so far (getrusage)
    seconds_per_forward: float  # wall clock, mean over the batches (measured, not exact)


@dataclass(frozen=True)
class FormatRun:
    spec: str
    quantizer: Quantizer
    method: str  # "cast", "weights", "weights+activations"
    quantized_layers: int
    kept_layers: int
    max_abs_diff: float  # of the final outputs against fp32
    mean_abs_diff: float
    memory: MemoryUse
    lm: LMStats | None
    encoder: EncoderStats | None
    layers: tuple[LayerRow, ...]  # worst SQNR first


@dataclass(frozen=True)
class CompareReport:
    model: str
    folder: str
    kind: ModelKind
    architecture: str
    parameters: int
    note: str
    text_source: str
    sequences: int
    seq_len: int
    scored_tokens: int
    activations: str | None
    keep: tuple[str, ...]
    reference: MemoryUse
    runs: tuple[FormatRun, ...]


def native_dtype(q: Quantizer) -> torch.dtype | None:
    """The torch dtype a format runs in natively (fp32, bf16, fp16 plain casts), else None."""
    if q.granularity is not Granularity.NONE:
        return None
    return _NATIVE.get(q.format.name)


def _peak_rss() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux: KiB


def _loaded_bytes(m: torch.nn.Module) -> int:
    tensors = list(m.parameters()) + list(m.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def _packed(source: ModelSource, spec: str, keep: tuple[str, ...]) -> int:
    from dtlab.checkpoint import open_checkpoint

    table = memory_table(open_checkpoint(str(source.folder)), [spec], keep_high_precision=keep)
    return table.totals[0].nbytes


@dataclass
class _Outputs:
    finals: list[torch.Tensor]
    seconds: float


def _run_all(loaded: Loaded, es: EvalSet, cap: LayerCapture, tell: Progress, what: str) -> _Outputs:
    finals, spent = [], 0.0
    for i, batch in enumerate(es.batches):
        cap.armed = i == 0
        start = time.perf_counter()
        finals.append(loaded.run(batch))
        spent += time.perf_counter() - start
        cap.armed = False
        tell(what, i + 1, len(es.batches))
    return _Outputs(finals, spent / len(es.batches))


def compare_model(
    model: str | None,
    specs: list[str],
    *,
    activations: str | None = None,
    keep: tuple[str, ...] | list[str] = DEFAULT_PATTERNS,
    text_path: str | None = None,
    sequences: int | None = None,
    seq_len: int = 128,
    batch_size: int | None = None,
    trust_remote_code: bool = False,
    progress: Progress | None = None,
) -> CompareReport:
    """Run the model in fp32 and in each spec's format on the same text, and compare.

    ``sequences``: chunks of ``seq_len`` tokens for language models (default 4), passages
    for encoders (default 64); ``batch_size``: per forward call (default 4, encoders 16)."""
    tell: Progress = progress or (lambda *_: None)
    if not specs:
        raise DtlabError("compare needs at least one format (example: bf16,int8)")
    quantizers = [parse_quantizer(s) for s in specs]
    act = parse_quantizer(activations) if activations else None
    keep_t = tuple(keep)
    source = resolve_model(model, trust_remote_code=trust_remote_code)
    text, where = load_text(text_path)
    es = eval_set(
        load_tokenizer(source),
        source.kind,
        text=text,
        source=where,
        sequences=sequences or (64 if source.kind is ModelKind.ENCODER else 4),
        seq_len=seq_len,
        batch_size=batch_size or (16 if source.kind is ModelKind.ENCODER else 4),
    )
    ref_model = load_model(source)
    params = sum(p.numel() for p in ref_model.module.parameters())
    cap = LayerCapture(ref_model.module, None)
    ref = _run_all(ref_model, es, cap, tell, "fp32")
    cap.remove()
    reference = MemoryUse(
        _loaded_bytes(ref_model.module), _packed(source, "fp32", keep_t), _peak_rss(), ref.seconds
    )
    del ref_model
    runs = tuple(
        _one(source, es, q, s, act, keep_t, ref, cap.kept, tell)
        for q, s in zip(quantizers, specs, strict=True)
    )
    return CompareReport(
        model=source.name,
        folder=str(source.folder),
        kind=source.kind,
        architecture=source.architecture,
        parameters=params,
        note=source.note,
        text_source=where,
        sequences=es.sequences,
        seq_len=es.seq_len,
        scored_tokens=es.scored_tokens,
        activations=act.name if act is not None else None,
        keep=keep_t,
        reference=reference,
        runs=runs,
    )


def _one(
    source: ModelSource,
    es: EvalSet,
    q: Quantizer,
    spec: str,
    act: Quantizer | None,
    keep: tuple[str, ...],
    ref: _Outputs,
    ref_layers: dict[str, torch.Tensor],
    tell: Progress,
) -> FormatRun:
    dtype = native_dtype(q)
    loaded = load_model(source, dtype or torch.float32)
    hooks: list[torch.utils.hooks.RemovableHandle] = []
    if dtype is None:
        fq = fake_quantize_model(loaded.module, q, keep=keep, activations=act, hooks=hooks)
        method, n_q, n_k = (
            ("weights+activations" if act else "weights"),
            len(fq.quantized),
            len(fq.kept),
        )
    else:
        method, n_q, n_k = "cast", 0, 0
    cap = LayerCapture(loaded.module, ref_layers)
    out = _run_all(loaded, es, cap, tell, spec)
    cap.remove()
    for h in hooks:
        h.remove()
    mem = MemoryUse(
        _loaded_bytes(loaded.module), _packed(source, spec, keep), _peak_rss(), out.seconds
    )
    del loaded
    diffs = [(a - b).abs() for a, b in zip(out.finals, ref.finals, strict=True)]
    max_diff = max(float(d.max()) for d in diffs) if diffs else math.nan
    mean_diff = float(sum(d.double().sum() for d in diffs) / sum(d.numel() for d in diffs))
    lm = enc = None
    if source.kind is ModelKind.ENCODER:
        enc = encoder_stats(torch.cat(ref.finals), torch.cat(out.finals))
    else:
        targets = [b.targets for b in es.batches if b.targets is not None]
        parts = [
            token_stats(r, o, t) for r, o, t in zip(ref.finals, out.finals, targets, strict=True)
        ]
        lm = lm_stats(TokenStats.join(parts))
    return FormatRun(
        spec, q, method, n_q, n_k, max_diff, mean_diff, mem, lm, enc, cap.worst_first()
    )
