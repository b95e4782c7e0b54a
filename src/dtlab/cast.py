"""Round a whole tensor into one or more formats, count what changed, and save the results.

The analysis layer adds error metrics on top of this; here are the counts a cast needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from dtlab.errors import OptionError
from dtlab.formats import Format
from dtlab.inputs import Loaded
from dtlab.kernels import Subnormals, quantize
from dtlab.modes import Overflow, Rounding


@dataclass(frozen=True)
class CastRow:
    format: Format
    changed: int  # elements whose value changed (NaN staying NaN is unchanged)
    to_zero: int  # non-zero elements that became zero
    to_nan: int  # non-NaN elements that became NaN
    to_inf: int  # finite elements that became infinite


@dataclass(frozen=True)
class CastReport:
    source: str
    name: str
    shape: tuple[int, ...]
    dtype: str
    numel: int
    input_nan: int
    input_inf: int
    rounding: Rounding
    overflow: Overflow | None  # None: the format's default (inf-nan for floats, saturate for ints)
    subnormals: Subnormals
    rows: tuple[CastRow, ...]
    output: str | None


def cast_tensor(
    loaded: Loaded,
    fmts: list[Format],
    *,
    rounding: Rounding = Rounding.NEAREST_EVEN,
    overflow: Overflow | None = None,
    subnormals: Subnormals = Subnormals.KEEP,
    generator: torch.Generator | None = None,
    output: Path | None = None,
) -> CastReport:
    x = loaded.tensor
    if output is not None:
        _check_output(output, len(fmts))
    rows, results = [], {}
    x_nan = x.isnan()
    for fmt in fmts:
        q = quantize(x, fmt, rounding=rounding, overflow=overflow, subnormals=subnormals,
                     generator=generator)  # fmt: skip
        q_nan = q.isnan()
        rows.append(
            CastRow(
                fmt,
                changed=int(((q != x) & ~(q_nan & x_nan)).sum()),
                to_zero=int(((q == 0) & (x != 0) & ~x_nan).sum()),
                to_nan=int((q_nan & ~x_nan).sum()),
                to_inf=int((q.isinf() & x.isfinite()).sum()),
            )
        )
        if output is not None:
            results[fmt.name] = q
    if output is not None:
        _save(output, results)
    return CastReport(
        loaded.source, loaded.name, tuple(x.shape), str(x.dtype).removeprefix("torch."),
        x.numel(), int(x_nan.sum()), int(x.isinf().sum()), rounding, overflow, subnormals,
        tuple(rows), str(output) if output is not None else None,
    )  # fmt: skip


def _check_output(path: Path, count: int) -> None:
    suffix = path.suffix.lower()
    if suffix not in (".safetensors", ".npy", ".pt"):
        raise OptionError(f"{path}: write .safetensors, .npy (one format) or .pt")
    if suffix == ".npy" and count != 1:
        raise OptionError(
            f"{path}: a .npy file holds one tensor; give one format or use .safetensors"
        )
    if not path.parent.exists():
        raise OptionError(f"{path.parent}: no such folder")


def _save(path: Path, results: dict[str, torch.Tensor]) -> None:
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in results.items()}, str(path))
    elif suffix == ".npy":
        import numpy as np

        (tensor,) = results.values()
        np.save(path, tensor.float().numpy() if tensor.dtype == torch.bfloat16 else tensor.numpy())
    else:
        torch.save(results, path)
