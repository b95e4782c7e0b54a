"""Per-layer error: each quantizable layer's output in a run against the fp32 run's, on the
first sequence of the first batch (what torch.ao.ns's numeric suite reports: SQNR and cosine
between a float and a quantized run, with the error each layer receives from those before it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from dtlab.analysis.metrics import by_sqnr, measure
from dtlab.models.fakequant import quantizable_layers

__all__ = ["LayerCapture", "LayerRow"]


@dataclass(frozen=True)
class LayerRow:
    name: str
    order: int  # position among the model's quantizable layers (registration order)
    sqnr_db: float  # 10 log10(sum ref² / sum (out - ref)²); inf when identical
    cosine: float


def _first(output: Any) -> torch.Tensor | None:
    t = output[0] if isinstance(output, (tuple, list)) and output else output
    if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.dim() == 0:
        return None
    return t[:1].detach().float() if t.dim() > 1 else t.detach().float()


class LayerCapture:
    """Forward hooks on every quantizable layer that keep (reference) or measure (other runs)
    the output of the first sequence; armed for one forward call at a time."""

    def __init__(self, module: torch.nn.Module, reference: dict[str, torch.Tensor] | None) -> None:
        self.reference = reference
        self.kept: dict[str, torch.Tensor] = {}
        self.rows: dict[str, LayerRow] = {}
        self.armed = False
        self.handles = [
            m.register_forward_hook(self._hook(name, i))
            for i, (name, m) in enumerate(quantizable_layers(module))
        ]

    def _hook(self, name: str, order: int) -> Any:
        def hook(_: torch.nn.Module, __: Any, output: Any) -> None:
            if not self.armed:
                return
            t = _first(output)
            if t is None or name in self.kept or name in self.rows:
                return  # a layer called twice (tied, shared) counts its first call
            if self.reference is None:
                self.kept[name] = t.clone()
                return
            ref = self.reference.get(name)
            if ref is not None and ref.shape == t.shape:
                m = measure(ref, t)
                self.rows[name] = LayerRow(name, order, m.sqnr_db, m.cosine)

        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()

    def worst_first(self) -> tuple[LayerRow, ...]:
        return tuple(sorted(self.rows.values(), key=lambda r: by_sqnr(r.sqnr_db, worst_first=True)))
