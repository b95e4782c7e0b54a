"""A pre-quantized layout in one line, for the memory and scan views. No torch here."""

from __future__ import annotations

from rich.text import Text

from dtlab.checkpoint.prequant.layout import PrequantSummary
from dtlab.render.text import printable


def layout_line(s: PrequantSummary | None, verb: str) -> Text | None:
    """None for a checkpoint that is not pre-quantized. ``verb``: what was done to the packed
    weights ("counted", "dequantized and scanned")."""
    if s is None:
        return None
    if not s.recognised:
        return Text(
            f"UNRECOGNISED packed layout: {printable(s.description)}. {printable(s.note or '')}",
            style="bold red",
        )
    return Text(
        f"pre-quantized: {printable(s.description)}; {s.packed_weights:,} packed weights "
        f"{verb} at their logical shape ({s.logical_params:,} parameters, "
        f"{s.bits_per_weight:.4f} bits per weight as stored)"
    )
