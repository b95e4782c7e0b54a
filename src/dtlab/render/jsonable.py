"""Result dataclasses -> plain JSON data, with one rule for every number.

Exact numbers become strings that ``fractions.Fraction`` reads back: a decimal when it
terminates ("0.333984375", "448"), else "p/q" ("1/3"). Special values are "inf", "-inf",
"nan" and "-0". Enums become their value, formats their name. Plain ints and floats
(counts, binades) stay JSON numbers.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from fractions import Fraction
from typing import Any

from dtlab.formats.descriptor import FloatFormat, IntFormat
from dtlab.values import ExactValue, exact_text


def to_data(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):  # strict JSON has no NaN/Infinity
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, Fraction):
        return exact_text(obj)
    if isinstance(obj, ExactValue):
        return str(obj)
    if isinstance(obj, (IntFormat, FloatFormat)):
        return obj.name
    if hasattr(obj, "json_form"):  # a record that chooses its JSON fields (Quantizer)
        return to_data(obj.json_form())
    if isinstance(obj, enum.Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: _field(f, getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        for name in getattr(obj, "json_extra", ()):
            out[name] = to_data(getattr(obj, name))
        return out
    if isinstance(obj, dict):
        return {str(k): to_data(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_data(v) for v in obj]
    raise TypeError(f"no JSON form for {type(obj).__name__}")


def _field(f: dataclasses.Field[Any], value: Any) -> Any:
    """A field's value; ``metadata={"json": "name"}`` shows formats and quantizers by name."""
    if f.metadata.get("json") == "name":
        return [v.name for v in value] if isinstance(value, tuple) else value.name
    return to_data(value)


def dumps(schema: str, payload: Any) -> str:
    """One JSON document: {"schema": "dtlab.<command>/<version>", "result": ...}."""
    return json.dumps({"schema": schema, "result": to_data(payload)}, indent=2, ensure_ascii=False)
