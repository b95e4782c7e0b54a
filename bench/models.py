"""Models in several formats, on the embedded SmolLM2-135M (or MODEL): forward time of fp32
against fake-quantized weights (quantized once at load) and with activation emulation, the
activation scan against a plain forward and against the naive way, and compare's peak RSS.

  fp32      the model as loaded
  weights   int8 / nf4 / mxfp4 weights, fake-quantized once (dtlab.models.fakequant)
  +act      the same, and every quantized layer's input rounded on each call (fp8, mxfp4)
  scan      one forward with dtlab's activation hooks (fused metrics per format: fp16, bf16,
            fp8, and the binade histogram)
  naive     hooks computing each statistic as its own torch op (absmax, NaN, inf, smallest
            non-zero, histogram, and per format overflow, subnormal and flush-to-zero counts)

Forward times are medians of alternating turns with the fp32 forward (a shared machine
drifts). Peak RSS: a fresh process running dtlab model compare, against the fp32 model size.
Run: .venv/bin/python bench/models.py [MODEL] [--quick]
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
from collections.abc import Callable

import torch

from _timing import alternating
from dtlab.formats import get_format
from dtlab.formats.quantizer_spec import parse_quantizer
from dtlab.models.activations import ActivationRecorder
from dtlab.models.evaltext import eval_set, load_text
from dtlab.models.fakequant import fake_quantize_model
from dtlab.models.loading import Batch, Loaded, load_model, load_tokenizer
from dtlab.models.sources import resolve_model

TARGETS = ["fp16", "bf16", "fp8"]


def naive_hooks(module: torch.nn.Module) -> list[torch.utils.hooks.RemovableHandle]:
    limits = []
    for name in TARGETS:
        f = get_format(name)
        limits.append((float(f.max), float(f.smallest_normal), float(f.smallest_subnormal)))

    def hook(_: torch.nn.Module, __: object, out: object) -> None:
        t = out[0] if isinstance(out, tuple) else out
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            return
        x = t.detach().float()
        a = x.abs()
        fin = torch.isfinite(x)
        float(a[fin].max()) if bool(fin.any()) else 0.0
        int(torch.isnan(x).sum()), int(torch.isinf(x).sum())
        nz = a[(a > 0) & fin]
        if nz.numel():
            float(nz.min())
            _, e = torch.frexp(nz)
            torch.bincount((e - e.min()).reshape(-1))
        for top, tiny, sub in limits:
            (
                int((a > top).sum()),
                int(((a < tiny) & (a >= sub / 2)).sum()),
                int(((a < sub / 2) & (a > 0)).sum()),
            )

    return [m.register_forward_hook(hook) for m in module.modules()]


def timed(fn: Callable[[], object], ref: Callable[[], object], turns: int) -> tuple[float, float]:
    ts, rs = alternating(fn, ref, turns)
    return statistics.median(ts), statistics.median(rs)


def peak_rss(model: str, formats: str) -> int:
    code = (
        "from dtlab.models import compare_model; "
        f"compare_model({model!r}, {formats.split(',')!r}, sequences=2, seq_len=128)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    return int(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) * 1024


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    quick = "--quick" in sys.argv
    model = args[0] if args else "smollm2"
    turns = 3 if quick else 5
    source = resolve_model(model)
    text, where = load_text()
    es = eval_set(
        load_tokenizer(source), source.kind, text=text, source=where, sequences=2, seq_len=128
    )
    batch = es.batches[0]
    base = load_model(source)

    def run(m: Loaded) -> Callable[[], object]:
        return lambda: m.run(batch)

    print(f"{source.name}: one batch of {es.sequences} x {es.seq_len} tokens, {turns} turns")
    print(f"{'variant':<26}{'s/forward':>11}{'fp32 s':>9}{'ratio':>8}  target")
    for spec, act in [
        ("int8", None),
        ("nf4", None),
        ("mxfp4", None),
        ("int8", "fp8"),
        ("mxfp4", "mxfp4"),
    ]:
        m = load_model(source)
        hooks: list[torch.utils.hooks.RemovableHandle] = []
        fake_quantize_model(
            m.module,
            parse_quantizer(spec),
            activations=parse_quantizer(act) if act else None,
            hooks=hooks,
        )
        t, r = timed(run(m), run(base), turns)
        label = f"{spec} weights" + (f" +act {act}" if act else "")
        target = "<= 1.5x" if act else "within 10 %"
        print(f"{label:<26}{t:>11.3f}{r:>9.3f}{t / r:>8.2f}  {target}")
        del m, hooks
    scans(base, batch, turns)
    size = sum(p.numel() * p.element_size() for p in base.module.parameters())
    del base
    rss = peak_rss(model, "bf16,int8,nf4")
    print(f"peak RSS of compare (bf16,int8,nf4): {rss / 1e6:,.0f} MB", end=" ")
    print(f"= {rss / size:.2f}x the fp32 model ({size / 1e6:,.0f} MB)")


def scans(base: Loaded, batch: Batch, turns: int) -> None:
    fmts = [get_format(t) for t in TARGETS]

    def plain() -> None:
        base.run(batch)

    def scan() -> None:
        r = ActivationRecorder(base.module, fmts)
        base.run(batch)
        r.remove()

    def naive() -> None:
        hs = naive_hooks(base.module)
        base.run(batch)
        for h in hs:
            h.remove()

    t, r = timed(scan, plain, turns)
    print(f"{'activation scan (dtlab)':<26}{t:>11.3f}{r:>9.3f}{t / r:>8.2f}  <= 1.5x")
    tn, rn = timed(naive, plain, turns)
    print(f"{'activation scan (naive)':<26}{tn:>11.3f}{rn:>9.3f}{tn / rn:>8.2f}", end="")
    print(f"  (dtlab {tn / rn / (t / r):.2f}x faster)")


if __name__ == "__main__":
    main()
