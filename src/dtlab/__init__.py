"""dtlab: the data-type lab for quantization.

>>> import dtlab
>>> dtlab.get_format("fp16").max
Fraction(65504, 1)
"""

from dtlab.errors import DtlabError
from dtlab.formats import FloatFormat, Format, IntFormat, NanEncoding, formats, get_format

__version__ = "0.1.0"

# The tensor API needs torch: it loads on first use, so that `import dtlab` stays fast.
_LAZY = {
    "quantize": "dtlab.kernels",
    "encode": "dtlab.kernels",
    "decode": "dtlab.kernels",
    "pack": "dtlab.kernels",
    "unpack": "dtlab.kernels",
    "to_dtype": "dtlab.kernels",
}


def __getattr__(name: str) -> object:
    """``dtlab.quantize`` and friends, imported on first access (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dtlab' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "DtlabError",
    "FloatFormat",
    "Format",
    "IntFormat",
    "NanEncoding",
    "__version__",
    "decode",
    "encode",
    "formats",
    "get_format",
    "pack",
    "quantize",
    "to_dtype",
    "unpack",
]
