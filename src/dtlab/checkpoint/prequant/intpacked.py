"""GPTQ and AWQ: integer codes packed 32 / bits to an int32, group scales and zero points.

GPTQ (AutoGPTQ, GPTQModel): ``qweight`` int32 ``[in * bits / 32, out]`` packs consecutive
input rows into one int32 (row i of a pack in bits [bits*i, bits*(i+1))); ``qzeros`` int32
``[groups, out * bits / 32]`` packs consecutive output columns the same way; ``scales``
``[groups, out]``; ``g_idx`` int32 ``[in]`` maps each input row to its group. Checkpoints in
the original format (``checkpoint_format`` "gptq", the default) store zero - 1.

AWQ (AutoAWQ GEMM): ``qweight`` int32 ``[in, out * bits / 32]`` packs output columns in the
interleaved order [0, 2, 4, 6, 1, 3, 5, 7]; ``qzeros`` ``[groups, out * bits / 32]`` likewise;
``scales`` ``[groups, out]``; rows in groups of ``group_size`` in order.

No torch here: shapes and configs only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dtlab.checkpoint.header import CheckpointError, TensorEntry, show
from dtlab.checkpoint.prequant.layout import (
    Family,
    Layout,
    PackedWeight,
    Scheme,
    bad,
    ceil_div,
    config_int,
    expect,
    packed,
)

_SCALE_DTYPES = ("F16", "BF16", "F32")


def _where(config: Path | None) -> str:
    return show(config) if config else "the config"


def gptq(config: Path | None, qc: dict[str, Any], by_name: dict[str, TensorEntry]) -> Layout:
    bits = config_int(config, qc, "bits", "w_bit", default=4)
    group = config_int(config, qc, "group_size", default=128)
    if bits not in (2, 3, 4, 8):
        raise CheckpointError(f"{_where(config)}: GPTQ bits={bits}; GPTQ packs 2, 3, 4 or 8")
    if group == 0 or group < -1:
        raise CheckpointError(f"{_where(config)}: GPTQ group_size={group}; it is -1 or > 0")
    fmt = str(qc.get("checkpoint_format") or qc.get("format") or "gptq").lower()
    if fmt not in ("gptq", "gptq_v2"):
        return Layout(
            "gptq",
            False,
            f"GPTQ, checkpoint_format {fmt!r}",
            config,
            (),
            note=f"dtlab reads GPTQ checkpoint formats 'gptq' and 'gptq_v2', not {fmt!r}: "
            "counts are of the stored tensors",
        )
    v1 = fmt == "gptq"
    weights = tuple(
        _gptq_weight(by_name, name[: -len(".qweight")], bits, group, v1)
        for name in by_name
        if name.endswith(".qweight")
    )
    groups = f"groups of {group}" if group > 0 else "one group per column (group_size -1)"
    sym = "symmetric" if qc.get("sym", True) else "asymmetric"
    desc = f"GPTQ {bits}-bit, {groups}, {sym}, desc_act={bool(qc.get('desc_act', False))}, " + (
        "zero points stored as zero - 1 (checkpoint_format gptq)" if v1 else "gptq_v2 zeros"
    )
    return _done("gptq", desc, config, weights, "qweight")


def _gptq_weight(
    by_name: dict[str, TensorEntry], prefix: str, bits: int, group: int, v1: bool
) -> PackedWeight:
    qweight = by_name[prefix + ".qweight"]
    expect(qweight, ("I32",), 2, "a GPTQ qweight")
    rows, out = qweight.shape
    if rows * 32 % bits:
        raise bad(qweight, f"has {rows} rows: {bits}-bit codes do not fill them")
    inputs = rows * 32 // bits
    parts = _siblings(by_name, prefix, qweight, ("qzeros", "scales"), ("g_idx",))
    scales, qzeros, g_idx = parts["scales"], parts["qzeros"], parts["g_idx"]
    assert scales is not None and qzeros is not None  # _siblings checked them
    expect(scales, _SCALE_DTYPES, 2, "GPTQ scales")
    expect(qzeros, ("I32",), 2, "GPTQ qzeros")
    size = group if group > 0 else inputs
    groups = ceil_div(inputs, size)
    rows_text = f"{rows} rows of int32 ({inputs} inputs at bits={bits})"
    if scales.shape != (groups, out):
        raise bad(
            qweight,
            f"has {rows_text} and {out} outputs, so {prefix}.scales should be "
            f"[{groups}, {out}] for group_size {group}, not {list(scales.shape)}",
        )
    if out * bits % 32 or qzeros.shape != (groups, out * bits // 32):
        raise bad(
            qzeros,
            f"has shape {list(qzeros.shape)}; {out} outputs in {groups} groups at bits={bits} "
            f"pack into [{groups}, {out * bits / 32:g}]",
        )
    if g_idx is not None:
        expect(g_idx, ("I32", "I64"), 1, "GPTQ g_idx")
        if g_idx.shape != (inputs,):
            raise bad(g_idx, f"has {g_idx.numel} entries; qweight has {rows_text}")
    label = f"gptq int{bits} " + (f"g{group}" if group > 0 else "per-column")
    scheme = Scheme(bits=bits, group_size=size, zero_plus_one=v1)
    how = (Family.GPTQ, label, scheme)
    return packed(qweight, prefix + ".weight", (out, inputs), scales.dtype, how, parts)


def awq(config: Path | None, qc: dict[str, Any], by_name: dict[str, TensorEntry]) -> Layout:
    bits = config_int(config, qc, "bits", "w_bit", default=4)
    group = config_int(config, qc, "group_size", "q_group_size", default=128)
    version = str(qc.get("version") or "gemm").lower()
    if bits != 4 or version != "gemm" or group < 1 or qc.get("zero_point") is False:
        zp = "" if qc.get("zero_point", True) is not False else ", no zero points"
        return Layout(
            "awq",
            False,
            f"AWQ {bits}-bit, version {version!r}, group_size {group}{zp}",
            config,
            (),
            note="dtlab reads AutoAWQ's GEMM layout (4-bit, zero points, group_size > 0) "
            "only: counts are of the stored tensors",
        )
    weights = tuple(
        _awq_weight(by_name, name[: -len(".qweight")], group)
        for name in by_name
        if name.endswith(".qweight")
    )
    desc = f"AWQ 4-bit GEMM, groups of {group}, zero points, interleaved order [0,2,4,6,1,3,5,7]"
    return _done("awq", desc, config, weights, "qweight")


def _awq_weight(by_name: dict[str, TensorEntry], prefix: str, group: int) -> PackedWeight:
    qweight = by_name[prefix + ".qweight"]
    expect(qweight, ("I32",), 2, "an AWQ qweight")
    inputs, cols = qweight.shape
    out = cols * 8
    parts = _siblings(by_name, prefix, qweight, ("qzeros", "scales"), ())
    scales, qzeros = parts["scales"], parts["qzeros"]
    assert scales is not None and qzeros is not None
    expect(scales, _SCALE_DTYPES, 2, "AWQ scales")
    expect(qzeros, ("I32",), 2, "AWQ qzeros")
    groups = ceil_div(inputs, group)
    if scales.shape != (groups, out) or qzeros.shape != (groups, cols):
        raise bad(
            qweight,
            f"has shape {list(qweight.shape)} ({inputs} inputs, {out} outputs): with group_size "
            f"{group}, scales should be [{groups}, {out}] and qzeros [{groups}, {cols}], not "
            f"{list(scales.shape)} and {list(qzeros.shape)}",
        )
    how = (Family.AWQ, f"awq int4 g{group}", Scheme(bits=4, group_size=group))
    return packed(qweight, prefix + ".weight", (out, inputs), scales.dtype, how, parts)


def _siblings(
    by_name: dict[str, TensorEntry],
    prefix: str,
    main: TensorEntry,
    needed: tuple[str, ...],
    optional: tuple[str, ...],
) -> dict[str, TensorEntry | None]:
    parts: dict[str, TensorEntry | None] = {"qweight": main}
    for role in needed + optional:
        parts[role] = by_name.get(f"{prefix}.{role}")
        if parts[role] is None and role in needed:
            raise bad(main, f"has no {prefix}.{role} beside it")
    return parts


def _done(
    method: str,
    desc: str,
    config: Path | None,
    weights: tuple[PackedWeight, ...],
    main: str,
) -> Layout:
    if not weights:
        return Layout(
            method,
            False,
            desc,
            config,
            (),
            note=f"the config says {method} but no tensor is named *.{main}: counts are of the "
            "stored tensors",
        )
    return Layout(method, True, desc, config, weights)
