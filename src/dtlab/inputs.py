"""Tensors from where users keep them: a ``.npy`` file, one tensor of a checkpoint, or a
seeded generated distribution. Bad input is a DtlabError, never a traceback, a pickle
executed, or an allocation the user did not ask for.

Checkpoints are read through ``dtlab.checkpoint``, with its strict header checks:

* ``FILE.safetensors[:NAME]``;
* ``DIR[:NAME]``, a model folder (``model.safetensors``, also in ``DIR/model``) or a folder of
  shards with ``model.safetensors.index.json``;
* ``INDEX.json[:NAME]``, an index of shards (``*.safetensors.index.json``);
* ``FILE.gguf[:NAME]``, a llama.cpp GGUF file: block types (``Q4_1``, ``Q4_K``) come back
  dequantized by gguf-py (float32), F32/F16/BF16 as stored;
* ``FILE.pt[:NAME]`` (also ``.pth``, ``.bin``, ``.ckpt``): pickles, refused unless the caller
  passes ``allow_pickle=True``, and then read with ``torch.load(weights_only=True)``.

F4 and F6 tensors come back as their float32 values. With no NAME, a checkpoint that holds one
tensor gives that tensor; one holding several is an error that lists some names.

Where NAME starts. Tensor names hold dots and may hold colons, and so may a POSIX path. If the
whole text names an existing file or folder, it is the path and there is no NAME. Otherwise
the path is the longest part before a ``:`` that names an existing file or folder (the last
``:`` is tried first), and everything after that ``:``, colons included, is NAME. So
``dir:1/m.safetensors:a:b`` is tensor ``a:b`` of ``dir:1/m.safetensors``.

Generated specs: ``DIST:N[:key=value...]``, for example ``normal:1e6``,
``normal:4096:std=10``, ``uniform:1e6:low=-1:high=1``, ``laplace:1e6:scale=2``,
``student-t:1e6:df=3``. N may be written 1e6 or 2^20. They are recognised by their first
word, before any file of that name.
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from dtlab.checkpoint import CheckpointError, open_checkpoint, read_tensor
from dtlab.checkpoint.files import PICKLE_SUFFIXES
from dtlab.checkpoint.header import check_regular, show
from dtlab.errors import DtlabError, OptionAdvice, ParseError, first_line
from dtlab.values import parse_value

MAX_RANK = 64  # numpy's NPY_MAXDIMS
MAX_PARAMETER = 1e30  # |mean|, std, ...: samples stay finite in float32 (max ~3.4e38)
MAX_GENERATED = 1 << 30  # 4 GiB of float32: beyond that, ask for a file
_DISTS = {
    "normal": {"mean": 0.0, "std": 1.0},
    "uniform": {"low": 0.0, "high": 1.0},
    "laplace": {"loc": 0.0, "scale": 1.0},
    "student-t": {"df": 3.0, "scale": 1.0},
}
_CHECKPOINT_SUFFIXES = (".safetensors", ".json", ".gguf", *PICKLE_SUFFIXES)
_SHOWN_NAMES = 5  # names listed in "holds N tensors" and "similar:"


class InputError(DtlabError):
    """A tensor source that cannot be read."""


class InputAdvice(OptionAdvice, InputError):
    """An InputError whose message names a keyword option (``allow_pickle``)."""


@dataclass(frozen=True)
class Loaded:
    source: str  # what the user wrote
    name: str  # tensor name (file stem, tensor name, or the distribution)
    tensor: torch.Tensor
    files: tuple[Path, ...] = ()  # the files it was read from: outputs may not overwrite them


def load_tensor(
    spec: str, *, seed: int = 0, allow_pickle: bool = False, max_values: int = MAX_GENERATED
) -> Loaded:
    """Load or generate one tensor (CPU, floating point); see the module for the forms.

    >>> load_tensor("normal:8:std=10", seed=1).tensor.shape
    torch.Size([8])
    """
    text = spec.strip()
    head = text.split(":", 1)[0].lower()
    if head in _DISTS:
        tensor = generate(text, seed=seed, max_values=max_values)
        return Loaded(source=text, name=text, tensor=tensor)
    path, name = split_source(text)
    if not path.exists():
        raise InputError(f"{show(path)}: no such file (or write a distribution such as normal:1e6)")
    if not path.is_dir():
        check_regular(path)  # a FIFO would block the read forever
    if path.is_file() and path.suffix.lower() == ".npy":
        if name is not None:
            raise InputError(f"{show(path)}: a .npy file holds one array; drop :{name}")
        tensor = _float(_load_npy(path, max_values), text)
        return Loaded(source=text, name=path.stem, tensor=tensor, files=(path,))
    if path.is_file() and not path.name.lower().endswith(_CHECKPOINT_SUFFIXES):
        raise InputAdvice(
            f"{show(path)}: unknown kind of file; use .npy, .safetensors[:NAME], a model "
            "folder[:NAME], *.safetensors.index.json[:NAME], .gguf[:NAME], or with ",
            "allow_pickle",
            " .pt/.pth/.bin/.ckpt[:NAME]",
        )
    chosen, tensor, files = _load_checkpoint(path, name, allow_pickle, max_values)
    return Loaded(source=text, name=chosen, tensor=_float(tensor, text), files=files)


def split_source(text: str) -> tuple[Path, str | None]:
    """The path and the tensor NAME of ``PATH[:NAME]`` (the rule is in the module docstring).

    >>> split_source("no/such/file:w")
    (PosixPath('no/such/file:w'), None)
    """
    if os.path.exists(text):
        return Path(text), None
    cut = len(text)
    while (cut := text.rfind(":", 0, cut)) > 0:
        if os.path.exists(text[:cut]):
            return Path(text[:cut]), text[cut + 1 :]
    return Path(text), None


def _load_checkpoint(
    path: Path, name: str | None, allow_pickle: bool, max_values: int
) -> tuple[str, torch.Tensor, tuple[Path, ...]]:
    try:
        ckpt = open_checkpoint(path, allow_pickle=allow_pickle)
    except CheckpointError as exc:
        raise _unreadable(path, exc) from None
    chosen = _pick(path, name, ckpt.names)
    _check_count(f"{show(path)}:{chosen}", ckpt.entry(chosen).numel, max_values)
    return chosen, read_tensor(ckpt, chosen), ckpt.files


def _check_count(what: str, n: int, max_values: int) -> None:
    """Sizes are checked as declared, before anything is read or allocated."""
    if n > max_values:
        raise InputError(f"{what}: {n:,} values is more than {max_values:,} this command takes")


def _unreadable(path: Path, exc: CheckpointError) -> CheckpointError:
    """A corrupt .safetensors file, in the words users of ``dtlab cast`` know."""
    prefix = f"{show(path)}: "
    text = str(exc)
    if not (path.is_file() and path.suffix.lower() == ".safetensors" and text.startswith(prefix)):
        return exc
    return CheckpointError(f"{prefix}not a readable safetensors file ({text[len(prefix) :]})")


def _pick(path: Path, key: str | None, names: tuple[str, ...]) -> str:
    if key is not None:
        if key not in names:
            raise InputError(f"{show(path)}: no tensor named {key!r}{_similar(key, names)}")
        return key
    if len(names) == 1:
        return names[0]
    shown = ", ".join(names[:_SHOWN_NAMES]) + (", ..." if len(names) > _SHOWN_NAMES else "")
    raise InputError(
        f"{show(path)}: holds {len(names)} tensors; name one as {path.name or path}:NAME ({shown})"
    )


def _similar(key: str, names: tuple[str, ...]) -> str:
    """Names that hold ``key`` (any case), then names difflib finds close, at most five."""
    holding = [n for n in names if key.lower() in n.lower()]
    close = difflib.get_close_matches(key, names, n=_SHOWN_NAMES)
    found = list(dict.fromkeys(holding + close))[:_SHOWN_NAMES]
    return f"; similar: {', '.join(found)}" if found else ""


def generate(spec: str, *, seed: int = 0, max_values: int = MAX_GENERATED) -> torch.Tensor:
    parts = spec.strip().split(":")
    dist = parts[0].lower()
    if len(parts) < 2:
        raise ParseError(f"{spec!r}: say how many values, as in {dist}:1e6")
    count = parse_value(parts[1])
    if not count.is_finite or count.fraction.denominator != 1 or count.fraction < 1:
        raise ParseError(f"{spec!r}: the count must be a positive integer, got {parts[1]!r}")
    n = int(count.fraction)
    cap = min(max_values, MAX_GENERATED)
    if n > cap:
        raise ParseError(f"{spec!r}: {n:,} values is more than {cap:,} this command takes")
    opts = dict(_DISTS[dist])
    for item in parts[2:]:
        key, sep, value = item.partition("=")
        if not sep or key not in opts:
            raise ParseError(
                f"{spec!r}: {dist} takes {', '.join(k + '=' for k in opts)}; got {item!r}"
            )
        v = parse_value(value)
        if not v.is_finite or abs(v.fraction) > MAX_PARAMETER:
            raise ParseError(f"{spec!r}: {key} must be finite and within ±{MAX_PARAMETER:.0e}")
        opts[key] = float(v)
        if key in ("std", "scale", "df") and opts[key] <= 0:
            raise ParseError(f"{spec!r}: {key} must be positive")
    if dist == "uniform" and not opts["low"] < opts["high"]:
        raise ParseError(f"{spec!r}: low must be below high")
    g = torch.Generator().manual_seed(seed)
    if dist == "normal":
        return torch.randn(n, generator=g) * opts["std"] + opts["mean"]
    if dist == "uniform":
        return torch.rand(n, generator=g) * (opts["high"] - opts["low"]) + opts["low"]
    u = torch.rand(n, generator=g, dtype=torch.float64) - 0.5
    if dist == "laplace":
        lap = -torch.sign(u) * torch.log1p(-2 * u.abs())
        return (lap * opts["scale"] + opts["loc"]).float()
    if opts["df"] <= 0:
        raise ParseError(f"{spec!r}: df must be positive")
    z = torch.randn(n, generator=g, dtype=torch.float64)
    chi2 = torch.distributions.Chi2(torch.tensor(opts["df"], dtype=torch.float64))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        c = chi2.sample((n,))
    return (z / torch.sqrt(c / opts["df"]) * opts["scale"]).float()


def _float(t: torch.Tensor, source: str) -> torch.Tensor:
    if not t.dtype.is_floating_point:
        raise InputError(f"{source}: holds {t.dtype}, not floating point values")
    if t.dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        return t.to(torch.float32)  # float8 and friends: their values are exact in float32
    return t


def _load_npy(path: Path, max_values: int) -> torch.Tensor:
    import numpy as np

    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path}: not a readable .npy file ({first_line(exc)})") from None
    if arr.dtype.kind != "f":
        raise InputError(f"{path}: holds {arr.dtype}, not floating point values")
    _check_count(show(path), arr.size, max_values)
    if arr.dtype.itemsize > 8:  # longdouble: torch has no such dtype, and float64 would round
        raise InputError(
            f"{path}: holds {arr.dtype} (long double), which torch cannot hold; convert it to "
            "float64 yourself if rounding it is acceptable"
        )
    native = arr.dtype.newbyteorder("=")  # a big-endian file is read as the same values
    return torch.from_numpy(np.array(arr, dtype=native))


def reshape(t: torch.Tensor, shape: str) -> torch.Tensor:
    """Reshape to ``AxBxC`` (one dimension may be -1), with a one-line error if it cannot.

    >>> reshape(torch.zeros(12), "3x-1").shape
    torch.Size([3, 4])
    """
    parts = shape.lower().replace("×", "x").split("x")
    if len(parts) > MAX_RANK:
        raise ParseError(f"shape {shape[:40]!r}...: {len(parts)} dimensions, at most {MAX_RANK}")
    try:
        dims = [int(d) for d in parts if len(d) <= 20]
    except ValueError:
        dims = []
    if len(dims) != len(parts) or any(d < -1 for d in dims) or dims.count(-1) > 1:
        raise ParseError(f"cannot read shape {shape!r}; write it as 1024x1024 (one -1 at most)")
    known = math.prod(d for d in dims if d != -1)  # checked in Python: torch would overflow
    fits = known == t.numel() if -1 not in dims else known > 0 and t.numel() % known == 0
    if not fits:
        raise ParseError(f"{t.numel():,} values do not make shape {shape}")
    return t.reshape(dims)
