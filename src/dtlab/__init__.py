"""dtlab: the data-type lab for quantization.

>>> import dtlab
>>> dtlab.get_format("fp16").max
Fraction(65504, 1)
"""

from dtlab.errors import DtlabError
from dtlab.formats import FloatFormat, Format, IntFormat, NanEncoding, formats, get_format

__version__ = "0.1.0"

__all__ = [
    "DtlabError",
    "FloatFormat",
    "Format",
    "IntFormat",
    "NanEncoding",
    "__version__",
    "formats",
    "get_format",
]
