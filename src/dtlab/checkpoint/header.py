"""The safetensors header, read and checked by dtlab before the official library sees the file.

Layout (safetensors README, "Format"): 8 bytes, a little-endian u64 N; N bytes of UTF-8 JSON,
one object mapping each tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}``
plus an optional ``"__metadata__"`` str -> str map; then the data area, where offsets are
relative to its start. The official reader (safetensors ``tensor.rs``, ``Metadata::validate``)
requires the entries, sorted by offsets, to tile the data area exactly, from 0 to the end of
the file, with ``end - begin == numel * bitsize / 8`` and ``numel * bitsize`` a multiple of 8.

dtlab checks the same rules, and also what that reader lets through or cannot say cheaply:
duplicate JSON keys (serde keeps the last), NaN/Infinity literals, ``true`` or ``2.0`` as a
dimension, ranks over 64, and a claimed header length beyond the file, refused before any
allocation. One exception to the tiling rule: entries with the very same non-empty offsets,
dtype and shape are reported as *tied* (one storage, several names). The official reader
refuses such files, so dtlab reads them through its own memory map.

No torch here: a header is plain data.
"""

from __future__ import annotations

import json
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dtlab.errors import DtlabError, OptionAdvice, first_line
from dtlab.formats import SAFETENSORS_NAMES, get_format
from dtlab.formats.report import describe

# The official reader's cap (tensor.rs MAX_HEADER_SIZE = 100_000_000): a longer header is one
# no other reader opens, so refusing it loses nothing.
MAX_HEADER_BYTES = 100_000_000
MAX_RANK = 64  # numpy's NPY_MAXDIMS; also keeps the product of a hostile shape cheap
MAX_DIM = 2**63 - 1  # the official reader keeps dimensions as usize
_NO_FORMAT_BITS = {"BOOL": 8, "C64": 64}  # no dtlab format: a byte of 0/1, two float32


class CheckpointError(DtlabError):
    """A checkpoint file or folder that dtlab refuses to read; the message names the file."""


class CheckpointAdvice(OptionAdvice, CheckpointError):
    """A CheckpointError whose message names a keyword option (``allow_pickle``)."""


def show(path: Path | str) -> str:
    """A path for a one-line message: as written, or repr'd when it holds control characters."""
    text = str(path)
    return text if text.isprintable() else repr(text)


@dataclass(frozen=True)
class StDtype:
    """A safetensors dtype string and what dtlab knows of it."""

    name: str  # "BF16", "F4", ...
    bits: int  # per value, packed (F4: 4, F6_*: 6)
    format_name: str | None  # the dtlab catalogue format, None for BOOL and C64

    @property
    def is_float(self) -> bool:
        return self.name.startswith(("F", "BF"))


def _dtype_table() -> dict[str, StDtype]:
    table = {st: StDtype(st, bits, None) for st, bits in _NO_FORMAT_BITS.items()}
    for name, st in SAFETENSORS_NAMES.items():
        packed = describe(get_format(name)).packed_bytes_per_value * 8
        table[st] = StDtype(st, int(packed), name)
    return table


DTYPES: dict[str, StDtype] = _dtype_table()


def is_float_dtype(dtype: str) -> bool:
    """Whether a stored dtype holds real values: a safetensors float, or a GGML float or
    quantized type (``Q4_K``) of a GGUF file."""
    info = DTYPES.get(dtype)
    if info is not None:
        return info.is_float
    from dtlab.formats.ggml import get_ggml_type

    return get_ggml_type(dtype).is_float


@dataclass(frozen=True)
class TensorEntry:
    """One tensor as a header describes it.

    ``data_offsets`` are relative to the data area, which starts at byte ``data_start`` of
    ``file``; both are None for tensors of an unpickled checkpoint. ``dtype`` is the
    safetensors dtype string (a pickle's torch dtype is mapped to one).
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    file: Path
    data_offsets: tuple[int, int] | None
    data_start: int | None

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def bits(self) -> int:
        """Bits per stored value."""
        return DTYPES[self.dtype].bits

    @property
    def nbytes(self) -> int:
        return self.numel * self.bits // 8

    @property
    def file_range(self) -> tuple[int, int]:
        """Absolute byte range of the data in ``file``."""
        if self.data_offsets is None or self.data_start is None:
            raise CheckpointError(f"{show(self.file)}: tensor {self.name!r} has no byte range")
        begin, end = self.data_offsets
        return self.data_start + begin, self.data_start + end


@dataclass(frozen=True)
class Header:
    """A checked safetensors header: entries in offset order, tied groups, file layout."""

    file: Path
    header_bytes: int  # N, the JSON's length
    file_bytes: int
    metadata: tuple[tuple[str, str], ...]
    tensors: tuple[TensorEntry, ...]
    tied: tuple[tuple[str, ...], ...]

    @property
    def data_start(self) -> int:
        return 8 + self.header_bytes


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes, where: str, what: str) -> Any:
    """Strict JSON: UTF-8, no duplicate keys, no NaN/Infinity; CheckpointError otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{where}: {what} is not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant)
    except _Duplicate as dup:
        raise CheckpointError(f"{where}: duplicate key {dup.key!r} in {what}") from None
    except RecursionError:
        raise CheckpointError(f"{where}: {what} nests too deeply") from None
    except ValueError as exc:  # JSONDecodeError, NaN, an integer of more than 4300 digits
        raise CheckpointError(f"{where}: {what} is not valid JSON ({first_line(exc)})") from None


def check_regular(path: Path) -> Path:
    """``path`` when it is a regular file (symlinks followed); a FIFO, a device or a socket
    would block or never end when read, so it is refused by name before anything opens it."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise CheckpointError(f"{show(path)}: cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "not a regular file"
        if stat.S_ISDIR(mode):
            kind = "a folder"
        raise CheckpointError(f"{show(path)}: {kind}; dtlab reads regular files only")
    return path


def read_header(path: Path) -> Header:
    """Read and check the header of a .safetensors file, reading no tensor data.

    Raises CheckpointError naming the file and the first problem found.
    """
    where = show(path)
    check_regular(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(8)
            n = check_length(where, head, size)
            raw = f.read(n)
    except OSError as exc:
        raise CheckpointError(f"{where}: cannot read ({exc.strerror or exc})") from None
    if len(raw) != n:
        raise CheckpointError(f"{where}: the file changed while its header was read")
    return parse_header(path, n, size, raw)


def check_length(where: str, head: bytes, size: int) -> int:
    """N, from the first 8 bytes of a file of ``size`` bytes, once it is known to be under the
    cap and within the file: nothing is allocated for a hostile length."""
    if len(head) < 8:
        raise CheckpointError(f"{where}: {size} bytes, shorter than the 8-byte length")
    (n,) = struct.unpack("<Q", head[:8])
    if n > MAX_HEADER_BYTES:
        raise CheckpointError(
            f"{where}: a header of {n} bytes claimed, over the {MAX_HEADER_BYTES} cap"
        )
    if n > size - 8:
        raise CheckpointError(
            f"{where}: a header of {n} bytes claimed, but the file has {size - 8} "
            "bytes after the length (truncated?)"
        )
    return int(n)


def parse_header(path: Path, n: int, size: int, raw: bytes) -> Header:
    """Check the ``n`` header bytes of a file of ``size`` bytes, however they were read (a
    local file, or a range request): the same rules either way."""
    where = show(path)
    if not raw.startswith(b"{"):
        raise CheckpointError(f"{where}: the header does not start with '{{'")
    obj = parse_json(raw, where, "the header")
    if not isinstance(obj, dict):
        raise CheckpointError(f"{where}: the header is not a JSON object")
    return _check(path, n, size, obj)


def _check(path: Path, n: int, size: int, obj: dict[str, Any]) -> Header:
    where = show(path)
    metadata = _metadata(where, obj.pop("__metadata__", None))
    data_start, data_bytes = 8 + n, size - 8 - n
    spans = sorted(
        (_entry(path, where, name, info, data_start) for name, info in obj.items()),
        key=lambda span: span[0],
    )
    tied: list[list[str]] = []
    prev: tuple[tuple[int, int], TensorEntry] | None = None
    end = 0
    for (b, f), e in spans:
        if f > data_bytes:
            raise CheckpointError(
                f"{where}: tensor {e.name!r} ends at byte {f} of a {data_bytes}-byte data area"
            )
        if prev is not None and b < f and prev[0] == (b, f):
            first = prev[1]
            if (first.dtype, first.shape) != (e.dtype, e.shape):
                raise CheckpointError(
                    f"{where}: tensors {first.name!r} and {e.name!r} share bytes [{b}, {f}) "
                    "with different dtypes or shapes"
                )
            if tied and tied[-1][0] == first.name:
                tied[-1].append(e.name)
            else:
                tied.append([first.name, e.name])
            continue
        if b > end:
            raise CheckpointError(f"{where}: bytes [{end}, {b}) before {e.name!r} are no tensor's")
        if b < end and prev is not None:
            raise CheckpointError(f"{where}: tensors {prev[1].name!r} and {e.name!r} overlap")
        end, prev = f, ((b, f), e)
    if end != data_bytes:
        raise CheckpointError(
            f"{where}: the last {data_bytes - end} bytes of the data area are no tensor's"
        )
    entries = tuple(e for _, e in spans)
    return Header(
        file=path,
        header_bytes=n,
        file_bytes=size,
        metadata=metadata,
        tensors=entries,
        tied=tuple(tuple(t) for t in tied),
    )


def _metadata(where: str, meta: Any) -> tuple[tuple[str, str], ...]:
    if meta is None:
        return ()
    if not isinstance(meta, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in meta.items()
    ):
        raise CheckpointError(f"{where}: __metadata__ is not a map of strings to strings")
    return tuple(meta.items())


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _entry(
    path: Path, where: str, name: str, info: Any, data_start: int
) -> tuple[tuple[int, int], TensorEntry]:
    label = f"{where}: tensor {name!r}"
    if not isinstance(info, dict):
        raise CheckpointError(f"{label} is described by a {type(info).__name__}, not an object")
    missing = [k for k in ("dtype", "shape", "data_offsets") if k not in info]
    if missing:
        raise CheckpointError(f"{label} lacks {', '.join(missing)}")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise CheckpointError(f"{label} has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or len(shape) > MAX_RANK:
        raise CheckpointError(f"{label} has a shape that is not a list of at most {MAX_RANK} ints")
    if not all(_is_int(d) and 0 <= d <= MAX_DIM for d in shape):
        raise CheckpointError(f"{label} has shape {shape!r}: dimensions are integers >= 0")
    if not (
        isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)
    ) or not (0 <= offsets[0] <= offsets[1]):
        raise CheckpointError(f"{label} has data_offsets {offsets!r}, not [begin, end], begin<=end")
    span = (offsets[0], offsets[1])
    entry = TensorEntry(
        name=name,
        dtype=dtype,
        shape=tuple(shape),
        file=path,
        data_offsets=span,
        data_start=data_start,
    )
    bits = entry.numel * entry.bits
    if bits % 8:
        raise CheckpointError(f"{label}: {entry.numel} values of {dtype} do not fill whole bytes")
    if bits // 8 != offsets[1] - offsets[0]:
        raise CheckpointError(
            f"{label}: shape {list(shape)} of {dtype} needs {bits // 8} bytes, "
            f"data_offsets span {offsets[1] - offsets[0]}"
        )
    return span, entry
