"""Activations scanned in one fp32 forward pass: for every module's output, its largest
magnitude, NaN and inf, its binade histogram, and against each target format how many values
would overflow, land among subnormals or flush to zero, and how many binades of headroom are
left below the format's largest value.

Each output goes through dtlab's fused metrics kernel once per target format
(``analysis.elementwise.format_partial``: one pass, no output tensor) and the binade
histogram once (``analysis.format_fit.binade_histogram``). Hooks fire when a module finishes,
so "execution order" is the order in which modules return (a Linear before the block that
holds it), as in transformers' ``DebugUnderflowOverflow``. The first module that would
overflow a format is the first in that order with an output value past the format's
overflow threshold under round-to-nearest-even.

With ``run_in`` (fp16 or bf16) the model also runs natively in that dtype and the report
names the first module whose output holds inf or NaN, with the modules that ran just before
it and their largest magnitudes: DebugUnderflowOverflow's trace, as a report, not an exception.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from dtlab.analysis.elementwise import format_partial
from dtlab.analysis.format_fit import binade_histogram
from dtlab.errors import DtlabError
from dtlab.formats import Format, get_format
from dtlab.models.evaltext import EvalSet, eval_set, load_text
from dtlab.models.loading import Loaded, load_model, load_tokenizer
from dtlab.models.sources import ModelKind, ModelSource, resolve_model

__all__ = [
    "ActivationRecorder",
    "ActivationReport",
    "FormatFit",
    "ModuleActivations",
    "NativeRun",
    "TargetSummary",
    "scan_activations",
]

Progress = Callable[[str, int, int], None]
TRACE = 20  # modules shown before the first inf/NaN, as DebugUnderflowOverflow's frames
RANKED = 10
_NATIVE = {"float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class FormatFit:
    format: str
    headroom_binades: float  # log2(format max / absmax): below 0 the largest value overflows
    overflow: int  # values past the format's overflow threshold
    subnormal_share: float  # of the non-zero finite values: results among subnormals
    underflow_share: float  # of the non-zero finite values: results flushed to zero


@dataclass(frozen=True)
class ModuleActivations:
    name: str  # "" is the whole model
    module_type: str
    order: int  # when it first returned, in the first batch
    calls: int
    values: int
    absmax: float  # over finite values (nan when none)
    smallest_binade: int | None  # floor(log2) of the smallest non-zero magnitude
    nan: int
    inf: int
    histogram: tuple[tuple[int, int], ...]  # (binade, count), ascending
    fits: tuple[FormatFit, ...]  # one per target, in order


@dataclass(frozen=True)
class TargetSummary:
    format: str  # as the user wrote it
    format_name: str
    max: float
    first_overflow: str | None  # in execution order
    overflowing_modules: int
    least_headroom: tuple[tuple[str, float], ...]  # (module, binades), least first


@dataclass(frozen=True)
class NativeRun:
    dtype: str
    first_nonfinite: str | None
    nan: int  # in that module's output
    inf: int
    before: tuple[tuple[str, float], ...]  # (module, absmax) of the modules just before


@dataclass(frozen=True)
class ActivationReport:
    model: str
    folder: str
    kind: ModelKind
    text_source: str
    sequences: int
    seq_len: int
    targets: tuple[TargetSummary, ...]
    modules: tuple[ModuleActivations, ...]  # execution order
    native: NativeRun | None


def _tensors(output: Any, depth: int = 0) -> Iterator[torch.Tensor]:
    """The floating-point tensors a module returned (tuples, lists, dicts, ModelOutput)."""
    if isinstance(output, torch.Tensor):
        if output.is_floating_point() and output.numel():
            yield output.detach()
    elif depth < 2 and isinstance(output, dict):
        for v in output.values():
            yield from _tensors(v, depth + 1)
    elif depth < 2 and isinstance(output, (tuple, list)):
        for v in output:
            yield from _tensors(v, depth + 1)


@dataclass
class _Record:
    module_type: str
    order: int
    calls: int = 0
    values: int = 0
    absmax: float = 0.0
    finite: bool = False
    nan: int = 0
    inf: int = 0
    hist: dict[int, int] = field(default_factory=dict)
    over: list[int] = field(default_factory=list)
    sub: list[int] = field(default_factory=list)
    under: list[int] = field(default_factory=list)


class ActivationRecorder:
    """Forward hooks on every module of ``module`` that measure each output against ``fmts``
    (what scan_activations runs; public for bench/models.py)."""

    def __init__(self, module: torch.nn.Module, fmts: list[Format]) -> None:
        self.fmts = fmts
        self.records: dict[str, _Record] = {}
        self.handles = [m.register_forward_hook(self._hook(n)) for n, m in module.named_modules()]

    def _hook(self, name: str) -> Callable[[torch.nn.Module, Any, Any], None]:
        def hook(m: torch.nn.Module, _: Any, output: Any) -> None:
            rec = self.records.get(name)
            if rec is None:
                k = len(self.fmts)
                rec = _Record(
                    type(m).__name__, len(self.records), over=[0] * k, sub=[0] * k, under=[0] * k
                )
                self.records[name] = rec
            rec.calls += 1
            for t in _tensors(output):
                self._add(rec, t)

        return hook

    def _add(self, rec: _Record, t: torch.Tensor) -> None:
        x = t if t.dtype in (torch.float32, torch.float64) else t.float()
        h = binade_histogram(x)
        rec.values += x.numel()
        rec.nan += h.nan
        rec.inf += h.inf
        for e, c in h.counts:
            rec.hist[e] = rec.hist.get(e, 0) + c
        for i, f in enumerate(self.fmts):
            p = format_partial(x, f)
            rec.over[i] += p.overflow
            rec.sub[i] += p.subnormal
            rec.under[i] += p.underflow
            if p.sums.xfinite:
                rec.absmax = max(rec.absmax, p.sums.xmax)
                rec.finite = True
        if not self.fmts and h.counts:
            rec.absmax = max(rec.absmax, 2.0 ** h.counts[-1][0])  # no format: binade only
            rec.finite = True

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def _fit(rec: _Record, i: int, f: Format, spec: str) -> FormatFit:
    nonzero = sum(rec.hist.values())
    top = float(f.max)
    head = math.log2(top / rec.absmax) if rec.finite and rec.absmax > 0 else math.inf
    share = (lambda n: n / nonzero) if nonzero else (lambda n: 0.0)
    return FormatFit(spec, head, rec.over[i], share(rec.sub[i]), share(rec.under[i]))


def _module(name: str, rec: _Record, fmts: list[Format], specs: list[str]) -> ModuleActivations:
    hist = tuple(sorted(rec.hist.items()))
    return ModuleActivations(
        name=name,
        module_type=rec.module_type,
        order=rec.order,
        calls=rec.calls,
        values=rec.values,
        absmax=rec.absmax if rec.finite else math.nan,
        smallest_binade=hist[0][0] if hist else None,
        nan=rec.nan,
        inf=rec.inf,
        histogram=hist,
        fits=tuple(_fit(rec, i, f, s) for i, (f, s) in enumerate(zip(fmts, specs, strict=True))),
    )


def _summary(i: int, f: Format, spec: str, mods: tuple[ModuleActivations, ...]) -> TargetSummary:
    over = [m for m in mods if m.fits[i].overflow > 0]
    measured = [m for m in mods if math.isfinite(m.fits[i].headroom_binades)]
    ranked = sorted(measured, key=lambda m: (m.fits[i].headroom_binades, m.order))
    return TargetSummary(
        format=spec,
        format_name=f.name,
        max=float(f.max),
        first_overflow=over[0].name if over else None,
        overflowing_modules=len(over),
        least_headroom=tuple((m.name, m.fits[i].headroom_binades) for m in ranked[:RANKED]),
    )


def _run(loaded: Loaded, es: EvalSet, tell: Progress, what: str) -> None:
    for i, batch in enumerate(es.batches):
        loaded.run(batch)
        tell(what, i + 1, len(es.batches))


def scan_activations(
    model: str | None,
    targets: list[str],
    *,
    run_in: str | None = None,
    text_path: str | None = None,
    sequences: int | None = None,
    seq_len: int = 128,
    batch_size: int | None = None,
    trust_remote_code: bool = False,
    progress: Progress | None = None,
) -> ActivationReport:
    """One fp32 pass with hooks on every module, judged against each target format."""
    tell: Progress = progress or (lambda *_: None)
    targets = [t.strip() for t in targets]
    fmts = [get_format(t) for t in targets]
    native = _native_dtype(run_in) if run_in is not None else None
    source = resolve_model(model, trust_remote_code=trust_remote_code)
    text, where = load_text(text_path)
    enc = source.kind is ModelKind.ENCODER
    es = eval_set(
        load_tokenizer(source),
        source.kind,
        text=text,
        source=where,
        sequences=sequences or (16 if enc else 2),
        seq_len=seq_len,
        batch_size=batch_size or (16 if enc else 4),
    )
    loaded = load_model(source)
    rec = ActivationRecorder(loaded.module, fmts)
    _run(loaded, es, tell, "fp32 scan")
    rec.remove()
    del loaded
    mods = tuple(
        sorted(
            (_module(n, r, fmts, targets) for n, r in rec.records.items()), key=lambda m: m.order
        )
    )
    run = _native(source, es, native, tell) if native is not None else None
    return ActivationReport(
        model=source.name,
        folder=str(source.folder),
        kind=source.kind,
        text_source=where,
        sequences=es.sequences,
        seq_len=es.seq_len,
        targets=tuple(
            _summary(i, f, s, mods) for i, (f, s) in enumerate(zip(fmts, targets, strict=True))
        ),
        modules=mods,
        native=run,
    )


def _native_dtype(name: str) -> torch.dtype:
    f = get_format(name)
    if f.name not in _NATIVE:
        raise DtlabError(f"--run-in runs natively in float16 or bfloat16, not {f.name}")
    return _NATIVE[f.name]


class _Tracer:
    """Forward hooks that stop looking at the first output holding inf or NaN."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.trail: list[tuple[str, float]] = []
        self.found: tuple[str, int, int] | None = None
        self.handles = [m.register_forward_hook(self._hook(n)) for n, m in module.named_modules()]

    def _hook(self, name: str) -> Callable[[torch.nn.Module, Any, Any], None]:
        def hook(_: torch.nn.Module, __: Any, output: Any) -> None:
            if self.found is not None:
                return
            nan = inf = 0
            peak = 0.0
            for t in _tensors(output):
                bad = ~torch.isfinite(t)
                if bool(bad.any()):
                    n = int(torch.isnan(t).sum())
                    nan, inf = nan + n, inf + int(bad.sum()) - n
                good = t[~bad] if bool(bad.any()) else t
                if good.numel():
                    peak = max(peak, float(good.abs().max()))
            if nan or inf:
                self.found = (name, nan, inf)
            else:
                self.trail = [*self.trail[-(TRACE - 1) :], (name, peak)]

        return hook


def _native(source: ModelSource, es: EvalSet, dtype: torch.dtype, tell: Progress) -> NativeRun:
    loaded = load_model(source, dtype)
    tracer = _Tracer(loaded.module)
    for i, batch in enumerate(es.batches):
        loaded.run(batch)
        tell(f"{dtype} run", i + 1, len(es.batches))
        if tracer.found is not None:
            break
    for h in tracer.handles:
        h.remove()
    name = str(dtype).removeprefix("torch.")
    if tracer.found is None:
        return NativeRun(name, None, 0, 0, ())
    where, nan, inf = tracer.found
    return NativeRun(name, where, nan, inf, tuple(tracer.trail))
