"""Pre-quantized checkpoints: which layout a checkpoint's tensors are stored in, and the
logical weights they hold.

A pre-quantized checkpoint stores a weight as several tensors: packed codes, scales, zero
points, indices, a quantization-state blob. ``recognise`` reads ``config.json``'s
``quantization_config`` (or AutoGPTQ's ``quantize_config.json``) and the tensor names and
dtypes, and returns a ``Layout``: one ``PackedWeight`` per logical weight, which stands in for
its parts wherever a plain tensor entry goes (memory tables, the scan). The layouts and the
code they follow are described in docs/prequantized.md.

A layout that dtlab cannot read exactly is reported, never counted as if it were plain
tensors: ``Layout.recognised`` is False and ``Layout.note`` says what was found. Shapes that
contradict the config (a GPTQ ``qweight`` whose rows do not match ``bits``) are a
CheckpointError.

No torch here: recognising a layout reads headers, config files and small state blobs only.
"""

from __future__ import annotations

import enum
import weakref
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from dtlab.checkpoint.handle import Checkpoint
from dtlab.checkpoint.header import CheckpointError, TensorEntry, check_regular, parse_json, show

__all__ = [
    "Family",
    "Layout",
    "PackedWeight",
    "PrequantSummary",
    "Scheme",
    "layout_of",
    "logical_entries",
    "logical_entry",
    "logical_summary",
    "recognise",
]

MAX_CONFIG_BYTES = 16 << 20  # a config.json is a few kB; a larger one is not read


class Family(enum.Enum):
    GPTQ = "gptq"
    AWQ = "awq"
    BNB_4BIT = "bitsandbytes-4bit"
    BNB_INT8 = "bitsandbytes-int8"
    FP8_BLOCK = "fp8"  # DeepSeek-V3: weight_scale_inv per block
    CT_FP8 = "compressed-tensors"  # weight_scale (+ input_scale)
    MXFP4 = "mxfp4"  # gpt-oss: *_blocks, *_scales


@dataclass(frozen=True)
class Scheme:
    """The few numbers a family's dequantization needs (0 / "" where they do not apply)."""

    bits: int = 0
    group_size: int = 0  # GPTQ/AWQ: input rows per scale; bitsandbytes: values per absmax
    block: tuple[int, int] = (0, 0)  # FP8: rows x columns per scale
    zero_plus_one: bool = False  # GPTQ v1 checkpoints store zero - 1
    table: str = ""  # bitsandbytes 4-bit: "nf4" or "fp4"
    nested_block: int = 0  # bitsandbytes double quantization: absmax values per nested absmax
    nested_offset: float = 0.0


@dataclass(frozen=True)
class PackedWeight(TensorEntry):
    """One logical weight stored as several tensors. ``shape`` and ``dtype`` are the weight's
    as its library dequantizes it (an nn.Linear weight is ``[out, in]``); ``nbytes`` is what
    all its parts take on disk. ``roles`` names each part (``qweight``, ``scales``, ...)."""

    family: Family
    label: str  # "gptq int4 g128"
    scheme: Scheme
    roles: tuple[str, ...]
    parts: tuple[TensorEntry, ...]

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.parts)

    @property
    def bits_per_weight(self) -> Fraction:
        """Stored bits per logical value: codes, scales, zero points and indices together."""
        return Fraction(self.nbytes * 8, self.numel) if self.numel else Fraction(0)

    def part(self, role: str) -> TensorEntry | None:
        for r, p in zip(self.roles, self.parts, strict=True):
            if r == role:
                return p
        return None

    def need(self, role: str) -> TensorEntry:
        found = self.part(role)
        if found is None:  # recognisers list every part a family's dequantization reads
            raise CheckpointError(f"{show(self.file)}: {self.name!r} has no {role} tensor")
        return found


@dataclass(frozen=True)
class PrequantSummary:
    """What ``memory`` and ``scan`` report of a layout."""

    method: str  # quant_method as the config names it, or what the tensor names showed
    recognised: bool
    description: str
    config: str | None  # the file the layout came from
    packed_weights: int
    logical_params: int
    stored_bytes: int  # of the packed weights, every part included
    bits_per_weight: float  # stored bits per logical parameter of the packed weights
    note: str | None  # what was not understood, or None


@dataclass(frozen=True)
class Layout:
    method: str
    recognised: bool
    description: str
    config: Path | None
    weights: tuple[PackedWeight, ...]
    note: str | None = None
    _by_name: dict[str, PackedWeight] = field(init=False, repr=False, compare=False)
    _absorbed: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {w.name: w for w in self.weights})
        parts = {p.name for w in self.weights for p in w.parts}
        object.__setattr__(self, "_absorbed", frozenset(parts))

    def summary(self) -> PrequantSummary:
        params = sum(w.numel for w in self.weights)
        nbytes = sum(w.nbytes for w in self.weights)
        return PrequantSummary(
            method=self.method,
            recognised=self.recognised,
            description=self.description,
            config=str(self.config) if self.config else None,
            packed_weights=len(self.weights),
            logical_params=params,
            stored_bytes=nbytes,
            bits_per_weight=nbytes * 8 / params if params else 0.0,
            note=self.note,
        )

    def entries(self, tensors: tuple[TensorEntry, ...]) -> tuple[TensorEntry, ...]:
        """``tensors`` with each packed weight in place of its parts (at its first part)."""
        first = {w.parts[0].name: w for w in self.weights}
        out: list[TensorEntry] = []
        for e in tensors:
            if e.name in first:
                out.append(first[e.name])
            elif e.name not in self._absorbed:
                out.append(e)
        return tuple(out)

    def weight(self, name: str) -> PackedWeight | None:
        return self._by_name.get(name)


NO_LAYOUT = Layout("none", True, "not pre-quantized", None, ())


# ---- config ---------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    check_regular(path)
    where = show(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise CheckpointError(f"{where}: {size} bytes, over the {MAX_CONFIG_BYTES}-byte cap")
        raw = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{where}: cannot read ({exc.strerror or exc})") from None
    return parse_json(raw, where, "the file")


def find_quant_config(ckpt: Checkpoint) -> tuple[Path | None, dict[str, Any] | None]:
    """The ``quantization_config`` beside the checkpoint, and the file it came from."""
    folders = [ckpt.source.parent]
    if ckpt.path.is_dir() and ckpt.path.resolve() != ckpt.source.parent.resolve():
        folders.append(ckpt.path)
    for folder in folders:
        config = folder / "config.json"
        if config.is_file():
            obj = _read_json(config)
            qc = obj.get("quantization_config") if isinstance(obj, dict) else None
            if qc is not None:
                return config, _as_object(config, qc, "quantization_config")
        legacy = folder / "quantize_config.json"  # AutoGPTQ writes its settings here
        if legacy.is_file():
            qc = _as_object(legacy, _read_json(legacy), "the file")
            return legacy, {"quant_method": "gptq", **qc}
    return None, None


def _as_object(path: Path, obj: Any, what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise CheckpointError(f"{show(path)}: {what} is not a JSON object")
    return obj


# ---- recognition ----------------------------------------------------------------------------

_CACHE: dict[int, tuple[weakref.ref[Checkpoint], Layout]] = {}


def layout_of(ckpt: Checkpoint) -> Layout:
    """``recognise(ckpt)``, once per opened checkpoint."""
    key = id(ckpt)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is ckpt:
        return hit[1]
    found = recognise(ckpt)
    _CACHE[key] = (weakref.ref(ckpt, lambda _: _CACHE.pop(key, None)), found)
    return found


def recognise(ckpt: Checkpoint) -> Layout:
    """The layout of a checkpoint's tensors, from its quantization config and tensor names.

    Raises CheckpointError when a recognised layout's tensors contradict its config.
    """
    from dtlab.checkpoint.prequant import intpacked, scaled

    if ckpt.loaded is not None:  # a pickle: no config beside it is trusted to describe it
        return NO_LAYOUT
    config, qc = find_quant_config(ckpt)
    by_name = {e.name: e for e in ckpt.tensors}
    if qc is None:
        return scaled.by_names(by_name) or _unknown_packing(by_name) or NO_LAYOUT
    method = qc.get("quant_method")
    method = method.lower() if isinstance(method, str) else repr(method)
    readers = {
        "gptq": intpacked.gptq,
        "awq": intpacked.awq,
        "bitsandbytes": scaled.bitsandbytes,
        "fp8": scaled.fp8_block,
        "compressed-tensors": scaled.compressed_tensors,
        "mxfp4": scaled.mxfp4,
    }
    reader = readers.get(method)
    if reader is None:
        return Layout(
            method,
            False,
            f"quant_method {method!r} in {config.name if config else 'the config'}",
            config,
            (),
            note=f"dtlab does not read the {method!r} layout: counts are of the stored tensors, "
            "not of logical weights",
        )
    return reader(config, qc, by_name)


# names that mean "these codes need another tensor to be read": without a config to say how,
# the stored tensors are counted but reported (FP8 codes beside a weight_scale would be
# scanned unscaled)
_PACKED_SUFFIXES = (".qweight", ".qzeros", "_scale_inv", ".weight_packed", ".weight_scale")


def _unknown_packing(by_name: dict[str, TensorEntry]) -> Layout | None:
    """Tensors named as packed layouts name theirs, with no config to say how they pack."""
    odd = sorted(n for n in by_name if n.endswith(_PACKED_SUFFIXES))
    if not odd:
        return None
    return Layout(
        "unknown",
        False,
        "packed tensors without a quantization_config",
        None,
        (),
        note=f"{len(odd)} tensors look packed ({odd[0]!r}, ...) but no config.json "
        "quantization_config says how: counts are of the stored tensors",
    )


def logical_entries(ckpt: Checkpoint) -> tuple[TensorEntry, ...]:
    """The tensors a scan or a memory table walks: stored tensors (each tied group once), with
    every packed weight of a recognised layout in place of its parts."""
    return layout_of(ckpt).entries(ckpt.stored)


def logical_entry(ckpt: Checkpoint, name: str) -> TensorEntry:
    """A packed weight by its logical name, or a stored tensor."""
    return layout_of(ckpt).weight(name) or ckpt.entry(name)


def logical_summary(ckpt: Checkpoint) -> PrequantSummary | None:
    """The layout's summary, or None for a checkpoint that is not pre-quantized."""
    layout = layout_of(ckpt)
    return None if layout is NO_LAYOUT else layout.summary()


# ---- helpers the family readers share -------------------------------------------------------


def bad(e: TensorEntry, text: str) -> CheckpointError:
    return CheckpointError(f"{show(e.file)}: tensor {e.name!r} {text}")


def expect(e: TensorEntry, dtypes: tuple[str, ...], rank: int | None, what: str) -> None:
    if e.dtype not in dtypes:
        raise bad(e, f"is {e.dtype}; {what} is {' or '.join(dtypes)}")
    if rank is not None and len(e.shape) != rank:
        raise bad(e, f"has shape {list(e.shape)}; {what} has rank {rank}")


def config_int(config: Path | None, qc: dict[str, Any], *keys: str, default: int) -> int:
    for key in keys:
        if key in qc and qc[key] is not None:
            value = qc[key]
            if isinstance(value, bool) or not isinstance(value, int):
                where = show(config) if config else "the config"
                raise CheckpointError(f"{where}: quantization_config {key} is not an integer")
            return value
    return default


def packed(
    main: TensorEntry,
    name: str,
    shape: tuple[int, ...],
    dtype: str,
    how: tuple[Family, str, Scheme],
    parts: dict[str, TensorEntry | None],
) -> PackedWeight:
    family, label, scheme = how
    roles = tuple(r for r, p in parts.items() if p is not None)
    return PackedWeight(
        name=name,
        dtype=dtype,
        shape=shape,
        file=main.file,
        data_offsets=None,
        data_start=None,
        family=family,
        label=label,
        scheme=scheme,
        roles=roles,
        parts=tuple(p for p in parts.values() if p is not None),
    )


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)
