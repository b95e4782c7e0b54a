"""Every one of the 2**32 float32 bit patterns through the C kernel, against ml_dtypes (numpy
for fp16) and against the pure-torch kernel (nearest-even). Slow: 256 chunks of 2**24 patterns,
one test each (run a few with ``-m slow -k chunk_07f``; each takes 40 to 60 s on two cores,
all of them about three hours).

ml_dtypes is compared under its own policy: dtlab's default (inf-nan; fp6/fp4 saturate) for
floats, toward-zero with wrap-around for its integers. The known differences (FORMATS.md
section 2; also asserted, each one still occurring, in test_kernels_reference.py) are applied
as explicit expectations; NaN signs and payloads are not compared, NaN positions are.
"""

from __future__ import annotations

import pytest
import torch

from dtlab.kernels import quantize
from references import ML_FLOATS, ML_INTS, ML_RULES, assert_same, ml_cast

CHUNK_BITS = 24
CHUNKS = 1 << (32 - CHUNK_BITS)
SLICE = 1 << 22  # the pure-torch kernel works in float64: compare it a slice at a time

pytestmark = pytest.mark.usefixtures("_one_thread")  # tests/conftest.py


def _chunk(k: int) -> torch.Tensor:
    start = k << CHUNK_BITS
    bits = torch.arange(start, start + (1 << CHUNK_BITS), dtype=torch.int64)
    return bits.to(torch.int32).view(torch.float32)  # wraps to the signed patterns


@pytest.mark.slow
@pytest.mark.parametrize("k", range(CHUNKS), ids=lambda k: f"chunk_{k:03x}")
def test_every_float32(k: int) -> None:
    """Chunk k holds the patterns k * 2**24 .. (k + 1) * 2**24 - 1 (its id is their top byte)."""
    x = _chunk(k)
    for name in ML_FLOATS:
        d = quantize(x, name, backend="c")
        want = d
        for rule in ML_RULES.get(name, []):  # not asserted to fire here: a chunk may lack any
            want = torch.where(rule.where(x, d), rule.value(x, d).to(d.dtype), want)
        assert_same(x, ml_cast(x, name), want, f"ml_dtypes {name}")
    for name in ML_INTS:
        want = quantize(x, name, rounding="toward-zero", overflow="wrap", backend="c")
        assert_same(x, ml_cast(x, name), want, f"ml_dtypes {name}")
    for name in ML_FLOATS:
        for part in x.split(SLICE):
            c = quantize(part, name, backend="c")
            assert_same(part, c, quantize(part, name, backend="torch"), f"c/torch {name}")


def test_chunks_cover_every_pattern() -> None:
    """The first and last patterns of the first and last chunks, and the chunk of 1.0."""
    first, last = _chunk(0).view(torch.int32), _chunk(CHUNKS - 1).view(torch.int32)
    assert int(first[0]) == 0 and int(first[-1]) == (1 << CHUNK_BITS) - 1
    assert int(last[0]) & 0xFFFFFFFF == 0xFF000000 and int(last[-1]) == -1
    one = 0x3F800000
    assert float(_chunk(one >> CHUNK_BITS)[one & ((1 << CHUNK_BITS) - 1)]) == 1.0
