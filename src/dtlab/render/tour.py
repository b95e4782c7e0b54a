"""Tour chapters -> rich renderables."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from dtlab.tour.model import Chapter, Paragraph, TableBlock


def chapter_view(chapter: Chapter, number: int) -> RenderableType:
    parts: list[RenderableType] = [Rule(f"{number}. {chapter.title}", align="left"), Text("")]
    for block in chapter.blocks:
        if isinstance(block, Paragraph):
            parts += [Text(block.text), Text("")]
        elif isinstance(block, TableBlock):
            table = Table(title=block.title, title_justify="left")
            for header in block.headers:
                table.add_column(header, overflow="fold")  # every digit stays visible
            for row in block.rows:
                table.add_row(*row)
            parts += [table, Text("")]
    return Group(*parts)
