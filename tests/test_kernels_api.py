"""The tensor API as a caller uses it: dtypes, out=, in place, options, errors, specials."""

import math

import pytest
import torch

from dtlab.errors import OptionError
from dtlab.kernels import (
    code_dtype,
    decode,
    encode,
    has_c_kernel,
    pack,
    packed_size,
    quantize,
    to_dtype,
    unpack,
)

BACKENDS = ["torch", "c"] if has_c_kernel() else ["torch"]
SPECIALS = torch.tensor([0.0, -0.0, float("inf"), -float("inf"), float("nan"), 1e30, -1e30, 1e-30])


def bits_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    a64, b64 = a.double(), b.double()
    same = (a64.view(torch.int64) == b64.view(torch.int64)) | (a64.isnan() & b64.isnan())
    return bool(same.all())


def test_the_c_kernel_was_built_by_the_install() -> None:
    # make test installs the package, which compiles the kernel; a silent fallback would hide it
    assert has_c_kernel()


@pytest.mark.parametrize("backend", BACKENDS)
def test_lesson_values(backend: str) -> None:
    x = torch.tensor([1 / 3, 0.1, 1000.0, -3.3])
    assert quantize(x, "bf16", backend=backend).tolist() == [
        0.333984375,
        0.10009765625,
        1000.0,
        -3.296875,
    ]
    fp8 = quantize(x, "fp8", backend=backend, overflow="saturate")
    assert fp8.tolist() == [0.34375, 0.1015625, 448.0, -3.25]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_every_input_dtype_gives_the_float64_answer(backend: str, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(5000, generator=g) * 50).to(dtype)
    x = torch.cat([x, SPECIALS.to(dtype)])
    for fmt in ("fp8", "e5m2", "fp4", "e8m0", "int4", "bf16"):
        got = quantize(x, fmt, backend=backend)
        assert got.dtype == dtype
        want = quantize(x.double(), fmt, backend="torch").to(dtype)
        assert bits_equal(got, want), (fmt, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_and_in_place(backend: str) -> None:
    x = torch.randn(1000) * 100
    want = quantize(x, "fp8", backend=backend)
    out = torch.empty_like(x)
    assert quantize(x, "fp8", out=out, backend=backend) is out and bits_equal(out, want)
    y = x.clone()
    assert quantize(y, "fp8", out=y, backend=backend) is y and bits_equal(y, want)
    strided = x.reshape(100, 10).t()
    assert bits_equal(quantize(strided, "fp8", backend=backend), want.reshape(100, 10).t())
    with pytest.raises(OptionError, match="shape, dtype and device"):
        quantize(x, "fp8", out=torch.empty(3))


def test_specials_follow_the_documented_policy() -> None:
    x = SPECIALS
    fp8 = quantize(x, "fp8")
    assert fp8[:2].tolist() == [0.0, -0.0] and math.copysign(1, fp8[1].item()) < 0
    assert fp8[2:7].isnan().all() and fp8[7] == 0  # no inf in e4m3fn: NaN; 1e-30 underflows
    sat = quantize(x, "fp8", overflow="saturate")
    assert sat[2:7].tolist()[:2] == [448.0, -448.0] and sat[4].isnan()
    fp4 = quantize(x, "fp4")
    assert fp4[2:7].tolist() == [6.0, -6.0, 0.0, 6.0, -6.0]  # no NaN code: NaN becomes +0
    assert math.copysign(1, fp4[4].item()) > 0
    e5m2 = quantize(x, "e5m2")
    assert e5m2[2:4].tolist() == [math.inf, -math.inf] and e5m2[5:7].tolist() == [
        math.inf,
        -math.inf,
    ]
    fnuz = quantize(x, "e4m3fnuz")
    assert math.copysign(1, fnuz[1].item()) > 0  # no -0 in fnuz
    e8m0 = quantize(torch.tensor([0.0, -0.0, -2.0, 3.0, 1.5]), "e8m0")
    assert (
        e8m0[:2].tolist() == [2.0**-127] * 2 and e8m0[2].isnan() and e8m0[3:].tolist() == [4.0, 2.0]
    )
    i8 = quantize(x, "int8")
    assert i8.tolist() == [0.0, 0.0, 127.0, -128.0, 0.0, 127.0, -128.0, 0.0]
    wrapped = quantize(
        torch.tensor([200.0, -129.0, 300.7]), "int8", overflow="wrap", rounding="toward-zero"
    )
    assert wrapped.tolist() == [-56.0, 127.0, 44.0]  # as torch's float->int8 cast


def test_flush_subnormals() -> None:
    x = torch.tensor([2.0**-9, -(2.0**-8), 2.0**-6, 2.0**-7 * 1.5])
    assert quantize(x, "fp8").tolist() == [2.0**-9, -(2.0**-8), 2.0**-6, 2.0**-7 * 1.5]
    flushed = quantize(x, "fp8", subnormals="flush")
    assert flushed.tolist() == [0.0, -0.0, 2.0**-6, 0.0]


def test_rounding_modes_on_a_tie_and_off_it() -> None:
    x = torch.tensor([2.5, -2.5, 2.2, -2.2])
    expect = {
        "nearest-even": [2, -2, 2, -2],
        "nearest-away": [3, -3, 2, -2],
        "toward-zero": [2, -2, 2, -2],
        "up": [3, -2, 3, -2],
        "down": [2, -3, 2, -3],
    }
    for mode, want in expect.items():
        for backend in BACKENDS:
            assert quantize(x, "int8", rounding=mode, backend=backend).tolist() == want, mode


def test_stochastic_rounding_is_seeded() -> None:
    x = torch.full((10000,), 0.3)
    a = quantize(x, "fp8", rounding="stochastic", generator=torch.Generator().manual_seed(1))
    b = quantize(x, "fp8", rounding="stochastic", generator=torch.Generator().manual_seed(1))
    c = quantize(x, "fp8", rounding="stochastic", generator=torch.Generator().manual_seed(2))
    assert bits_equal(a, b) and not bits_equal(a, c)
    assert set(a.unique().tolist()) == {0.28125, 0.3125}


def test_encode_decode_round_trip() -> None:
    x = torch.tensor([448.0, -0.0, 1.0, 0.1, float("nan")])
    codes = encode(x, "fp8")
    assert codes.dtype == torch.uint8 and codes.tolist() == [0x7E, 0x80, 0x38, 0x1D, 0x7F]
    back = decode(codes, "fp8")
    assert back[:4].tolist() == [448.0, -0.0, 1.0, 0.1015625] and back[4].isnan()
    h = encode(torch.tensor([-2.0, 65504.0]), "fp16")
    assert h.dtype == torch.int16 and bits_equal(
        h.view(torch.float16), torch.tensor([-2.0, 65504.0])
    )
    assert code_dtype(__import__("dtlab").get_format("tf32")) == torch.int32
    tf = encode(torch.tensor([1 / 3]), "tf32")
    assert decode(tf, "tf32").item() == quantize(torch.tensor([1 / 3]), "tf32").item()
    assert decode(encode(torch.tensor([-5.0, 7.0]), "int4"), "int4").tolist() == [-5.0, 7.0]
    with pytest.raises(OptionError, match="integer codes"):
        decode(torch.tensor([1.0]), "fp8")


def test_pack_order_and_round_trip() -> None:
    codes = torch.tensor([1, 2, 3], dtype=torch.uint8)
    assert pack(codes, 4).tolist() == [0x21, 0x03]  # element 0 in the low nibble
    assert pack(torch.tensor([1, 2, 3, 0], dtype=torch.uint8), 2).tolist() == [0b00111001]
    six = pack(torch.tensor([0x3F, 0, 0x15, 0x2A], dtype=torch.uint8), 6)
    assert six.tolist() == [0x3F, 0x50, 0xA9]  # one little-endian 24-bit word
    for bits in range(1, 9):
        n = 37
        c = torch.randint(0, 1 << bits, (n,), dtype=torch.uint8)
        p = pack(c, bits)
        assert p.numel() == packed_size(n, bits) and unpack(p, bits, n).tolist() == c.tolist()
    with pytest.raises(OptionError, match="need"):
        unpack(torch.zeros(1, dtype=torch.uint8), 4, 3)


def test_to_dtype_gives_native_tensors() -> None:
    x = torch.tensor([1000.0, 0.1, -3.3, 1e-9])
    t = to_dtype(x, "fp8", overflow="saturate")
    assert t.dtype == torch.float8_e4m3fn and t.float().tolist() == [448.0, 0.1015625, -3.25, 0.0]
    assert to_dtype(x, "e5m2").dtype == torch.float8_e5m2
    fp4 = to_dtype(torch.tensor([[1.0, 6.0, -0.5, 0.0]]), "fp4")
    assert fp4.dtype == torch.float4_e2m1fn_x2 and fp4.shape == (1, 2)
    assert fp4.view(torch.uint8).tolist() == [[0x72, 0x09]]
    with pytest.raises(OptionError, match="no usable dtype"):
        to_dtype(x, "fp6")


def test_bad_arguments() -> None:
    with pytest.raises(OptionError, match="float32/float64"):
        quantize(torch.tensor([1, 2]), "fp8")
    with pytest.raises(OptionError, match="unknown rounding"):
        quantize(torch.tensor([1.0]), "fp8", rounding="sideways")
    with pytest.raises(OptionError, match="wrap-around"):
        quantize(torch.tensor([1.0]), "fp8", overflow="wrap")
    with pytest.raises(OptionError, match="beyond float64"):
        quantize(torch.tensor([1.0]), "e12m3")


def test_torch_path_works_in_chunks_with_global_stochastic_indices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dtlab.kernels.reference as ref

    x = torch.randn(10_000) * 10
    g = torch.Generator().manual_seed(5)
    whole = quantize(x, "fp8", rounding="stochastic", generator=g, backend="torch")
    monkeypatch.setattr(ref, "CHUNK", 777)
    g = torch.Generator().manual_seed(5)
    chunked = quantize(x, "fp8", rounding="stochastic", generator=g, backend="torch")
    assert bits_equal(whole, chunked)
    if has_c_kernel():
        g = torch.Generator().manual_seed(5)
        assert bits_equal(
            whole, quantize(x, "fp8", rounding="stochastic", generator=g, backend="c")
        )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda_matches_the_cpu_kernels_and_torch_casts() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(-(2**31), 2**31, (1 << 20,), generator=g, dtype=torch.int64)
    x = x.to(torch.int32).view(torch.float32)
    for fmt, native, policy in [
        ("bf16", torch.bfloat16, None), ("fp16", torch.float16, None),
        ("fp8", torch.float8_e4m3fn, "saturate"), ("e5m2", torch.float8_e5m2, None),
        ("e4m3fnuz", torch.float8_e4m3fnuz, None), ("e5m2fnuz", torch.float8_e5m2fnuz, None),
    ]:  # fmt: skip
        cpu = quantize(x, fmt, overflow=policy)
        gpu = quantize(x.cuda(), fmt, overflow=policy).cpu()
        assert bits_equal(cpu, gpu), fmt
        # inside the range: overflow rules differ by torch version and device, rounding does not
        inside = x.abs() <= torch.finfo(native).max
        cast = x.cuda().to(native).float().cpu()
        assert bits_equal(cpu[inside], cast[inside]), fmt


def test_the_tensor_api_is_re_exported_lazily() -> None:
    import subprocess
    import sys

    import dtlab
    import dtlab.kernels as k

    assert dtlab.quantize is k.quantize and dtlab.unpack is k.unpack
    assert dtlab.encode is k.encode and dtlab.decode is k.decode and dtlab.pack is k.pack
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = dtlab.nope  # type: ignore[attr-defined]
    probe = "import sys, dtlab; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
