"""Tensors from where users keep them: .npy, a tensor of a .safetensors file, a .pt file
(weights only), or a seeded generated distribution. Bad input is a DtlabError, never a
traceback, a pickle executed, or an allocation the user did not ask for.

Generated specs: ``DIST:N[:key=value...]``, for example ``normal:1e6``,
``normal:4096:std=10``, ``uniform:1e6:low=-1:high=1``, ``laplace:1e6:scale=2``,
``student-t:1e6:df=3``. N may be written 1e6 or 2^20.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from dtlab.errors import DtlabError, ParseError, first_line
from dtlab.values import parse_value

MAX_GENERATED = 1 << 30  # 4 GiB of float32: beyond that, ask for a file
_DISTS = {
    "normal": {"mean": 0.0, "std": 1.0},
    "uniform": {"low": 0.0, "high": 1.0},
    "laplace": {"loc": 0.0, "scale": 1.0},
    "student-t": {"df": 3.0, "scale": 1.0},
}


class InputError(DtlabError):
    """A tensor source that cannot be read."""


@dataclass(frozen=True)
class Loaded:
    source: str  # what the user wrote
    name: str  # tensor name (file stem, tensor key, or the distribution)
    tensor: torch.Tensor


def load_tensor(spec: str, *, seed: int = 0) -> Loaded:
    """Load or generate one tensor (CPU, floating point).

    >>> load_tensor("normal:8:std=10", seed=1).tensor.shape
    torch.Size([8])
    """
    text = spec.strip()
    head = text.split(":", 1)[0].lower()
    if head in _DISTS:
        return Loaded(text, text, generate(text, seed=seed))
    path, key = _split_key(text)
    suffix = path.suffix.lower()
    if not path.exists():
        raise InputError(f"{path}: no such file (or write a distribution such as normal:1e6)")
    if suffix == ".npy":
        return Loaded(text, path.stem, _float(_load_npy(path), text))
    if suffix == ".safetensors":
        name, tensor = _load_safetensors(path, key)
        return Loaded(text, name, _float(tensor, text))
    if suffix in (".pt", ".pth", ".bin"):
        name, tensor = _load_pt(path, key)
        return Loaded(text, name, _float(tensor, text))
    raise InputError(f"{path}: unknown kind of file; use .npy, .safetensors[:name], .pt[:key]")


def _split_key(text: str) -> tuple[Path, str | None]:
    m = re.fullmatch(r"(.+?\.(?:safetensors|pt|pth|bin|npy))(?::(.+))?", text, flags=re.I)
    if not m:
        return Path(text), None
    return Path(m.group(1)), m.group(2)


def generate(spec: str, *, seed: int = 0) -> torch.Tensor:
    parts = spec.strip().split(":")
    dist = parts[0].lower()
    if len(parts) < 2:
        raise ParseError(f"{spec!r}: say how many values, as in {dist}:1e6")
    count = parse_value(parts[1])
    if not count.is_finite or count.fraction.denominator != 1 or count.fraction < 1:
        raise ParseError(f"{spec!r}: the count must be a positive integer, got {parts[1]!r}")
    n = int(count.fraction)
    if n > MAX_GENERATED:
        raise ParseError(f"{spec!r}: {n:,} values is more than {MAX_GENERATED:,}; use a file")
    opts = dict(_DISTS[dist])
    for item in parts[2:]:
        key, sep, value = item.partition("=")
        if not sep or key not in opts:
            raise ParseError(
                f"{spec!r}: {dist} takes {', '.join(k + '=' for k in opts)}; got {item!r}"
            )
        v = parse_value(value)
        if not v.is_finite:
            raise ParseError(f"{spec!r}: {key} must be finite")
        opts[key] = float(v)
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


def _load_npy(path: Path) -> torch.Tensor:
    import numpy as np

    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path}: not a readable .npy file ({first_line(exc)})") from None
    if arr.dtype.kind != "f":
        raise InputError(f"{path}: holds {arr.dtype}, not floating point values")
    return torch.from_numpy(np.array(arr))


def _load_safetensors(path: Path, key: str | None) -> tuple[str, torch.Tensor]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            names = list(f.keys())
            name = _pick(path, key, names)
            return name, f.get_tensor(name)
    except InputError:
        raise
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise InputError(f"{path}: not a readable safetensors file ({first_line(exc)})") from None


def _load_pt(path: Path, key: str | None) -> tuple[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses pickled code; corrupt files raise too
        raise InputError(
            f"{path}: not loadable with weights_only=True ({first_line(exc)})"
        ) from None
    if isinstance(obj, torch.Tensor):
        if key:
            raise InputError(f"{path}: holds a single tensor; drop :{key}")
        return path.stem, obj
    if isinstance(obj, dict):
        tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        name = _pick(path, key, list(tensors))
        return name, tensors[name]
    raise InputError(f"{path}: holds a {type(obj).__name__}, not a tensor or a dict of tensors")


def _pick(path: Path, key: str | None, names: list[str]) -> str:
    if key is not None:
        if key not in names:
            close = [n for n in names if key.lower() in n.lower()][:5]
            hint = f"; similar: {', '.join(close)}" if close else ""
            raise InputError(f"{path}: no tensor named {key!r}{hint}")
        return key
    if len(names) == 1:
        return names[0]
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    raise InputError(f"{path}: holds {len(names)} tensors; name one as {path.name}:NAME ({shown})")


def reshape(t: torch.Tensor, shape: str) -> torch.Tensor:
    """Reshape to ``AxBxC`` (one dimension may be -1), with a one-line error if it cannot.

    >>> reshape(torch.zeros(12), "3x-1").shape
    torch.Size([3, 4])
    """
    try:
        dims = [int(d) for d in shape.lower().replace("×", "x").split("x")]
    except ValueError:
        raise ParseError(f"cannot read shape {shape!r}; write it as 1024x1024") from None
    try:
        return t.reshape(dims)
    except RuntimeError:
        raise ParseError(f"{t.numel():,} values do not make shape {shape}") from None
