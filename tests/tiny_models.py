"""Tiny random Hugging Face models saved as local folders (no downloads): Llama, GPT-2, BERT
and T5 configs of hidden size 32 and 2 layers, with the embedded MiniLM's WordPiece tokenizer
(vocab 30522) so that real text tokenizes."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import torch

from dtlab.checkpoint import embedded_model
from dtlab.models.loading import quiet_transformers

_TOKENIZER_FILES = (
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)
VOCAB = 30522


def _tokenizer_into(folder: Path) -> None:
    src = embedded_model().parent
    for name in _TOKENIZER_FILES:
        shutil.copy(src / name, folder / name)


def _llama() -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(cfg)


def _gpt2() -> torch.nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(
        vocab_size=VOCAB,
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_positions=256,
        bos_token_id=101,
        eos_token_id=102,
    )
    return GPT2LMHeadModel(cfg)


def _bert() -> torch.nn.Module:
    from transformers import BertConfig, BertModel

    cfg = BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=256,
    )
    return BertModel(cfg)


def _t5() -> torch.nn.Module:
    from transformers import T5Config, T5ForConditionalGeneration

    cfg = T5Config(
        vocab_size=VOCAB,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        decoder_start_token_id=0,
        pad_token_id=0,
    )
    return T5ForConditionalGeneration(cfg)


BUILDERS: dict[str, Callable[[], torch.nn.Module]] = {
    "llama": _llama,
    "gpt2": _gpt2,
    "bert": _bert,
    "t5": _t5,
}


def save_tiny(
    kind: str, folder: Path, *, edit: Callable[[torch.nn.Module], None] | None = None
) -> Path:
    """A tiny model of ``kind`` with seeded random weights, saved in ``folder``."""
    torch.manual_seed(0)
    model = BUILDERS[kind]()
    if edit is not None:
        with torch.no_grad():
            edit(model)
    folder.mkdir(parents=True, exist_ok=True)
    quiet_transformers()
    model.save_pretrained(folder)
    _tokenizer_into(folder)
    return folder
