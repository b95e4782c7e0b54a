"""Strings from files, made safe to print: a tensor name or a path is data, and may hold
control characters (ESC, BEL: terminal commands) or Markdown and HTML syntax.

>>> printable("evil\\x1b[31mred\\x07")
'evil\\\\x1b[31mred\\\\x07'
>>> markdown_cell("a|b <img onerror=x>\\nc")
'a\\\\|b &lt;img onerror=x&gt; c'
"""

from __future__ import annotations

import unicodedata

__all__ = ["markdown_cell", "printable"]


def printable(text: str) -> str:
    """``text`` with every control, format or unassigned character written as its escape
    (``\\x1b``, ``\\u202e``), as ``repr`` writes it; other characters are left as they are."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(c: str) -> str:
    if unicodedata.category(c) == "Zs":  # a space of another width: harmless
        return c
    code = ord(c)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else f"\\U{code:08x}"
    )


def markdown_cell(text: str) -> str:
    """``text`` as the content of one Markdown table cell: printable, with ``|`` escaped, HTML
    made inert, and line breaks as spaces."""
    flat = " ".join(text.splitlines())
    safe = printable(flat).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return safe.replace("|", "\\|").replace("`", "\\`")
