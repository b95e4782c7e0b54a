"""One exception family. The CLI turns any DtlabError into a one-line message and exit status 2."""

from __future__ import annotations


class DtlabError(Exception):
    """Base class of every error dtlab raises on bad input."""


class UnknownFormatError(DtlabError, KeyError):
    """A format name, alias or spec that names nothing dtlab knows."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class FormatSpecError(DtlabError, ValueError):
    """A format spec or descriptor whose fields are inconsistent."""


class ParseError(DtlabError, ValueError):
    """A number or bit pattern that cannot be read."""


class OptionError(DtlabError, ValueError):
    """An option that does not apply to the format (e.g. overflow=wrap on a float)."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    r"""What a foreign exception says, fit for one line of dtlab's own message.

    >>> first_line(ValueError("  bad header\n  at byte 8"))
    'bad header'
    """
    lines = str(exc).strip().splitlines()
    return lines[0][:limit] if lines else type(exc).__name__
