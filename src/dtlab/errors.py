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


class OptionAdvice(DtlabError):
    """An error whose one-line message names a keyword option of the call, as in "pass
    allow_pickle=True". ``str()`` names it as the library spells it; ``naming(flag)`` gives
    the same message with a front end's spelling instead (the CLI's ``--allow-pickle``), so
    the library says nothing of flags and the CLI need not parse messages.

    >>> e = OptionAdvice("pass ", "allow_pickle", " to read it", value="True")
    >>> str(e), e.naming("--allow-pickle")
    ('pass allow_pickle=True to read it', 'pass --allow-pickle to read it')
    """

    def __init__(self, before: str, option: str, after: str = "", *, value: str = "") -> None:
        self.before, self.option, self.after = before, option, after
        spelled = f"{option}={value}" if value else option
        super().__init__(f"{before}{spelled}{after}")

    def naming(self, flag: str) -> str:
        return f"{self.before}{flag}{self.after}"

    def __reduce__(self) -> tuple[object, ...]:  # crosses process pools (the scan's workers)
        return (_restore, (type(self), str(self), dict(self.__dict__)))


def _restore(cls: type[OptionAdvice], message: str, state: dict[str, object]) -> OptionAdvice:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class OptionValueError(OptionAdvice, OptionError):
    """An option's value that cannot be read; the message names the option."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    r"""What a foreign exception says, fit for one line of dtlab's own message.

    >>> first_line(ValueError("  bad header\n  at byte 8"))
    'bad header'
    """
    lines = str(exc).strip().splitlines()
    return lines[0][:limit] if lines else type(exc).__name__
