"""Small pre-quantized checkpoints written the way each library writes them, for the tests.

Every packer below re-implements its library's packing step (the code docs/prequantized.md
cites), so that dtlab's unpacking is checked against an independent writer, not against
itself. Each returns the checkpoint's folder and the weights the library's own dequantization
gives (the "known" weights), in logical shape and the library's output dtype.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]  # AutoAWQ WQLinear_GEMM.from_linear order_map
NF4 = [
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]  # fmt: skip  # bitsandbytes functional.get_4bit_type("nf4")
FP4 = [0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0, -0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0, -3.0]
E2M1 = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]


def write(folder: Path, tensors: dict[str, torch.Tensor], qc: dict[str, object] | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "model.safetensors"))
    config: dict[str, object] = {"model_type": "llama", "torch_dtype": "float16"}
    if qc is not None:
        config["quantization_config"] = qc
    (folder / "config.json").write_text(json.dumps(config))
    return folder


# ---- GPTQ: AutoGPTQ qlinear_cuda_old.QuantLinear.pack ----------------------------------------


def pack_rows(intweight: np.ndarray, bits: int) -> np.ndarray:
    """qweight[row] |= intweight[j] << (bits * (j - i)) for 32 / bits rows j per int32 row."""
    pf = 32 // bits
    out = np.zeros((intweight.shape[0] // pf, intweight.shape[1]), dtype=np.uint32)
    for row in range(out.shape[0]):
        for j in range(pf):
            out[row] |= intweight[row * pf + j].astype(np.uint32) << (bits * j)
    return out.astype(np.int32)


def pack_3bit(v: np.ndarray) -> np.ndarray:
    """AutoGPTQ's bits == 3 branch of pack, along axis 0: 32 values into 3 rows."""
    v = v.astype(np.uint32)
    out = np.zeros((v.shape[0] // 32 * 3, *v.shape[1:]), dtype=np.uint32)
    i = row = 0
    while row < out.shape[0]:
        for j in range(i, i + 10):
            out[row] |= v[j] << (3 * (j - i))
        i += 10
        out[row] |= v[i] << 30
        row += 1
        out[row] |= (v[i] >> 2) & 1
        i += 1
        for j in range(i, i + 10):
            out[row] |= v[j] << (3 * (j - i) + 1)
        i += 10
        out[row] |= v[i] << 31
        row += 1
        out[row] |= (v[i] >> 1) & 0x3
        i += 1
        for j in range(i, i + 10):
            out[row] |= v[j] << (3 * (j - i) + 2)
        i += 10
        row += 1
    return out.astype(np.int32)


def pack_cols(zeros: np.ndarray, bits: int, order: list[int] | None = None) -> np.ndarray:
    pf = 32 // bits
    order = order or list(range(pf))
    out = np.zeros((zeros.shape[0], zeros.shape[1] // pf), dtype=np.uint32)
    for col in range(out.shape[1]):
        for i in range(pf):
            out[:, col] |= zeros[:, col * pf + order[i]].astype(np.uint32) << (bits * i)
    return out.astype(np.int32)


def gptq_linear(
    out: int, inputs: int, bits: int, group: int, seed: int, *, desc_act: bool = False
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """One layer's tensors (names without the module prefix) and its known weight [out, in]."""
    g = torch.Generator().manual_seed(seed)
    maxq = 2**bits - 1
    size = group if group > 0 else inputs
    groups = math.ceil(inputs / size)
    scales = (torch.rand(groups, out, generator=g) * 0.02 + 0.001).half()
    zeros = torch.randint(1, maxq + 1, (groups, out), generator=g)  # v1 stores zero - 1 >= 0
    g_idx = torch.arange(inputs, dtype=torch.int32) // size
    if desc_act:
        g_idx = g_idx[torch.randperm(inputs, generator=g)]
    q = torch.randint(0, maxq + 1, (out, inputs), generator=g)
    # a weight that the pack rounds back to q: W = scale * (q - zero)
    W = scales.float()[g_idx.long()].T * (q - zeros[g_idx.long()].T)
    scale_zeros = zeros * scales.float()
    intweight = torch.round((W + scale_zeros[g_idx.long()].T) / scales.float()[g_idx.long()].T)
    assert torch.equal(intweight.long(), q), "the packer's rounding lost a code"
    codes, stored_zeros = intweight.T.numpy().astype(np.uint32), (zeros - 1).numpy()
    if bits == 3:
        qweight, qzeros = pack_3bit(codes), pack_3bit(stored_zeros.T).T
    else:
        qweight, qzeros = pack_rows(codes, bits), pack_cols(stored_zeros, bits)
    tensors = {
        "qweight": torch.from_numpy(qweight),
        "qzeros": torch.from_numpy(np.ascontiguousarray(qzeros)),
        "scales": scales,
        "g_idx": g_idx,
        "bias": torch.zeros(out, dtype=torch.float16),
    }
    # QuantLinear's dequantization: scales[g_idx] * (weight - zeros[g_idx]), fp16
    known = (scales[g_idx.long()] * (q.T - zeros[g_idx.long()]).to(torch.int16)).T
    return tensors, known


def gptq_checkpoint(
    folder: Path, *, bits: int = 4, group: int = 32, desc_act: bool = False, layers: int = 2
) -> tuple[Path, dict[str, torch.Tensor]]:
    tensors: dict[str, torch.Tensor] = {
        "model.embed_tokens.weight": torch.randn(64, 64).half(),
        "model.norm.weight": torch.ones(64, dtype=torch.float16),
    }
    known: dict[str, torch.Tensor] = {}
    for i in range(layers):
        for j, (name, shape) in enumerate((("q_proj", (64, 64)), ("up_proj", (128, 64)))):
            prefix = f"model.layers.{i}.{name}"
            parts, w = gptq_linear(*shape, bits, group, 10 * i + j, desc_act=desc_act)
            tensors.update({f"{prefix}.{k}": v for k, v in parts.items()})
            known[prefix + ".weight"] = w
    qc = {
        "quant_method": "gptq",
        "bits": bits,
        "group_size": group,
        "desc_act": desc_act,
        "sym": False,
        "checkpoint_format": "gptq",
    }
    return write(folder, tensors, qc), known


# ---- AWQ: AutoAWQ WQLinear_GEMM.from_linear ---------------------------------------------------


def awq_checkpoint(folder: Path, *, group: int = 32) -> tuple[Path, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(3)
    out, inputs = 48, 96
    groups = inputs // group
    q = torch.randint(0, 16, (inputs, out), generator=g)  # intweight after .t(): [in, out]
    zeros = torch.randint(0, 16, (groups, out), generator=g)
    scales = (torch.rand(groups, out, generator=g) * 0.05 + 0.001).half()
    tensors = {
        "layer.qweight": torch.from_numpy(pack_cols(q.numpy(), 4, AWQ_ORDER)),
        "layer.qzeros": torch.from_numpy(pack_cols(zeros.numpy(), 4, AWQ_ORDER)),
        "layer.scales": scales,
        "head.weight": torch.randn(8, 48).half(),
    }
    rows = torch.arange(inputs) // group
    known = ((q - zeros[rows]).to(torch.int8) * scales[rows]).T  # dequantize_gemm, [out, in]
    qc = {
        "quant_method": "awq",
        "bits": 4,
        "group_size": group,
        "zero_point": True,
        "version": "gemm",
    }
    return write(folder, tensors, qc), {"layer.weight": known}


# ---- bitsandbytes: backends/default/ops.py quantize_4bit, quantize_blockwise -----------------


def create_dynamic_map(max_exponent_bits: int = 7) -> torch.Tensor:
    """functional.create_dynamic_map, signed, total_bits=8 (no additional items)."""
    data: list[float] = []
    non_sign_bits = 7
    for i in range(max_exponent_bits):
        items = int(2 ** (i + non_sign_bits - max_exponent_bits) + 1)
        boundaries = torch.linspace(0.1, 1, items)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    data += [0, 1.0]
    data += [0] * (256 - len(data))
    data.sort()
    return torch.tensor(data)


def quantize_blockwise(
    a: torch.Tensor, code: torch.Tensor, blocksize: int
) -> tuple[torch.Tensor, torch.Tensor]:
    n = a.numel()
    rem = n % blocksize
    full = n - rem
    com = a[:full].reshape(-1, blocksize)
    absmax = com.abs().max(dim=-1)[0]
    scaled = torch.clamp(com * (1.0 / absmax.clamp(min=1e-38).view(-1, 1)), -1, 1).reshape(-1)
    if rem:
        am = a[full:].abs().max()
        absmax = torch.cat([absmax, am.unsqueeze(0)])
        scaled = torch.cat([scaled, torch.clamp(a[full:] * (1.0 / am.clamp(min=1e-38)), -1, 1)])
    bounds = (code[:-1] + code[1:]) / 2
    return torch.bucketize(scaled, bounds).to(torch.uint8), absmax


def quantize_4bit(
    a: torch.Tensor, quant_type: str, blocksize: int
) -> tuple[torch.Tensor, torch.Tensor]:
    code = torch.tensor(NF4 if quant_type == "nf4" else FP4)
    code = code / code.abs().max()
    order = torch.argsort(code)
    bounds = (code[order[:-1]] + code[order[1:]]) / 2
    flat = a.reshape(-1).float()
    n = flat.numel()
    rem = n % blocksize
    full = n - rem
    com = flat[:full].reshape(-1, blocksize)
    absmax = com.abs().max(dim=-1)[0]
    scaled = torch.clamp(com * (1.0 / absmax.clamp(min=1e-38).view(-1, 1)), -1, 1).reshape(-1)
    if rem:
        am = flat[full:].abs().max().clamp(min=1e-38)
        absmax = torch.cat([absmax, am.unsqueeze(0)])
        scaled = torch.cat([scaled, torch.clamp(flat[full:] / am, -1, 1)])
    if scaled.numel() % 2:
        scaled = torch.nn.functional.pad(scaled, (0, 1))
    q = torch.bucketize(scaled, bounds, out_int32=True)
    if quant_type != "nf4":
        q = order[q]
    q8 = q.to(torch.uint8)
    return ((q8[::2] << 4) | q8[1::2]).unsqueeze(1), absmax


def bnb4_linear(
    w: torch.Tensor, quant_type: str, nested: bool, blocksize: int = 64
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Linear4bit._save_to_state_dict: weight, then QuantState.as_dict(packed=True)."""
    packed, absmax = quantize_4bit(w, quant_type, blocksize)
    code = torch.tensor(NF4 if quant_type == "nf4" else FP4)
    code = code / code.abs().max()
    state: dict[str, object] = {
        "quant_type": quant_type,
        "blocksize": blocksize,
        "dtype": str(w.dtype).strip("torch."),
        "shape": list(w.shape),
    }
    parts = {"weight": packed, "weight.absmax": absmax, "weight.quant_map": code}
    real_absmax = absmax
    if nested:
        offset = absmax.mean()
        dyn = create_dynamic_map()
        qabs, abs2 = quantize_blockwise(absmax - offset, dyn, 256)
        parts.update(
            {
                "weight.absmax": qabs,
                "weight.nested_absmax": abs2,
                "weight.nested_quant_map": dyn.clone(),
            }
        )
        state.update(
            {"nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": offset.item()}
        )
        idx = torch.arange(qabs.numel()) // 256
        real_absmax = dyn[qabs.long()] * abs2[idx] + torch.tensor(offset.item())
    blob = torch.tensor(list(json.dumps(state).encode()), dtype=torch.uint8)
    parts[f"weight.quant_state.bitsandbytes__{quant_type}"] = blob
    # the known weight: code[nibble] * absmax[block], high nibble first, to the state's dtype
    raw = packed.reshape(-1)
    codes = torch.stack([raw >> 4, raw & 15], dim=1).reshape(-1)[: w.numel()].long()
    per = torch.arange(w.numel()) // blocksize
    known = (code[codes] * real_absmax[per]).to(w.dtype).reshape(w.shape)
    return parts, known


def bnb_checkpoint(
    folder: Path, quant_type: str, nested: bool
) -> tuple[Path, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(5)
    tensors: dict[str, torch.Tensor] = {"lm_head.weight": torch.randn(10, 40).bfloat16()}
    known = {}
    # 33 x 40 = 1320 values: 20 full blocks of 64 and a ragged one of 40; 3 x 7 is odd
    for name, shape in (("a.proj", (33, 40)), ("b.proj", (3, 7)), ("c.proj", (128, 160))):
        w = (torch.randn(*shape, generator=g) * 0.1).bfloat16()
        parts, k = bnb4_linear(w, quant_type, nested)
        tensors.update({f"{name}.{p}": v for p, v in parts.items()})
        known[f"{name}.weight"] = k
    qc = {
        "quant_method": "bitsandbytes",
        "load_in_4bit": True,
        "bnb_4bit_quant_type": quant_type,
        "bnb_4bit_use_double_quant": nested,
        "bnb_4bit_compute_dtype": "bfloat16",
    }
    return write(folder, tensors, qc), known


def bnb8_checkpoint(folder: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """Linear8bitLt._save_to_state_dict: int8 weight, SCB (row absmax), weight_format 0."""
    g = torch.Generator().manual_seed(8)
    w = torch.randn(24, 40, generator=g)
    scb = w.abs().max(dim=1)[0]
    cb = torch.round(w * (127 / scb.view(-1, 1))).to(torch.int8)  # int8_vectorwise_quant
    tensors = {
        "fc.weight": cb,
        "fc.SCB": scb,
        "fc.weight_format": torch.tensor(0, dtype=torch.uint8),
        "fc.bias": torch.zeros(24),
    }
    known = cb * scb.view(-1, 1) * 7.874015718698502e-3  # int8_vectorwise_dequant
    qc = {"quant_method": "bitsandbytes", "load_in_8bit": True}
    return write(folder, tensors, qc), {"fc.weight": known}


# ---- FP8: DeepSeek-V3 kernel.weight_quant; compressed-tensors ---------------------------------


def fp8_block_checkpoint(folder: Path, block: int = 128) -> tuple[Path, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(9)
    w = torch.randn(200, 300, generator=g)
    rb, cb = math.ceil(200 / block), math.ceil(300 / block)
    s = torch.zeros(rb, cb)
    y = torch.zeros(200, 300, dtype=torch.float8_e4m3fn)
    for i in range(rb):
        for j in range(cb):
            blk = w[i * block : (i + 1) * block, j * block : (j + 1) * block]
            s[i, j] = blk.abs().max() / 448.0
            y[i * block : (i + 1) * block, j * block : (j + 1) * block] = (blk / s[i, j]).to(
                torch.float8_e4m3fn
            )
    tensors = {
        "mlp.weight": y,
        "mlp.weight_scale_inv": s,
        "norm.weight": torch.ones(300).bfloat16(),
    }
    rows, cols = torch.arange(200) // block, torch.arange(300) // block
    known = (y.float() * s[rows][:, cols]).to(torch.bfloat16)  # weight_dequant -> bf16
    qc = {
        "quant_method": "fp8",
        "fmt": "e4m3",
        "activation_scheme": "dynamic",
        "weight_block_size": [block, block],
    }
    return write(folder, tensors, qc), {"mlp.weight": known}


def compressed_fp8_checkpoint(folder: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(11)
    w1 = torch.randn(32, 48, generator=g)
    s1 = (w1.abs().amax(dim=1, keepdim=True) / 448).bfloat16()  # channel: [out, 1]
    y1 = (w1 / s1.float()).to(torch.float8_e4m3fn)
    w2 = torch.randn(16, 48, generator=g)
    s2 = (w2.abs().max() / 448).reshape(1)  # tensor: [1], fp32
    y2 = (w2 / s2).to(torch.float8_e4m3fn)
    tensors = {
        "a.weight": y1,
        "a.weight_scale": s1,
        "a.input_scale": torch.tensor([0.02]),
        "b.weight": y2,
        "b.weight_scale": s2,
        "b.input_scale": torch.tensor([0.03]),
        "embed.weight": torch.randn(20, 48).bfloat16(),
    }
    known = {"a.weight": y1.to(torch.bfloat16) * s1, "b.weight": y2.to(torch.float32) * s2}
    weights = {"num_bits": 8, "type": "float", "strategy": "channel", "symmetric": True}
    qc = {
        "quant_method": "compressed-tensors",
        "format": "float-quantized",
        "quantization_status": "compressed",
        "config_groups": {
            "group_0": {
                "targets": ["Linear"],
                "weights": weights,
                "input_activations": {"num_bits": 8, "type": "float"},
            }
        },
    }
    return write(folder, tensors, qc), known


# ---- MXFP4: gpt-oss, transformers convert_moe_packed_tensors --------------------------------


def mxfp4_checkpoint(folder: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(13)
    blocks = torch.randint(0, 256, (2, 6, 3, 16), generator=g, dtype=torch.int64).to(torch.uint8)
    scales = torch.randint(112, 135, (2, 6, 3), generator=g, dtype=torch.int64).to(torch.uint8)
    tensors = {
        "experts.gate_up_proj_blocks": blocks,
        "experts.gate_up_proj_scales": scales,
        "experts.gate_up_proj_bias": torch.zeros(2, 6),
    }
    lut = torch.tensor(E2M1, dtype=torch.float64)
    lo, hi = lut[(blocks & 15).long()], lut[(blocks >> 4).long()]
    vals = torch.stack([lo, hi], dim=-1).reshape(2, 6, 3, 32)  # element 2k low, 2k+1 high
    vals = vals * torch.exp2(scales.double() - 127).unsqueeze(-1)
    known = vals.reshape(2, 6, 96).to(torch.bfloat16)  # exact: 2 significant bits
    qc = {"quant_method": "mxfp4", "modules_to_not_convert": ["router"]}
    return write(folder, tensors, qc), {"experts.gate_up_proj": known}
