"""Every format on torch tensors: quantize, encode, decode, pack, unpack, to_dtype."""

from dtlab.formats.quantizer import packed_size
from dtlab.kernels.api import code_dtype, decode, encode, has_c_kernel, quantize, to_dtype
from dtlab.kernels.packing import pack, unpack
from dtlab.modes import Subnormals

__all__ = [
    "Subnormals",
    "code_dtype",
    "decode",
    "encode",
    "has_c_kernel",
    "pack",
    "packed_size",
    "quantize",
    "to_dtype",
    "unpack",
]
