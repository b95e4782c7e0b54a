"""The format explorer: one page holding the catalogue's defining fields as JSON and dtlab's
exact scalar path ported to JavaScript (assets/engine.js), so that user specs work too."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dtlab import __version__
from dtlab.formats import CATALOG, Format, IntFormat
from dtlab.formats.catalog import FLOAT_NAMES, lookup_names
from dtlab.html.page import asset, document, json_script

# What the page lists when no formats are given: every catalogue float, then common integers.
DEFAULT_INTS = ("int8", "uint8", "int4", "uint4", "int16", "int32")
START = "float8_e4m3fn"  # small enough for the table of every value
# The lesson's 1/3 in fp64, fp32, fp16, bf16 and fp8, plus fp4.
LESSON = ("float64", "float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2")


def descriptor_fields(fmt: Format) -> dict[str, Any]:
    """The defining fields of a format, as the page's engine rebuilds it."""
    if isinstance(fmt, IntFormat):
        return {"kind": "int", "name": fmt.name, "bits": fmt.bits, "signed": fmt.signed}
    return {
        "kind": "float",
        "name": fmt.name,
        "exp_bits": fmt.exp_bits,
        "man_bits": fmt.man_bits,
        "bias": fmt.bias,
        "signed": fmt.signed,
        "has_inf": fmt.has_inf,
        "nan": fmt.nan.value,
        "subnormals": fmt.subnormals,
        "container_bits": fmt.container_bits,
    }


def engine_data(listed: Sequence[Format] | None = None) -> dict[str, Any]:
    """What the page loads: the catalogue (in catalogue order: the first of equal formats
    names them), every name lookup accepts, and the formats to list and compare."""
    names = [f.name for f in listed] if listed else [*FLOAT_NAMES, *DEFAULT_INTS]
    return {
        "version": __version__,
        "catalog": [descriptor_fields(f) for f in CATALOG.values()],
        "lookup": lookup_names(),
        "formats": list(dict.fromkeys(names)),
        "start": {
            "format": names[0] if listed else START,
            "value": "1/3",
            "compare": list(dict.fromkeys(names)) if listed else [*LESSON, "float4_e2m1fn"],
        },
    }


def explorer_page(formats: Sequence[Format] | None = None) -> str:
    """The explorer as one HTML document (formats: those to list first; default all).

    >>> page = explorer_page()
    >>> page.startswith("<!doctype html>") and "://" not in page
    True
    """
    body = asset("explorer_body.html").replace("__VERSION__", __version__)
    body += "\n" + json_script("dtlab-data", engine_data(formats))
    return document(
        "dtlab explorer", ["common.css", "explorer.css"], body, ["engine.js", "explorer.js"]
    )
