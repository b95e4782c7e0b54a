"""Codes with scales beside them: bitsandbytes 4-bit and int8, FP8 with block scales
(DeepSeek-V3), compressed-tensors FP8, and MXFP4 (gpt-oss). Layouts: docs/prequantized.md.

No torch here: shapes, configs and bitsandbytes' small quant-state blobs only.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from dtlab.checkpoint.header import CheckpointError, TensorEntry, parse_json, show
from dtlab.checkpoint.prequant.layout import (
    Family,
    Layout,
    PackedWeight,
    Scheme,
    bad,
    ceil_div,
    expect,
    packed,
)

BNB_STATE = ".quant_state.bitsandbytes__"
MAX_STATE_BYTES = 1 << 16  # a quant-state blob is a few dozen bytes of JSON
BNB_BLOCKS = (32, 64, 128, 256, 512, 1024, 2048, 4096)  # functional.dequantize_4bit
BNB_DTYPES = {"float16": "F16", "bfloat16": "BF16", "float32": "F32"}
_FLOAT_SCALES = ("F32", "BF16", "F16")


def read_small(e: TensorEntry, cap: int) -> bytes:
    """The bytes of a small tensor, read directly (no torch); a larger one is refused."""
    if e.nbytes > cap:
        raise bad(e, f"holds {e.nbytes} bytes; a quantization state of over {cap} is not read")
    begin, end = e.file_range
    try:
        with open(e.file, "rb") as f:
            f.seek(begin)
            raw = f.read(end - begin)
    except OSError as exc:
        raise CheckpointError(f"{show(e.file)}: cannot read ({exc.strerror or exc})") from None
    if len(raw) != end - begin:
        raise CheckpointError(f"{show(e.file)}: the file changed since it was opened")
    return raw


# ---- bitsandbytes ---------------------------------------------------------------------------


def bitsandbytes(
    config: Path | None, qc: dict[str, Any], by_name: dict[str, TensorEntry]
) -> Layout:
    four = tuple(_bnb4(by_name, n) for n in by_name if BNB_STATE in n)
    eight = tuple(_bnb8(by_name, n[: -len(".SCB")]) for n in by_name if n.endswith(".SCB"))
    weights = four + eight
    kinds = sorted({w.label for w in weights})
    if not weights:
        return Layout(
            "bitsandbytes",
            False,
            "bitsandbytes, no quantized tensor found",
            config,
            (),
            note="the config says bitsandbytes but no tensor has a quant_state blob or an SCB "
            "beside it (a model saved before quantizing?): counts are of the stored tensors",
        )
    return Layout("bitsandbytes", True, f"bitsandbytes: {', '.join(kinds)}", config, weights)


def _bnb_state(blob: TensorEntry) -> dict[str, Any]:
    state = parse_json(read_small(blob, MAX_STATE_BYTES), show(blob.file), f"{blob.name!r}")
    if not isinstance(state, dict):
        raise bad(blob, "is not a JSON object")
    quant_type, block, dtype = state.get("quant_type"), state.get("blocksize"), state.get("dtype")
    shape = state.get("shape")
    if quant_type not in ("nf4", "fp4") or not blob.name.endswith(BNB_STATE + str(quant_type)):
        raise bad(blob, f"names quant_type {quant_type!r}; bitsandbytes 4-bit is nf4 or fp4")
    if block not in BNB_BLOCKS or dtype not in BNB_DTYPES:
        raise bad(blob, f"has blocksize {block!r} and dtype {dtype!r}: not a bitsandbytes state")
    if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
        raise bad(blob, f"has shape {shape!r}, not a list of dimensions")
    if len(shape) > 64:
        raise bad(blob, "has a shape of rank over 64")
    return state


def _bnb4(by_name: dict[str, TensorEntry], blob_name: str) -> PackedWeight:
    prefix = blob_name[: blob_name.index(BNB_STATE)]  # "....q_proj.weight"
    blob = by_name[blob_name]
    state = _bnb_state(blob)
    weight = by_name.get(prefix)
    if weight is None:
        raise bad(blob, f"has no packed weight {prefix!r} beside it")
    shape = tuple(state["shape"])
    n = math.prod(shape)
    if weight.nbytes != ceil_div(n, 2):
        raise bad(
            weight,
            f"holds {weight.nbytes} bytes; shape {list(shape)} packs into "
            f"{ceil_div(n, 2)} (two 4-bit codes a byte)",
        )
    blocks = ceil_div(n, state["blocksize"])
    nested = "nested_blocksize" in state
    names = ["absmax", "quant_map"] + (["nested_absmax", "nested_quant_map"] if nested else [])
    parts: dict[str, TensorEntry | None] = {"weight": weight}
    for role in names:
        parts[role] = by_name.get(f"{prefix}.{role}")
        if parts[role] is None:
            raise bad(weight, f"has no {prefix}.{role} beside it")
    parts["state"] = blob
    absmax = parts["absmax"]
    assert absmax is not None
    expect(absmax, ("U8",) if nested else ("F32",), None, "a bitsandbytes absmax")
    if absmax.numel != blocks:
        raise bad(
            absmax,
            f"has {absmax.numel} values; {n} weights in blocks of "
            f"{state['blocksize']} need {blocks}",
        )
    scheme = Scheme(bits=4, group_size=state["blocksize"], table=state["quant_type"])
    if nested:
        scheme = _nested(parts, state, blocks, scheme)
    dq = "double-quantized " if nested else ""
    how = (Family.BNB_4BIT, f"bnb {state['quant_type']} {dq}b{state['blocksize']}", scheme)
    return packed(weight, prefix, shape, BNB_DTYPES[state["dtype"]], how, parts)


def _nested(
    parts: dict[str, TensorEntry | None], state: dict[str, Any], blocks: int, scheme: Scheme
) -> Scheme:
    nb, offset = state.get("nested_blocksize"), state.get("nested_offset")
    blob = parts["state"]
    assert blob is not None
    if type(nb) is not int or nb < 1 or not isinstance(offset, (int, float)):
        raise bad(blob, f"has nested_blocksize {nb!r} and nested_offset {offset!r}")
    if state.get("nested_dtype") != "float32":
        raise bad(blob, f"has nested_dtype {state.get('nested_dtype')!r}, not float32")
    nested, code = parts["nested_absmax"], parts["nested_quant_map"]
    assert nested is not None and code is not None
    expect(nested, ("F32",), None, "a nested absmax")
    expect(code, ("F32",), None, "a nested quant map")
    if nested.numel != ceil_div(blocks, nb) or code.numel != 256:
        raise bad(
            nested,
            f"has {nested.numel} values ({code.numel} in the map): {blocks} "
            f"absmax values in blocks of {nb} need {ceil_div(blocks, nb)} (and 256)",
        )
    return Scheme(
        scheme.bits,
        scheme.group_size,
        table=scheme.table,
        nested_block=nb,
        nested_offset=float(offset),
    )


def _bnb8(by_name: dict[str, TensorEntry], prefix: str) -> PackedWeight:
    scb = by_name[prefix + ".SCB"]
    weight = by_name.get(prefix + ".weight")
    if weight is None:
        raise bad(scb, f"has no {prefix}.weight beside it")
    expect(weight, ("I8",), 2, "a bitsandbytes int8 weight")
    expect(scb, ("F32",), 1, "SCB")
    if scb.shape[0] != weight.shape[0]:
        raise bad(scb, f"has {scb.shape[0]} row scales; the weight has {weight.shape[0]} rows")
    fmt = by_name.get(prefix + ".weight_format")
    if fmt is not None and read_small(fmt, 8) not in (b"\x00", b""):
        raise bad(fmt, "is not 0: dtlab reads the row-major int8 layout only")
    parts = {"weight": weight, "SCB": scb, "weight_format": fmt}
    how = (Family.BNB_INT8, "bnb int8 row-wise", Scheme(bits=8))
    return packed(weight, weight.name, weight.shape, "F32", how, parts)


# ---- FP8 ------------------------------------------------------------------------------------


def fp8_block(config: Path | None, qc: dict[str, Any], by_name: dict[str, TensorEntry]) -> Layout:
    block = qc.get("weight_block_size")
    fmt = qc.get("fmt", "e4m3")
    if fmt != "e4m3" or not (
        isinstance(block, list) and len(block) == 2 and all(type(b) is int and b > 0 for b in block)
    ):
        return Layout(
            "fp8",
            False,
            f"fp8, fmt {fmt!r}, weight_block_size {block!r}",
            config,
            (),
            note="dtlab reads fp8 e4m3 with a weight_block_size [rows, cols] (DeepSeek-V3's "
            "layout) only: counts are of the stored tensors",
        )
    br, bc = block
    weights = tuple(
        _scaled_fp8(by_name, n[:-10], "weight_scale_inv", (br, bc), Family.FP8_BLOCK)
        for n in by_name
        if n.endswith(".weight_scale_inv")
    )
    return _fp8_layout(
        "fp8", f"FP8 e4m3 with one fp32 scale per {br}x{bc} block", config, weights, by_name
    )


def _scaled_fp8(
    by_name: dict[str, TensorEntry],
    name: str,
    scale_role: str,
    block: tuple[int, int] | None,
    family: Family,
) -> PackedWeight:
    prefix = name[: -len(".weight")]
    scale = by_name[f"{prefix}.{scale_role}"]
    weight = by_name.get(name)
    if weight is None:
        raise bad(scale, f"has no {name!r} beside it")
    expect(weight, ("F8_E4M3",), 2, "an FP8 weight")
    expect(scale, _FLOAT_SCALES, None, "an FP8 scale")
    rows, cols = weight.shape
    br, bc = block or _inferred_block(weight, scale)
    want = (ceil_div(rows, br), ceil_div(cols, bc))
    per_tensor = scale.numel == 1 and want == (1, 1)
    if not per_tensor and scale.shape != want:
        raise bad(
            scale,
            f"has shape {list(scale.shape)}; a [{rows}, {cols}] weight in "
            f"blocks of {br}x{bc} needs [{want[0]}, {want[1]}]",
        )
    parts: dict[str, TensorEntry | None] = {"weight": weight, "scale": scale}
    if family is Family.CT_FP8:
        parts["zero_point"] = by_name.get(prefix + ".weight_zero_point")
        parts["input_scale"] = by_name.get(prefix + ".input_scale")
    dtype = "BF16" if family is Family.FP8_BLOCK else scale.dtype
    what = "per-tensor" if (br, bc) == (rows, cols) else f"{br}x{bc}-block"
    what = "per-channel" if (br, bc) == (1, cols) and rows > 1 else what
    how = (family, f"fp8 e4m3 {what} scales", Scheme(bits=8, block=(br, bc)))
    return packed(weight, name, weight.shape, dtype, how, parts)


def _inferred_block(weight: TensorEntry, scale: TensorEntry) -> tuple[int, int]:
    """compressed-tensors' own rule (``dequantize`` with no args) from the scale's shape."""
    rows, cols = weight.shape
    if len(scale.shape) <= 1 and scale.numel == 1:
        return rows, cols
    if len(scale.shape) == 2 and scale.shape[1] == 1 and scale.shape[0] == rows:
        return 1, cols
    if len(scale.shape) == 2 and scale.shape[0] in (1, rows) and cols % scale.shape[1] == 0:
        return (rows if scale.shape[0] == 1 else 1), cols // scale.shape[1]
    if len(scale.shape) == 2 and 0 not in scale.shape:
        return rows // scale.shape[0] or 1, cols // scale.shape[1] or 1
    raise bad(scale, f"has shape {list(scale.shape)}: no block layout of a {[rows, cols]} weight")


def compressed_tensors(
    config: Path | None, qc: dict[str, Any], by_name: dict[str, TensorEntry]
) -> Layout:
    fmt = qc.get("format")
    groups = qc.get("config_groups")
    groups = groups.values() if isinstance(groups, dict) else ()
    args = [g.get("weights") for g in groups if isinstance(g, dict)]
    floats = [a for a in args if isinstance(a, dict)]
    ok = (
        fmt in ("float-quantized", "naive-quantized")
        and floats
        and all(a.get("type") == "float" and a.get("num_bits") == 8 for a in floats)
    )
    if not ok:
        return Layout(
            "compressed-tensors",
            False,
            f"compressed-tensors, format {fmt!r}",
            config,
            (),
            note="dtlab reads compressed-tensors' 8-bit float weights (float-quantized) only; "
            f"format {fmt!r} is counted as stored tensors",
        )
    block = _ct_block(floats)
    weights = tuple(
        _scaled_fp8(by_name, n[: -len("_scale")], "weight_scale", block, Family.CT_FP8)
        for n in by_name
        if n.endswith(".weight_scale")
    )
    strategies = sorted({str(a.get("strategy")) for a in floats})
    return _fp8_layout(
        "compressed-tensors",
        f"compressed-tensors FP8 e4m3, strategy {'/'.join(strategies)}",
        config,
        weights,
        by_name,
    )


def _ct_block(floats: list[dict[str, Any]]) -> tuple[int, int] | None:
    """One block shape when every group agrees on it; None: read each from its scale."""
    found = set()
    for a in floats:
        strategy, size, structure = a.get("strategy"), a.get("group_size"), a.get("block_structure")
        if strategy == "group" and type(size) is int and size > 0:
            found.add((1, size))
        elif strategy == "block" and isinstance(structure, list) and len(structure) == 2:
            if all(type(s) is int and s > 0 for s in structure):
                found.add((structure[0], structure[1]))
        else:
            return None  # tensor or channel: the weight's shape decides
    return found.pop() if len(found) == 1 else None


def _fp8_layout(
    method: str,
    desc: str,
    config: Path | None,
    weights: tuple[PackedWeight, ...],
    by_name: dict[str, TensorEntry],
) -> Layout:
    covered = {w.name for w in weights}
    bare = sorted(n for n, e in by_name.items() if e.dtype.startswith("F8") and n not in covered)
    note = (
        f"{len(bare)} FP8 tensors have no scale beside them ({bare[0]!r}, ...): counted and "
        "scanned as stored, unscaled"
        if bare
        else None
    )
    return Layout(method, bool(weights), desc, config, weights, note=note)


# ---- MXFP4 ----------------------------------------------------------------------------------


def mxfp4(config: Path | None, qc: dict[str, Any], by_name: dict[str, TensorEntry]) -> Layout:
    found = by_names(by_name, config=config, require=True)
    assert found is not None
    return found


def _mx_weight(by_name: dict[str, TensorEntry], name: str) -> PackedWeight:
    blocks = by_name[name]
    base = name[: -len("_blocks")]
    scales = by_name.get(base + "_scales")
    if scales is None:
        raise bad(blocks, f"has no {base + '_scales'!r} beside it")
    expect(blocks, ("U8",), None, "MXFP4 blocks")
    expect(scales, ("U8",), None, "MXFP4 scales")
    if len(blocks.shape) < 2 or blocks.shape[-1] != 16 or scales.shape != blocks.shape[:-1]:
        raise bad(
            blocks,
            f"has shape {list(blocks.shape)} and its scales "
            f"{list(scales.shape)}: MXFP4 blocks are [..., G, 16], scales [..., G]",
        )
    shape = (*blocks.shape[:-2], blocks.shape[-2] * 32)
    how = (Family.MXFP4, "mxfp4 e2m1 x32 e8m0", Scheme(bits=4, group_size=32))
    return packed(blocks, base, shape, "BF16", how, {"blocks": blocks, "scales": scales})


def by_names(
    by_name: dict[str, TensorEntry], *, config: Path | None = None, require: bool = False
) -> Layout | None:
    """Layouts whose tensors describe themselves: bitsandbytes (quant-state blobs, SCB) and
    MXFP4 (``*_blocks`` beside ``*_scales``)."""
    mx = tuple(_mx_weight(by_name, n) for n in by_name if n.endswith("_blocks"))
    if mx or require:
        via = "" if config else " (from tensor names: no quantization_config)"
        desc = f"MXFP4: e2m1 codes in blocks of 32 with an E8M0 scale{via}"
        return Layout(
            "mxfp4",
            bool(mx),
            desc,
            config,
            mx,
            note=None if mx else "the config says mxfp4; no tensor is *_blocks",
        )
    if any(BNB_STATE in n or n.endswith(".SCB") for n in by_name):
        found = bitsandbytes(None, {}, by_name)
        desc = found.description + " (from tensor names: no quantization_config)"
        return Layout(found.method, found.recognised, desc, None, found.weights, found.note)
    return None
