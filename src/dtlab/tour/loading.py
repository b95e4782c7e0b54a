"""Tour chapter: loading models by data size, where the lesson ends. The embedded models in
fp32, bf16, fp16 and an emulated 4-bit format: their memory, their outputs compared with the
fp32 run, and the activation headroom against fp16 (dtlab model compare / activations)."""

from __future__ import annotations

from dtlab.tour.model import Block, Chapter, ChapterFn, Paragraph, TableBlock

FORMATS = ["bf16", "fp16", "nf4"]


def _memory_rows(report: object) -> tuple[tuple[str, ...], ...]:
    from dtlab.models.compare import CompareReport

    assert isinstance(report, CompareReport)
    ref = report.reference
    rows = [("fp32", f"{ref.loaded_bytes / 1e6:,.1f}", f"{ref.packed_bytes / 1e6:,.1f}")]
    rows += [
        (r.spec, f"{r.memory.loaded_bytes / 1e6:,.1f}", f"{r.memory.packed_bytes / 1e6:,.1f}")
        for r in report.runs
    ]
    return tuple(rows)


def _minilm() -> list[Block]:
    from dtlab.models import compare_model

    r = compare_model("minilm", FORMATS, sequences=16, seq_len=64)
    rows = tuple(
        (
            run.spec,
            f"{run.encoder.cosine_mean:.6f}" if run.encoder else "",
            f"{run.encoder.cosine_min:.6f}" if run.encoder else "",
            f"{100 * run.encoder.top_k_agreement:.1f} %" if run.encoder else "",
            f"{run.max_abs_diff:.3g}",
        )
        for run in r.runs
    )
    return [
        Paragraph(
            "Casting a whole model is model.to(torch.bfloat16); formats torch cannot run are "
            "emulated by rounding each Linear weight through dtlab's quantizers (nf4 here), "
            "keeping embeddings and norms as they are. MiniLM embeds 16 passages of Python's "
            "own documentation (pydoc topics) in each format; each embedding is compared with "
            "its fp32 one."
        ),
        TableBlock(
            "all-MiniLM-L6-v2 against fp32",
            (
                "format",
                "cosine mean",
                "cosine min",
                f"top-{r.runs[0].encoder.top_k if r.runs[0].encoder else 5} retrieval",
                "max |Δ|",
            ),
            rows,
        ),
        TableBlock("MiniLM memory (MB)", ("format", "loaded", "packed"), _memory_rows(r)),
    ]


def _smollm2() -> list[Block]:
    from dtlab.models import compare_model
    from dtlab.models.activations import scan_activations
    from dtlab.models.cache import smollm2_ready

    if smollm2_ready() is None:
        return [
            Paragraph(
                "SmolLM2-135M is not converted yet: dtlab model compare smollm2 (or make demo) "
                "converts its GGUF once, in about 15 s, and this chapter then shows it too."
            )
        ]
    r = compare_model("smollm2", FORMATS, sequences=1, seq_len=64)
    rows = tuple(
        (
            run.spec,
            f"{run.lm.kld.mean:.3g}",
            f"{100 * run.lm.same_top1:.1f} %",
            f"{run.lm.ppl:.2f} (fp32 {run.lm.ppl_base:.2f})",
            f"{run.max_abs_diff:.3g}",
        )
        for run in r.runs
        if run.lm is not None
    )
    act = scan_activations("smollm2", ["fp16"], sequences=1, seq_len=64)
    t = act.targets[0]
    name, head = t.least_headroom[0] if t.least_headroom else ("", float("nan"))
    return [
        Paragraph(
            "SmolLM2-135M-Instruct (its weights dequantized from the Q4_1 GGUF it ships as) "
            "predicts each next token of 63 tokens of the same text; the KL divergence from "
            "the fp32 distribution and the share of tokens whose top-1 stays the same say how "
            "far each format moves it."
        ),
        TableBlock(
            "SmolLM2 against fp32",
            ("format", "KLD mean", "same top-1", "PPL", "max |Δ| logits"),
            rows,
        ),
        TableBlock("SmolLM2 memory (MB)", ("format", "loaded", "packed"), _memory_rows(r)),
        Paragraph(
            f"Is fp16 safe? One fp32 pass with hooks on every module: the least headroom is "
            f"{head:+.2f} binades below 65504, in {name}; "
            + (
                f"{t.first_overflow} would overflow first."
                if t.first_overflow
                else "no module would overflow."
            )
        ),
    ]


def loading() -> Chapter:
    blocks = _minilm() + _smollm2()
    blocks.append(
        Paragraph(
            "Try: dtlab model compare smollm2 --as bf16,fp16,int8,nf4,mxfp4    "
            "dtlab model activations smollm2 --to fp16,fp8 --run-in fp16"
        )
    )
    return Chapter("loading", "Loading models by data size", tuple(blocks))


LOADING_CHAPTERS: dict[str, ChapterFn] = {"loading": loading}
