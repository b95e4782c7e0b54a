"""What a memory table or a scan says about a pre-quantized layout, as lines of text.
No torch here."""

from __future__ import annotations

from dtlab.checkpoint.prequant.layout import NO_LAYOUT, Layout
from dtlab.numtext import counted


def layout_notes(layout: Layout) -> tuple[str, ...]:
    """The assumption lines for a layout; none for a checkpoint that is not pre-quantized."""
    if layout is NO_LAYOUT:
        return ()
    where = f" (from {layout.config.name})" if layout.config else ""
    if not layout.recognised:
        return (f"UNRECOGNISED packed layout: {layout.description}{where}. {layout.note}.",)
    s = layout.summary()
    out = [
        f"Pre-quantized: {layout.description}{where}. "
        f"{counted(s.packed_weights, 'packed weight')} count at their logical (unpacked) "
        f"shape: {s.logical_params:,} parameters stored in {s.stored_bytes:,} bytes, "
        f"{s.bits_per_weight:.4f} bits per weight as stored (codes, scales, zero points, "
        "indices and quantization state together); each target re-quantizes those logical "
        "weights (bf16: what dequantizing them costs)."
    ]
    if layout.note:
        out.append(f"Note: {layout.note}.")
    return tuple(out)
