"""GGML's legacy quantizers (q8_0, q4_0, q4_1, q5_0, q5_1), byte for byte what gguf-py's
gguf.quants.quantize writes, on random and adversarial blocks, in the C kernel and the torch
twin; and their values as gguf.quants.dequantize decodes them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType
from gguf.quants import dequantize, quantize

from dtlab.analysis.ggufquant import ggml_dequantize, ggml_metrics, ggml_quantize
from dtlab.kernels import native
from dtlab.kernels.ggml import ggml_quantize_blocks

TYPES = ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1")
PATHS = [True, False] if native.has_ggml_kernel() else [False]


def _blocks() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(12)
    r = torch.randn(64, 32, generator=g)
    row = torch.arange(32.0)
    return {
        "random": torch.cat([r, r * 1e-3, r * 300, torch.rand(64, 32, generator=g) - 0.2]),
        "all zero": torch.zeros(2, 32),
        "all -0": -torch.zeros(2, 32),
        "constant": torch.stack([torch.full((32,), v) for v in (0.7, -3.0, 1e-3, 65504.0)]),
        "one outlier": torch.cat([r[:4, :31] * 1e-3, torch.tensor([[100.0], [-100.0]] * 2)], 1),
        "ties of largest magnitude": torch.stack([row * 0 + s for s in (1.0, -1.0)]).repeat(1, 1)
        * torch.tensor([1.0, -1.0] * 16),
        "negative max": torch.stack([torch.rand(32, generator=g) * 4 - 5 for _ in range(4)]),
        "halves": torch.stack([(row - 16) / 2, (row - 15.5) * 127 / 16, (row - 16) * 8 / 16]),
        "subnormal-ish": torch.stack(
            [r[0] * s for s in (1e-30, 1e-36, 3e-37, 1e-38, 1e-40, 1e-44)]
        ),
        "float16 extremes": torch.stack([r[1] * 1e5, r[2] * 1e-6, r[3] * 6e-8, r[4] * 7e4]),
    }


BLOCKS = _blocks()


def gguf_bytes(x: torch.Tensor, name: str) -> np.ndarray:
    qtype = GGMLQuantizationType[name]
    with np.errstate(all="ignore"):  # gguf-py's 1/d overflows on the subnormal-ish blocks
        return quantize(x.numpy(), qtype)


@pytest.mark.parametrize("use_c", PATHS)
@pytest.mark.parametrize("name", TYPES)
@pytest.mark.parametrize("case", sorted(BLOCKS))
def test_codes_are_gguf_pys_byte_for_byte(case: str, name: str, use_c: bool) -> None:
    x = BLOCKS[case]
    want = gguf_bytes(x, name)
    got, _ = ggml_quantize_blocks(x, name, use_c=use_c)
    assert got.shape == want.shape and np.array_equal(got.numpy(), want)


@pytest.mark.parametrize("name", TYPES)
@pytest.mark.parametrize("case", sorted(BLOCKS))
def test_values_are_gguf_dequantize(case: str, name: str) -> None:
    x = BLOCKS[case]
    q = ggml_quantize(x, name.lower())
    want = dequantize(gguf_bytes(x, name), GGMLQuantizationType[name])
    got = q.dequantize().numpy()
    assert np.array_equal(got.view(np.int32), want.view(np.int32))
    again = ggml_dequantize(torch.from_numpy(gguf_bytes(x, name)), name).numpy()
    assert np.array_equal(again.view(np.int32), want.reshape(-1).view(np.int32))


@pytest.mark.parametrize("use_c", PATHS)
@pytest.mark.parametrize("name", ["Q4_1", "Q5_1"])
def test_a_min_among_zeros_of_both_signs_follows_ggmls_c(name: str, use_c: bool) -> None:
    """gguf-py's numpy min picks among equal zeros by SIMD lane (here: the last one, often);
    ggml's C keeps the first. dtlab keeps the first: only m's sign bit may differ."""
    x = torch.tensor([[0.0, -0.0] * 16, [-0.0, 0.0] * 16, [1.0] + [-0.0, 0.0] * 15 + [2.0]])
    got, _ = ggml_quantize_blocks(x, name, use_c=use_c)
    want = gguf_bytes(x, name)
    assert [int(b) for b in got[:, 3]] == [0x00, 0x80, 0x80]  # the first zero's sign
    same = got.numpy().copy()
    same[:, 3] = want[:, 3]
    assert np.array_equal(same, want)  # every other byte agrees
    assert np.array_equal(  # and so do the values: -0 + d*q is d*q
        ggml_dequantize(got, name).numpy(), dequantize(want, GGMLQuantizationType[name]).ravel()
    )


def test_big_random_tensors_agree_in_both_paths() -> None:
    x = torch.randn(512, 4096, generator=torch.Generator().manual_seed(1)) * 0.02
    for name in TYPES:
        want = gguf_bytes(x, name)
        for use_c in PATHS:
            got, _ = ggml_quantize_blocks(x.reshape(-1, 32), name, use_c=use_c)
            assert np.array_equal(got.numpy().reshape(want.shape), want), (name, use_c)


def test_rows_that_are_not_whole_blocks_repeat_their_last_value() -> None:
    x = torch.randn(3, 40, generator=torch.Generator().manual_seed(2))
    q = ggml_quantize(x, "q4_1")
    padded = torch.cat([x, x[:, -1:].expand(3, 24)], dim=1)
    assert np.array_equal(q.data.numpy(), gguf_bytes(padded, "Q4_1"))
    assert q.dequantize().shape == (3, 40)


def test_float64_and_bf16_inputs_are_rounded_to_float32_first() -> None:
    x = torch.randn(4, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    assert torch.equal(ggml_quantize(x, "q8_0").data, ggml_quantize(x.float(), "q8_0").data)
    assert ggml_quantize(x.bfloat16(), "q5_0").dequantize().dtype == torch.bfloat16


def test_metrics_count_the_clipped_codes() -> None:
    r = ggml_metrics(torch.tensor([[-1.0] + [0.5] * 30 + [1.0]]), "q4_0")
    # max is -1 (the first of largest magnitude), so +1 would be code 16: clipped to 15
    assert (r.blocks, r.clipped, str(r.effective_bits)) == (1, 1, "9/2")
    assert r.metrics.overflow == 1 and r.metrics.max_abs_error == 0.125
