"""Evaluation inputs: real prose that ships with Python, or the user's own text file.

The default text is CPython's ``pydoc_data.topics`` (the language reference's topics as
``help()`` shows them, about 465k characters), joined in key order. Language models score
consecutive chunks of ``seq_len`` tokens, every position but the first predicting the next
token (llama.cpp scores only the second half of each chunk; dtlab scores all). Encoders embed
passages: the paragraphs of 80 to 600 characters, taken evenly spaced across the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dtlab.errors import DtlabError
from dtlab.models.loading import Batch
from dtlab.models.sources import ModelKind

__all__ = ["EvalSet", "eval_set", "load_text"]

PYDOC_TOPICS = "pydoc_data.topics"
_PARAGRAPH = re.compile(r"\n\s*\n")


def load_text(path: str | Path | None = None) -> tuple[str, str]:
    """(text, where it came from): the file at ``path``, or pydoc's topics."""
    if path is None:
        from pydoc_data.topics import topics

        return "\n\n".join(topics[k] for k in sorted(topics)), PYDOC_TOPICS
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8"), str(p)
    except (OSError, UnicodeDecodeError) as exc:
        raise DtlabError(f"cannot read the text {p} ({exc})") from None


@dataclass(frozen=True, eq=False)
class EvalSet:
    source: str
    kind: ModelKind
    batches: tuple[Batch, ...]
    sequences: int  # chunks (language models) or passages (encoders)
    seq_len: int  # tokens per chunk; the longest passage for encoders
    scored_tokens: int  # positions scored (language models), 0 for encoders
    passages: tuple[str, ...]  # the encoder's texts (empty for language models)


def eval_set(
    tokenizer: Any,
    kind: ModelKind,
    *,
    text: str,
    source: str,
    sequences: int,
    seq_len: int,
    batch_size: int = 4,
) -> EvalSet:
    """``sequences`` chunks of ``seq_len`` tokens (or passages, for encoders) in batches."""
    if sequences < 1 or seq_len < 2:
        raise DtlabError("an evaluation needs at least 1 sequence of at least 2 tokens")
    if kind is ModelKind.ENCODER:
        return _passages(tokenizer, text, source, sequences, seq_len, batch_size)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    chunks = len(ids) // seq_len
    if chunks < 1:
        raise DtlabError(
            f"the text is too short to score: {len(ids)} tokens, a sequence needs {seq_len}"
        )
    n = min(sequences, chunks)
    data = torch.tensor(ids[: n * seq_len], dtype=torch.long).reshape(n, seq_len)
    make = _causal if kind is ModelKind.CAUSAL_LM else _seq2seq
    batches = tuple(make(data[i : i + batch_size]) for i in range(0, n, batch_size))
    scored = sum(int(b.targets.numel()) for b in batches if b.targets is not None)
    return EvalSet(source, kind, batches, n, seq_len, scored, ())


def _causal(x: torch.Tensor) -> Batch:
    scored = torch.ones_like(x, dtype=torch.bool)
    scored[:, -1] = False  # the last position has no next token here
    return Batch(
        {"input_ids": x, "attention_mask": torch.ones_like(x)}, x[:, 1:].reshape(-1), scored
    )


def _seq2seq(x: torch.Tensor) -> Batch:
    """The encoder reads the first half of each chunk, the decoder predicts the second."""
    half = x.shape[1] // 2
    enc, dec = x[:, :half], x[:, half:]
    start = torch.zeros_like(dec[:, :1])  # T5's decoder_start_token_id is its pad id, 0
    inputs = {
        "input_ids": enc,
        "attention_mask": torch.ones_like(enc),
        "decoder_input_ids": torch.cat([start, dec[:, :-1]], dim=1),
    }
    return Batch(inputs, dec.reshape(-1), torch.ones_like(dec, dtype=torch.bool))


def _passages(
    tokenizer: Any, text: str, source: str, count: int, max_len: int, batch_size: int
) -> EvalSet:
    paras = [" ".join(p.split()) for p in _PARAGRAPH.split(text)]
    paras = [p for p in paras if 80 <= len(p) <= 600]
    if len(paras) < 2:
        raise DtlabError(
            f"the text is too short to compare embeddings: {len(paras)} paragraphs of 80 to 600 "
            "characters, retrieval needs at least 2"
        )
    step = max(1, len(paras) // count)
    chosen = tuple(paras[::step][:count])
    batches = []
    for i in range(0, len(chosen), batch_size):
        enc = tokenizer(
            list(chosen[i : i + batch_size]),
            padding=True,
            truncation=True,
            max_length=max_len,
            return_tensors="pt",
        )
        batches.append(Batch(dict(enc), None, None))
    return EvalSet(source, ModelKind.ENCODER, tuple(batches), len(chosen), max_len, 0, chosen)
