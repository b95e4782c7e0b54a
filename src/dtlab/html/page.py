"""The frame every page shares: assets shipped as package data, data embedded as JSON, and a
Content-Security-Policy that lets the page reach nothing outside itself."""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from dtlab import __version__

# No fetch, no external script, style, font or image: only what is inline in the file.
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; connect-src 'none'; form-action 'none'; base-uri 'none'"
)


def asset(name: str) -> str:
    """The text of one file of dtlab/html/assets."""
    return (resources.files("dtlab.html") / "assets" / name).read_text(encoding="utf-8")


def json_script(element_id: str, data: Any) -> str:
    """Data as a JSON script element that no string inside it can end early: ``<``, ``>`` and
    ``&`` are written as JSON escapes, so a tensor named ``</script>`` stays data."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def document(title: str, styles: list[str], body: str, scripts: list[str]) -> str:
    """One HTML file: the head with its policy and styles, the body, then the scripts."""
    css = "\n".join(asset(s) for s in styles)
    js = "\n".join(f"<script>\n{asset(s)}\n</script>" for s in scripts)
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="dtlab {__version__}">\n'
        f"<title>{escape(title)}</title>\n<style>\n{css}\n</style>\n</head>\n"
        f"<body>\n{body}\n{js}\n</body>\n</html>\n"
    )


@dataclass(frozen=True)
class PageWritten:
    """A page on disk: where, what it shows (``explorer`` or a result's schema), its size."""

    output: str
    kind: str
    bytes: int


def written(path: Path, kind: str) -> PageWritten:
    return PageWritten(str(path), kind, path.stat().st_size)
