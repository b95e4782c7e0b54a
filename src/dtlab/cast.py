"""Round a whole tensor into one or more formats: the metrics of each, and the rounded tensors
saved on request."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from dtlab.analysis.format_fit import Analysis, analyze
from dtlab.errors import OptionError
from dtlab.formats import Format
from dtlab.inputs import Loaded
from dtlab.kernels import quantize
from dtlab.modes import Overflow, Rounding, Subnormals
from dtlab.outputs import check_output_path, write_atomic


@dataclass(frozen=True)
class CastReport:
    source: str
    name: str
    shape: tuple[int, ...]
    analysis: Analysis
    output: str | None


def cast_tensor(
    loaded: Loaded,
    fmts: list[Format],
    *,
    rounding: Rounding = Rounding.NEAREST_EVEN,
    overflow: Overflow | None = None,
    subnormals: Subnormals = Subnormals.KEEP,
    seed: int = 0,
    output: Path | None = None,
) -> CastReport:
    """Metrics of the tensor in each format; with ``output``, the rounded tensors written too
    (stochastic rounding draws the same bits for both, from ``seed``)."""
    x = loaded.tensor
    if output is not None:
        _check_output(output, len(fmts), loaded.files)
    result = analyze(
        x,
        fmts,
        rounding=rounding,
        overflow=overflow,
        subnormals=subnormals,
        generator=torch.Generator().manual_seed(seed),
    )
    if output is not None:
        g = torch.Generator().manual_seed(seed)
        results = {}
        for fmt in fmts:
            results[fmt.name] = quantize(
                x, fmt, rounding=rounding, overflow=overflow, subnormals=subnormals, generator=g
            )
        _save(output, results)
    return CastReport(
        source=loaded.source,
        name=loaded.name,
        shape=tuple(x.shape),
        analysis=result,
        output=str(output) if output is not None else None,
    )


def _check_output(path: Path, count: int, inputs: tuple[Path, ...]) -> None:
    hint = "write .safetensors, .npy (one format) or .pt"
    check_output_path(path, (".safetensors", ".npy", ".pt"), hint, inputs=inputs)
    if path.suffix.lower() == ".npy" and count != 1:
        raise OptionError(
            f"{path}: a .npy file holds one tensor; give one format or use .safetensors"
        )


def _save(path: Path, results: dict[str, torch.Tensor]) -> None:
    write_atomic(path, lambda tmp: _write(tmp, results))


def _write(path: Path, results: dict[str, torch.Tensor]) -> None:
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
