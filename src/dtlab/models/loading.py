"""Loading a resolved model in a torch dtype, and running it on prepared inputs.

Every kind of model is wrapped the same way: ``Loaded.run(batch)`` returns the final output in
float32 with the model's own dtype's values (logits of the scored positions for language
models; one embedding per text for encoders), and ``Loaded.module`` is the torch module that
hooks and fake quantization walk.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from dtlab.errors import DtlabError, first_line
from dtlab.models.sources import ModelKind, ModelSource

__all__ = ["Batch", "Loaded", "load_model", "load_tokenizer", "quiet_transformers"]


def quiet_transformers() -> None:
    """No progress bars or advice from transformers on dtlab's stderr: dtlab reports what it
    loads itself."""
    from transformers.utils import logging

    logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    logging.set_verbosity_error()  # type: ignore[no-untyped-call]


@dataclass(frozen=True, eq=False)
class Batch:
    """Model inputs, and for language models the targets of the scored positions."""

    inputs: dict[str, torch.Tensor]
    targets: torch.Tensor | None  # (n,) token ids the scored positions predict
    scored: torch.Tensor | None  # (batch, length) bool: positions whose logits are scored


@dataclass(eq=False)
class Loaded:
    source: ModelSource
    module: torch.nn.Module
    forward: Callable[[dict[str, torch.Tensor]], torch.Tensor]

    def run(self, batch: Batch) -> torch.Tensor:
        with torch.inference_mode():
            out = self.forward(batch.inputs)
            if batch.scored is not None:
                out = out[batch.scored]
            return out.float()


def load_tokenizer(source: ModelSource) -> Any:
    from transformers import AutoTokenizer

    quiet_transformers()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tokenizer conversion notices
            return AutoTokenizer.from_pretrained(
                source.folder, trust_remote_code=source.trust_remote_code
            )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DtlabError(
            f"{source.folder}: cannot load its tokenizer ({first_line(exc)})"
        ) from None


def load_model(source: ModelSource, dtype: torch.dtype = torch.float32) -> Loaded:
    """The model in fp32, cast to ``dtype`` (all its floating-point weights and buffers, as
    ``model.to(dtype)`` does), in eval mode."""
    quiet_transformers()
    try:
        module, forward = _build(source)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise DtlabError(f"{source.folder}: cannot load the model ({first_line(exc)})") from None
    module.eval()
    if dtype is not torch.float32:
        module.to(dtype)
    return Loaded(source, module, forward)


def _build(
    source: ModelSource,
) -> tuple[torch.nn.Module, Callable[[dict[str, torch.Tensor]], torch.Tensor]]:
    kw: dict[str, Any] = {"dtype": torch.float32, "trust_remote_code": source.trust_remote_code}
    if source.kind is ModelKind.ENCODER and source.sentence_transformers:
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(
            str(source.folder), device="cpu", trust_remote_code=source.trust_remote_code
        )
        return st, lambda inputs: st(dict(inputs))["sentence_embedding"]
    if source.kind is ModelKind.ENCODER:
        from transformers import AutoModel

        enc = AutoModel.from_pretrained(source.folder, **kw)
        return enc, lambda inputs: _mean_pool(enc(**inputs), inputs["attention_mask"])
    if source.kind is ModelKind.SEQ2SEQ_LM:
        from transformers import AutoModelForSeq2SeqLM

        s2s = AutoModelForSeq2SeqLM.from_pretrained(source.folder, **kw)
        return s2s, lambda inputs: s2s(**inputs, use_cache=False).logits
    from transformers import AutoModelForCausalLM

    lm = AutoModelForCausalLM.from_pretrained(source.folder, **kw)
    return lm, lambda inputs: lm(**inputs, use_cache=False).logits


def _mean_pool(out: Any, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the last hidden states over the real tokens (sentence-transformers' pooling)."""
    h = out.last_hidden_state
    m = mask.unsqueeze(-1).to(h.dtype)
    pooled: torch.Tensor = (h * m).sum(1) / m.sum(1).clamp(min=1)
    return pooled
