"""Tour chapters -> rich renderables."""

from __future__ import annotations

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from dtlab.tour.model import Chapter, Paragraph, TableBlock


class _Heading:
    """A rule with the title in it, or the title above a plain rule where the page is too
    narrow for both (rich would cut the title with "…")."""

    def __init__(self, title: str) -> None:
        self.title = title

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if len(self.title) + 6 <= options.max_width:
            yield Rule(self.title, align="left")
        else:
            yield Text(self.title, style="rule.text")
            yield Rule()


def chapter_view(chapter: Chapter, number: int) -> RenderableType:
    parts: list[RenderableType] = [_Heading(f"{number}. {chapter.title}"), Text("")]
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
