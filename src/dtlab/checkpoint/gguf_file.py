"""The header of a GGUF file (llama.cpp's checkpoints), read and checked strictly, with no
torch and no numpy, so that ``dtlab model memory FILE.gguf`` starts as fast as for safetensors.

Layout (ggml ``docs/gguf.md``; ``ggml/src/gguf.cpp``): the magic ``GGUF``, a u32 version (2
or 3, little-endian), u64 tensor and key-value counts, the key-value pairs (a string key, a
u32 value type, the value: scalars, strings as u64 length + UTF-8 bytes, arrays as u32 item
type + u64 count + items), then one record per tensor (name, u32 rank, u64 dims with the
innermost ``ne[0]`` first, u32 ``ggml_type``, u64 offset into the data area), then padding to
``general.alignment`` (32 by default) and the data area.

Why not gguf-py's ``GGUFReader`` here: it builds a numpy view per array item (3 s for
SmolLM2's 49,152-token vocabulary on this machine), and it trusts every count. A hostile count
or string length makes it loop over or slice past the memory map; an array item count of
2^40 one-byte items would build a view per byte. This reader checks every length against the
bytes left before it reads, skips arrays without building them, and refuses tensors whose
bytes fall outside the file or overlap. tests/test_gguf.py holds what it reports (names, types,
shapes, offsets) equal to ``GGUFReader`` on real files.
"""

from __future__ import annotations

import itertools
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from dtlab.checkpoint.header import CheckpointError, TensorEntry, check_regular, show
from dtlab.formats.ggml import GGMLType, ggml_type_by_id

__all__ = ["GGUFEntry", "GGUFHeader", "read_gguf_header"]

MAGIC = b"GGUF"
VERSIONS = (2, 3)  # gguf-py READER_SUPPORTED_VERSIONS; version 1 had 32-bit counts
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_NAME = 1 << 16  # bytes of a key or a tensor name (llama.cpp: GGML_MAX_NAME = 64)
MAX_DEPTH = 3  # arrays of arrays: gguf-py reads them flattened, llama.cpp refuses them
MAX_KEPT = 1 << 16  # characters of a string value kept for display
DEFAULT_ALIGNMENT = 32  # GGUF_DEFAULT_ALIGNMENT
# GGUFValueType: the byte size of each scalar; 8 is STRING and 9 ARRAY
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?"}
_SCALARS |= {10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_TYPE_NAMES = (
    "UINT8 INT8 UINT16 INT16 UINT32 INT32 FLOAT32 BOOL STRING ARRAY UINT64 INT64 FLOAT64".split()
)
MetaValue = int | float | bool | str


@dataclass(frozen=True)
class GGUFEntry(TensorEntry):
    """A GGUF tensor: ``dtype`` is its GGML type's name (``Q4_1``, ``F32``); ``shape`` is in
    numpy order (``ne`` reversed: rows along the last axis); bytes are exact per block."""

    ggml: GGMLType

    @property
    def bits(self) -> int:
        """Whole bits per value of plain types; block types store fractions (nbytes is exact)."""
        return self.ggml.type_size * 8 // self.ggml.block_size

    @property
    def nbytes(self) -> int:
        return self.ggml.nbytes(self.shape)


@dataclass(frozen=True)
class GGUFHeader:
    file: Path
    version: int
    file_bytes: int
    alignment: int
    data_start: int
    metadata: tuple[tuple[str, MetaValue], ...]  # arrays as "[N TYPE]"
    tensors: tuple[GGUFEntry, ...]  # in offset order


class _Cursor:
    """Reads little-endian fields, each checked against the bytes left first."""

    def __init__(self, buf: mmap.mmap | bytes, where: str) -> None:
        self.buf, self.pos, self.size, self.where = buf, 0, len(buf), where

    def fail(self, what: str) -> CheckpointError:
        return CheckpointError(f"{self.where}: {what}")

    def need(self, n: int, what: str) -> None:
        if n > self.size - self.pos:
            raise self.fail(
                f"truncated: {what} needs {n:,} bytes at offset {self.pos:,}, "
                f"{self.size - self.pos:,} left"
            )

    def scalar(self, fmt: str, what: str) -> int | float | bool:
        n = struct.calcsize(fmt)
        self.need(n, what)
        (v,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += n
        return v  # type: ignore[no-any-return]

    def u32(self, what: str) -> int:
        return int(self.scalar("<I", what))

    def u64(self, what: str) -> int:
        return int(self.scalar("<Q", what))

    def string(self, what: str, limit: int | None = None) -> str:
        n = self.u64(f"the length of {what}")
        if limit is not None and n > limit:
            raise self.fail(f"{what} claims {n:,} bytes, over the {limit:,} cap")
        self.need(n, what)
        raw = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not UTF-8") from None

    def skip_string(self, what: str) -> None:
        n = self.u64(f"the length of {what}")
        self.need(n, what)
        self.pos += n


def read_gguf_header(path: Path) -> GGUFHeader:
    """The checked header of a GGUF file; CheckpointError (one line) on the first problem."""
    where = show(path)
    check_regular(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 24:
                raise CheckpointError(f"{where}: {size} bytes, shorter than a GGUF header")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                return _parse(path, _Cursor(mm, where), size)
    except OSError as exc:
        raise CheckpointError(f"{where}: cannot read ({exc.strerror or exc})") from None


def _parse(path: Path, c: _Cursor, size: int) -> GGUFHeader:
    if bytes(c.buf[:4]) != MAGIC:
        raise c.fail("not a GGUF file (no GGUF magic)")
    c.pos = 4
    version = c.u32("the version")
    if version & 0xFFFF == 0 and version:
        raise c.fail("a big-endian GGUF file: dtlab reads little-endian ones only")
    if version not in VERSIONS:
        raise c.fail(f"GGUF version {version}; dtlab reads versions 2 and 3")
    n_tensors, n_kv = c.u64("the tensor count"), c.u64("the key-value count")
    # each pair takes at least 13 bytes (key length, type, one byte), each tensor record 24
    if n_kv > (size - c.pos) // 13:
        raise c.fail(f"{n_kv:,} key-value pairs claimed: more than {size:,} bytes can hold")
    if n_tensors > (size - c.pos) // 24:
        raise c.fail(f"{n_tensors:,} tensors claimed: more than {size:,} bytes can hold")
    metadata = _read_metadata(c, n_kv)
    records = [_tensor_record(c, i) for i in range(n_tensors)]
    alignment = _alignment(c, metadata)
    data_start = -(-c.pos // alignment) * alignment
    tensors = _entries(path, c, records, alignment, data_start, size)
    shown = tuple((k, v) for k, v in metadata.items())
    return GGUFHeader(path, version, size, alignment, data_start, shown, tensors)


def _read_metadata(c: _Cursor, count: int) -> dict[str, MetaValue]:
    out: dict[str, MetaValue] = {}
    for i in range(count):
        key = c.string(f"key {i}", MAX_NAME)
        if key in out:
            raise c.fail(f"duplicate key {key!r}")
        vtype = c.u32(f"the type of {key!r}")
        out[key] = _value(c, vtype, key, 0)
    return out


def _value(c: _Cursor, vtype: int, key: str, depth: int) -> MetaValue:
    if vtype in _SCALARS:
        return c.scalar(_SCALARS[vtype], f"the value of {key!r}")
    if vtype == _STRING:
        start = c.pos
        text = c.string(f"the value of {key!r}")
        return text if c.pos - start <= MAX_KEPT else text[:MAX_KEPT] + "…"
    if vtype != _ARRAY:
        raise c.fail(f"key {key!r} has value type {vtype}, which GGUF does not define")
    if depth >= MAX_DEPTH:
        raise c.fail(f"key {key!r}: arrays nested deeper than {MAX_DEPTH}")
    itype, n = c.u32(f"the item type of {key!r}"), c.u64(f"the length of {key!r}")
    if itype in _SCALARS:
        c.need(n * struct.calcsize(_SCALARS[itype]), f"the {n:,} items of {key!r}")
        c.pos += n * struct.calcsize(_SCALARS[itype])
    elif itype == _STRING:
        c.need(n * 8, f"the {n:,} strings of {key!r}")  # 8 bytes of length each, at least
        for _ in range(n):
            c.skip_string(f"a string of {key!r}")
    elif itype == _ARRAY:
        c.need(n * 12, f"the {n:,} arrays of {key!r}")
        for _ in range(n):
            _value(c, _ARRAY, key, depth + 1)
    else:
        raise c.fail(f"key {key!r} has items of type {itype}, which GGUF does not define")
    return f"[{n} {_TYPE_NAMES[itype]}]"


def _tensor_record(c: _Cursor, i: int) -> tuple[str, tuple[int, ...], int, int]:
    name = c.string(f"the name of tensor {i}", MAX_NAME)
    rank = c.u32(f"the rank of {name!r}")
    if rank > MAX_DIMS:
        raise c.fail(f"tensor {name!r} has {rank} dimensions; GGML has at most {MAX_DIMS}")
    ne = tuple(c.u64(f"the dimensions of {name!r}") for _ in range(rank))
    return name, ne, c.u32(f"the type of {name!r}"), c.u64(f"the offset of {name!r}")


def _alignment(c: _Cursor, metadata: dict[str, MetaValue]) -> int:
    a = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if isinstance(a, bool) or not isinstance(a, int) or a < 1 or a & (a - 1) or a > 1 << 30:
        raise c.fail(f"general.alignment is {a!r}, not a power of two")
    return a


def _entries(
    path: Path,
    c: _Cursor,
    records: list[tuple[str, tuple[int, ...], int, int]],
    alignment: int,
    data_start: int,
    size: int,
) -> tuple[GGUFEntry, ...]:
    seen: set[str] = set()
    entries = []
    for name, ne, type_id, offset in records:
        if name in seen:
            raise c.fail(f"duplicate tensor name {name!r}")
        seen.add(name)
        t = ggml_type_by_id(type_id)
        if t is None:
            raise c.fail(f"tensor {name!r} has type {type_id}, which no GGML release defines")
        numel = 1
        for d in ne:
            numel *= d
        if numel >= 1 << 63:  # gguf.cpp: the element count fits int64
            raise c.fail(f"tensor {name!r}: dimensions {list(ne)} overflow int64")
        if ne and ne[0] % t.block_size:
            raise c.fail(
                f"tensor {name!r}: a row of {ne[0]} values is not whole {t.name} blocks "
                f"of {t.block_size}"
            )
        if offset % alignment:
            raise c.fail(f"tensor {name!r}: offset {offset} is not a multiple of {alignment}")
        shape = tuple(reversed(ne))
        end = offset + t.nbytes(shape)
        if data_start + end > size:
            raise c.fail(
                f"tensor {name!r} ends at byte {data_start + end:,} of a {size:,}-byte file"
            )
        entries.append(GGUFEntry(name, t.name, shape, path, (offset, end), data_start, t))
    entries.sort(key=lambda e: e.file_range)
    for a, b in itertools.pairwise(entries):
        if b.file_range[0] < a.file_range[1]:
            raise c.fail(f"tensors {a.name!r} and {b.name!r} overlap")
    return tuple(entries)
