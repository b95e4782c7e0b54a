"""Exact reference for one value: encode, decode, bit fields, neighbours, ulp. No torch."""

from dtlab.scalar.anatomy import Anatomy, CodeAnatomy, Field, explain, explain_code, ulp
from dtlab.scalar.codec import Encoded, Outcome, decode, encode, round_to_integer
from dtlab.scalar.intops import IntOp, IntOpResult, int_op

__all__ = [
    "Anatomy",
    "CodeAnatomy",
    "Encoded",
    "Field",
    "IntOp",
    "IntOpResult",
    "Outcome",
    "decode",
    "encode",
    "explain",
    "explain_code",
    "int_op",
    "round_to_integer",
    "ulp",
]
