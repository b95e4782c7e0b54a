"""Format descriptors, their exact derived properties, the catalogue and the spec grammar.

No torch here: importing this package stays fast.
"""

from dtlab.formats.catalog import (
    CATALOG,
    NUMPY_NAMES,
    SAFETENSORS_NAMES,
    TORCH_NAMES,
    aliases_of,
    formats,
    get_format,
)
from dtlab.formats.descriptor import FloatFormat, Format, IntFormat, NanEncoding

__all__ = [
    "CATALOG",
    "NUMPY_NAMES",
    "SAFETENSORS_NAMES",
    "TORCH_NAMES",
    "FloatFormat",
    "Format",
    "IntFormat",
    "NanEncoding",
    "aliases_of",
    "formats",
    "get_format",
]
