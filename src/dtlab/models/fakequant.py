"""Fake quantization of a model: the weights of its Linear and Embedding layers (and GPT-2's
Conv1D) replaced, in place, by their values after a dtlab quantizer's round trip, and with
activations on, each quantized Linear layer's input rounded the same way on every call.

The quantizer is a ``dtlab.formats.quantizer.Quantizer`` in the grammar of ``dtlab quantize``:
integer formats go through ``analysis.intquant.int_quantize``, block formats through
``analysis.blockquant.block_quantize``, plain element formats through the kernels'
``quantize``. Channels run along a weight's output features, groups and blocks along its
input features (a Conv1D weight, stored transposed, is quantized as its transpose).
Activations are quantized along their last axis (the features a Linear layer sums over).

Which layers are left alone follows ``dtlab model memory``: names matching the keep patterns
(embeddings, norms, biases, lm_head by default), biases and norms always (rank 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from dtlab.analysis.blockquant import block_quantize
from dtlab.analysis.intquant import int_quantize
from dtlab.checkpoint.memory import DEFAULT_PATTERNS, _matcher
from dtlab.errors import OptionError
from dtlab.formats.descriptor import Format
from dtlab.formats.quantizer import Quantizer
from dtlab.kernels import quantize

__all__ = ["FakeQuant", "fake_quantize", "fake_quantize_model", "quantizable_layers"]


def fake_quantize(x: torch.Tensor, q: Quantizer) -> torch.Tensor:
    """x after the round trip through q, in x's dtype (a new tensor)."""
    p = q.applied(x.dim())
    if p.block is not None:
        return block_quantize(x, p).dequantize()
    if p.ggml is not None:  # GGUF's block types, along the last axis
        from dtlab.analysis.ggufquant import ggml_quantize

        return ggml_quantize(x, p).dequantize()
    if p.is_int:
        return int_quantize(x, p).dequantize()
    if p.scaled:
        raise OptionError(
            f"{q.name}: scaled float formats are not emulated in models; use {p.format.name} "
            "(a plain cast), an integer or a block format"
        )
    fmt = p.format
    assert isinstance(fmt, Format)  # blocks and GGML types are handled above
    return quantize(x.contiguous(), fmt)


def _conv1d_type() -> type | None:
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # pragma: no cover - transformers always has it
        return None
    return Conv1D


def quantizable_layers(module: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The Linear, Embedding and Conv1D layers, in registration order (tied weights once)."""
    conv = _conv1d_type()
    kinds: tuple[type, ...] = (torch.nn.Linear, torch.nn.Embedding)
    kinds = (*kinds, conv) if conv is not None else kinds
    seen: set[int] = set()
    out: list[tuple[str, torch.nn.Module]] = []
    for name, m in module.named_modules():
        w = getattr(m, "weight", None)
        if (
            isinstance(m, kinds)
            and isinstance(m, torch.nn.Module)
            and isinstance(w, torch.Tensor)
            and id(w) not in seen
        ):
            seen.add(id(w))
            out.append((name, m))
    return out


@dataclass(frozen=True)
class FakeQuant:
    """What fake quantization touched: layer names quantized, and kept with the reason."""

    quantized: tuple[str, ...]
    kept: tuple[tuple[str, str], ...]
    activations: bool


def _keep_reason(name: str, matchers: list[tuple[str, Callable[[str], bool]]]) -> str | None:
    for pattern, matches in matchers:
        if matches(f"{name}.weight"):
            return f"name matches {pattern!r}"
    return None


def fake_quantize_model(
    module: torch.nn.Module,
    q: Quantizer,
    *,
    keep: tuple[str, ...] | list[str] = DEFAULT_PATTERNS,
    activations: Quantizer | None = None,
    hooks: list[Any] | None = None,
) -> FakeQuant:
    """Quantize the weights in place; with ``activations``, add pre-hooks that round each
    quantized Linear layer's input (their handles go to ``hooks``)."""
    matchers = [(p, _matcher(p)) for p in keep]
    conv = _conv1d_type()
    done, kept = [], []
    for name, m in quantizable_layers(module):
        why = _keep_reason(name, matchers)
        if why is not None:
            kept.append((name, why))
            continue
        weight = m.weight
        assert isinstance(weight, torch.Tensor)
        w = weight.data
        transposed = conv is not None and isinstance(m, conv)
        with torch.no_grad():
            new = fake_quantize(w.t() if transposed else w, q)
            w.copy_(new.t() if transposed else new)
        done.append(name)
        if activations is not None and not isinstance(m, torch.nn.Embedding):
            handle = m.register_forward_pre_hook(_input_rounder(activations))
            if hooks is not None:
                hooks.append(handle)
    return FakeQuant(tuple(done), tuple(kept), activations is not None)


def _input_rounder(q: Quantizer) -> Callable[[torch.nn.Module, tuple[Any, ...]], Any]:
    def hook(_: torch.nn.Module, args: tuple[Any, ...]) -> Any:
        x = args[0]
        return (fake_quantize(x, q.along(-1)), *args[1:])

    return hook
