"""What a tour chapter is made of: paragraphs and tables of already-formatted cells."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class TableBlock:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


Block = Paragraph | TableBlock


@dataclass(frozen=True)
class Chapter:
    key: str
    title: str
    blocks: tuple[Block, ...]


ChapterFn = Callable[[], Chapter]
